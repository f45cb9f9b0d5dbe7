"""After the infusion (issue 12): a course's outcome, its follow-up schedule, the clinic's due
and overdue follow-ups, the safety checks due by cumulative dose, and the repeat decision
(docs/outcomes.md). Physicians and nurses read; a physician decides."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.services import outcome_decisions, outcomes
from ketapath.services.outcome_views import (
    CourseFollowUps,
    CourseOutcomeView,
    FollowUpList,
    RepeatDecisionInput,
    RepeatDecisionPage,
    RepeatDecisionView,
    SafetyDueView,
)

router = APIRouter(tags=["outcomes"], responses=SIGNED_IN)


@router.get(
    "/courses/{order_id}/outcome",
    response_model=CourseOutcomeView,
    responses=responses(404, 422),
    summary="A course's outcome: pain change, responders, relief, 35-day pain area, PGIC, "
    "function, sleep, opioids",
)
def course_outcome(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> CourseOutcomeView:
    return outcomes.course_outcome(db, actor, order_id, clock=clock)


@router.get(
    "/courses/{order_id}/follow-ups",
    response_model=CourseFollowUps,
    responses=responses(404, 422),
    summary="A course's follow-up timepoints: done, due, overdue or not yet due",
)
def course_follow_ups(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> CourseFollowUps:
    return outcomes.course_follow_ups(db, actor, order_id, clock=clock)


@router.get(
    "/follow-ups",
    response_model=FollowUpList,
    responses=responses(422),
    summary="The clinic's follow-ups due today and overdue (status: due or overdue)",
)
def follow_ups(
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    status: Annotated[Literal["due", "overdue"] | None, Query()] = None,
) -> FollowUpList:
    return outcomes.follow_ups(db, actor, status, clock=clock)


@router.get(
    "/patients/{patient_id}/safety-due",
    response_model=SafetyDueView,
    responses=responses(404, 422),
    summary="The safety checks of repeated courses due, by courses and cumulative dose",
)
def safety_due(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> SafetyDueView:
    return outcomes.safety_due(db, actor, patient_id, clock=clock)


@router.get(
    "/courses/{order_id}/repeat-decision",
    response_model=RepeatDecisionPage,
    responses=responses(404, 422),
    summary="The repeat proposal with its reasoning, and the physician's decision",
)
def repeat_decision(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> RepeatDecisionPage:
    return outcome_decisions.decision_page(db, actor, order_id, clock=clock)


@router.get(
    "/courses/{order_id}/repeat-decisions",
    response_model=list[RepeatDecisionView],
    responses=responses(404, 422),
    summary="Every repeat decision of a course, oldest first",
)
def list_repeat_decisions(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> list[RepeatDecisionView]:
    return outcome_decisions.list_decisions(db, actor, order_id)


@router.post(
    "/courses/{order_id}/repeat-decisions",
    response_model=RepeatDecisionView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, 422),
    summary="Record the physician's decision: repeat, change protocol or stop, with the reason",
)
def record_repeat_decision(
    order_id: RecordId,
    body: RepeatDecisionInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> RepeatDecisionView:
    return outcome_decisions.record_decision(db, actor, order_id, body, clock=clock)
