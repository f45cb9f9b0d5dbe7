"""Patients: register, list and search, read, amend, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.patient import Patient
from ketapath.services import patients, timeline
from ketapath.services.patients import PatientRecord, PatientSummary
from ketapath.services.timeline import TimelineEvent
from ketapath.services.validation import REASON_LENGTH

router = APIRouter(prefix="/patients", tags=["patients"], responses=SIGNED_IN)


class Amendment(BaseModel):
    document: Patient
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)
    expected_version: int = Field(
        ge=1,
        description=(
            "The version you amend (required); refused with 409 if it is no longer the current "
            "one, so that an amendment never silently replaces someone else's."
        ),
    )


@router.post(
    "",
    response_model=PatientRecord,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 422),
)
def create_patient(
    body: Patient, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> PatientRecord:
    return patients.create_patient(db, actor, body, clock=clock)


@router.get("", response_model=list[PatientSummary], responses=responses(422))
def search_patients(
    actor: CurrentUser,
    db: DatabaseDep,
    q: Annotated[str, Query(max_length=200, description="Part of the name, id or pseudonym")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[PatientSummary]:
    return patients.search_patients(db, actor, q, limit=limit)


@router.get("/{patient_id}", response_model=PatientRecord, responses=responses(404, 422))
def get_patient(patient_id: RecordId, actor: CurrentUser, db: DatabaseDep) -> PatientRecord:
    return patients.get_patient(db, actor, patient_id)


@router.get(
    "/{patient_id}/history", response_model=list[PatientRecord], responses=responses(404, 422)
)
def patient_history(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> list[PatientRecord]:
    return patients.patient_history(db, actor, patient_id)


@router.post(
    "/{patient_id}/amendments",
    response_model=PatientRecord,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, 422),
)
def amend_patient(
    patient_id: RecordId, body: Amendment, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> PatientRecord:
    return patients.amend_patient(
        db,
        actor,
        patient_id,
        body.document,
        reason=body.reason,
        expected_version=body.expected_version,
        clock=clock,
    )


@router.get(
    "/{patient_id}/timeline", response_model=list[TimelineEvent], responses=responses(404, 422)
)
def patient_timeline(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep
) -> list[TimelineEvent]:
    return timeline.patient_timeline(db, actor, patient_id)
