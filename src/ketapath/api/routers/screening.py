"""Screening: run the eligibility and safety screen on the current record, and list the
stored screens."""

from __future__ import annotations

from fastapi import APIRouter, status

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.services import screening
from ketapath.services.screening import ScreeningView

router = APIRouter(tags=["screening"], responses=SIGNED_IN)


@router.post(
    "/patients/{patient_id}/screenings",
    response_model=ScreeningView,
    status_code=status.HTTP_201_CREATED,
    summary="Screen the current record (eligibility and safety) and store the result",
    responses=responses(404, 422),
)
def run_screening(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> ScreeningView:
    return screening.run_screening(db, actor, patient_id, clock=clock)


@router.get(
    "/patients/{patient_id}/screenings",
    response_model=list[ScreeningView],
    responses=responses(404, 422),
)
def list_screenings(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> list[ScreeningView]:
    return screening.list_screenings(db, actor, patient_id)
