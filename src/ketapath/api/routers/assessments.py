"""Assessments: record an instrument's answers (scored on the way in), list, amend; a course's
assessments by label (baseline, post-session, follow-up)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import Field

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.knowledge.instruments import Instrument
from ketapath.services import assessments
from ketapath.services.assessments import AssessmentInput, AssessmentView, CourseAssessments
from ketapath.services.validation import REASON_LENGTH

router = APIRouter(tags=["assessments"], responses=SIGNED_IN)


class AssessmentAmendment(AssessmentInput):
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


@router.get(
    "/instruments",
    response_model=list[Instrument],
    summary="The instruments, their items, answer ranges, scoring rules and sources",
)
def list_instruments(actor: CurrentUser) -> list[Instrument]:
    return list(assessments.instrument_catalogue())


@router.post(
    "/patients/{patient_id}/assessments",
    response_model=AssessmentView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 422),
)
def record_assessment(
    patient_id: RecordId,
    body: AssessmentInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> AssessmentView:
    return assessments.record_assessment(db, actor, patient_id, body, clock=clock)


@router.get(
    "/patients/{patient_id}/assessments",
    response_model=list[AssessmentView],
    responses=responses(404, 422),
)
def list_assessments(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> list[AssessmentView]:
    return assessments.list_assessments(db, actor, patient_id)


@router.get(
    "/orders/{order_id}/assessments",
    response_model=CourseAssessments,
    responses=responses(404, 422),
    summary="A course's assessments: baseline, after each session, follow-ups by timepoint",
)
def course_assessments(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> CourseAssessments:
    return assessments.assessments_for_course(db, actor, order_id)


@router.get(
    "/assessments/{assessment_id}/history",
    response_model=list[AssessmentView],
    responses=responses(404, 422),
)
def assessment_history(
    assessment_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> list[AssessmentView]:
    return assessments.assessment_history(db, actor, assessment_id)


@router.post(
    "/assessments/{assessment_id}/amendments",
    response_model=AssessmentView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, 422),
)
def amend_assessment(
    assessment_id: RecordId,
    body: AssessmentAmendment,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> AssessmentView:
    data = AssessmentInput.model_validate(body.model_dump(exclude={"reason"}))
    return assessments.amend_assessment(
        db, actor, assessment_id, data, reason=body.reason, clock=clock
    )
