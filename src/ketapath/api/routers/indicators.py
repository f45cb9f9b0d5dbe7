"""Indicators of success agreed at assessment (FPM (ANZCA) 2016, section 3): record, amend,
read per patient and per course."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import RecordId
from ketapath.services import indicators
from ketapath.services.indicators import IndicatorsInput, IndicatorsView, SuccessIndicators
from ketapath.services.validation import REASON_LENGTH

router = APIRouter(tags=["indicators"], responses=SIGNED_IN)


class IndicatorsAmendment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indicators: SuccessIndicators
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


@router.post(
    "/patients/{patient_id}/indicators",
    response_model=IndicatorsView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, 422),
    summary="Record the indicators of success agreed with the patient (for a course)",
)
def record_indicators(
    patient_id: RecordId, body: IndicatorsInput, actor: CurrentUser, db: DatabaseDep
) -> IndicatorsView:
    return indicators.record_indicators(db, actor, patient_id, body)


@router.get(
    "/patients/{patient_id}/indicators",
    response_model=list[IndicatorsView],
    responses=responses(404, 422),
    summary="The patient's current indicators of success, per course",
)
def list_indicators(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> list[IndicatorsView]:
    return indicators.list_indicators(db, actor, patient_id)


@router.get(
    "/orders/{order_id}/indicators",
    response_model=IndicatorsView | None,
    responses=responses(404, 422),
    summary="A course's current indicators of success (null when none are recorded)",
)
def course_indicators(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> IndicatorsView | None:
    return indicators.course_indicators(db, actor, order_id)


@router.post(
    "/indicators/{indicators_id}/amendments",
    response_model=IndicatorsView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, 422),
    summary="Change the indicators of success (a new version, with the reason)",
)
def amend_indicators(
    indicators_id: RecordId, body: IndicatorsAmendment, actor: CurrentUser, db: DatabaseDep
) -> IndicatorsView:
    return indicators.amend_indicators(
        db, actor, indicators_id, body.indicators, reason=body.reason
    )
