"""The opioid plan (FPM (ANZCA) 2016 proposal, section 6): OME of the record, plans, doses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.opioids import DEFAULT_TABLE
from ketapath.services import opioids
from ketapath.services.opioids import (
    AgreeInput,
    DoseInput,
    DoseView,
    OmeSummary,
    PlanInput,
    PlanPreview,
    PlanView,
)
from ketapath.services.validation import REASON_LENGTH

router = APIRouter(tags=["opioid plan"], responses=SIGNED_IN)


class Withdrawal(BaseModel):
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


class DoseCorrection(DoseInput):
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


@router.get(
    "/patients/{patient_id}/opioids",
    response_model=OmeSummary,
    summary="The current record's opioids in oral morphine equivalents, by a named table",
    responses=responses(404, 422),
)
def opioid_summary(
    patient_id: RecordId,
    actor: CurrentUser,
    db: DatabaseDep,
    table: Annotated[str, Query(max_length=40)] = DEFAULT_TABLE,
) -> OmeSummary:
    return opioids.opioid_summary(db, actor, patient_id, table)


@router.post(
    "/patients/{patient_id}/opioid-plans/preview",
    response_model=PlanPreview,
    summary="Compute a conversion to one opioid and a taper plan (not stored)",
    responses=responses(400, 404, 422),
)
def preview_plan(
    patient_id: RecordId, body: PlanInput, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> PlanPreview:
    return opioids.preview_opioid_plan(db, actor, patient_id, body, clock=clock)


@router.post(
    "/patients/{patient_id}/opioid-plans",
    response_model=PlanView,
    status_code=status.HTTP_201_CREATED,
    summary="Agree an opioid plan (physician), with a reason where a taper is faster than advised",
    responses=responses(400, 404, 409, 422),
)
def agree_plan(
    patient_id: RecordId, body: AgreeInput, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> PlanView:
    return opioids.agree_opioid_plan(db, actor, patient_id, body, clock=clock)


@router.get(
    "/patients/{patient_id}/opioid-plans",
    response_model=list[PlanView],
    responses=responses(404, 422),
)
def list_plans(patient_id: RecordId, actor: CurrentUser, db: DatabaseDep) -> list[PlanView]:
    return opioids.list_opioid_plans(db, actor, patient_id)


@router.post(
    "/opioid-plans/{plan_id}/withdraw",
    response_model=PlanView,
    responses=responses(400, 404, 409, 422),
)
def withdraw_plan(
    plan_id: RecordId, body: Withdrawal, actor: CurrentUser, db: DatabaseDep
) -> PlanView:
    return opioids.withdraw_opioid_plan(db, actor, plan_id, reason=body.reason)


@router.post(
    "/patients/{patient_id}/opioid-doses",
    response_model=DoseView,
    status_code=status.HTTP_201_CREATED,
    summary="Record the opioids actually taken per day, at a follow-up",
    responses=responses(400, 404, 422),
)
def record_dose(
    patient_id: RecordId, body: DoseInput, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> DoseView:
    return opioids.record_opioid_dose(db, actor, patient_id, body, clock=clock)


@router.get(
    "/patients/{patient_id}/opioid-doses",
    response_model=list[DoseView],
    responses=responses(404, 422),
)
def list_doses(patient_id: RecordId, actor: CurrentUser, db: DatabaseDep) -> list[DoseView]:
    return opioids.list_opioid_doses(db, actor, patient_id)


@router.post(
    "/opioid-doses/{dose_id}/amend",
    response_model=DoseView,
    status_code=201,
    responses=responses(400, 404, 409, 422),
)
def amend_dose(
    dose_id: RecordId, body: DoseCorrection, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> DoseView:
    data = DoseInput.model_validate(body.model_dump(exclude={"reason"}))
    return opioids.amend_opioid_dose(db, actor, dose_id, data, reason=body.reason, clock=clock)
