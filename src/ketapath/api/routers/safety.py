"""Safety follow-up results of repeated courses: the checks, record, amend, list."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import Field

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.knowledge.safety import SafetyCheck
from ketapath.services import safety
from ketapath.services.safety import SafetyResultInput, SafetyResultView
from ketapath.services.validation import REASON_LENGTH

router = APIRouter(tags=["safety"], responses=SIGNED_IN)


class SafetyResultAmendment(SafetyResultInput):
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


@router.get(
    "/safety-checks",
    response_model=list[SafetyCheck],
    summary="The safety checks: what each records, which results are abnormal, and sources",
)
def list_safety_checks(actor: CurrentUser) -> list[SafetyCheck]:
    return list(safety.safety_catalogue())


@router.post(
    "/patients/{patient_id}/safety-results",
    response_model=SafetyResultView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 422),
    summary="Record a safety check's result (abnormal is computed by the check's rules)",
)
def record_safety_result(
    patient_id: RecordId,
    body: SafetyResultInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> SafetyResultView:
    return safety.record_safety_result(db, actor, patient_id, body, clock=clock)


@router.get(
    "/patients/{patient_id}/safety-results",
    response_model=list[SafetyResultView],
    responses=responses(404, 422),
    summary="The patient's safety results (current versions), latest first",
)
def list_safety_results(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> list[SafetyResultView]:
    return safety.list_safety_results(db, actor, patient_id)


@router.post(
    "/safety-results/{result_id}/amendments",
    response_model=SafetyResultView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, 422),
    summary="Correct a safety result (a new version, judged again, with the reason)",
)
def amend_safety_result(
    result_id: RecordId,
    body: SafetyResultAmendment,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> SafetyResultView:
    data = SafetyResultInput.model_validate(body.model_dump(exclude={"reason"}))
    return safety.amend_safety_result(db, actor, result_id, data, reason=body.reason, clock=clock)
