"""Eligibility and safety screening of the current patient record, stored as computed.

The result keeps every finding with its rule and source, and the versions of the rule base
that produced it, so that a later reader sees what the physician saw.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.domain.screening import screen
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.patients import as_patient, load_patient
from ketapath.services.people import usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import PatientVersion, ScreeningResult, utcnow


class ScreeningView(BaseModel):
    id: int
    patient_id: int
    patient_version: int
    decision: str
    result: dict[str, Any]
    run_at: datetime
    run_by: str | None
    current: bool  # computed on the patient's current record


def _view(session: Session, row: ScreeningResult, current_version_id: int) -> ScreeningView:
    return _views(session, [row], current_version_id)[0]


def _views(
    session: Session, rows: list[ScreeningResult], current_version_id: int
) -> list[ScreeningView]:
    """The views of stored screens, with a fixed number of queries however many there are."""
    versions = dict(
        session.execute(
            select(PatientVersion.id, PatientVersion.version).where(
                PatientVersion.id.in_({row.patient_version_id for row in rows})
            )
        ).all()
    )
    names = usernames_of(session, [row.run_by_id for row in rows])
    return [
        ScreeningView(
            id=row.id,
            patient_id=row.patient_id,
            patient_version=versions.get(row.patient_version_id, 0),
            decision=row.decision,
            result=row.result,
            run_at=row.run_at,
            run_by=names.get(row.run_by_id),
            current=row.patient_version_id == current_version_id,
        )
        for row in rows
    ]


def run_screening(
    db: Database, actor: Actor, patient_id: int, *, clock: ClinicClock | None = None
) -> ScreeningView:
    """Screen the patient's current record and store the result (ages on the clinic's today)."""
    with action(db, actor, "screening.run", entity="screening", patient_id=patient_id) as session:
        _, current = load_patient(session, patient_id)
        result = screen(as_patient(current.document, (clock or clinic_clock()).today()))
        row = ScreeningResult(
            patient_id=patient_id,
            patient_version_id=current.id,
            decision=result.decision,
            result=json.loads(json.dumps(result.to_dict())),
            run_at=utcnow(),
            run_by_id=actor.user_id,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "screening.run",
            entity="screening",
            entity_id=row.id,
            patient_id=patient_id,
            detail={"decision": result.decision, "patient_version": current.version},
        )
        return _view(session, row, current.id)


def latest_screening(session: Session, patient_version_id: int) -> ScreeningResult | None:
    return session.scalar(
        select(ScreeningResult)
        .where(ScreeningResult.patient_version_id == patient_version_id)
        .order_by(ScreeningResult.id.desc())
        .limit(1)
    )


def list_screenings(db: Database, actor: Actor, patient_id: int) -> list[ScreeningView]:
    """Every screening of the patient, newest first."""
    with action(db, actor, "screening.read", entity="screening", patient_id=patient_id) as session:
        _, current = load_patient(session, patient_id)
        rows = session.scalars(
            select(ScreeningResult)
            .where(ScreeningResult.patient_id == patient_id)
            .order_by(ScreeningResult.id.desc())
        ).all()
        audit.record(
            session,
            actor,
            "screening.list",
            entity="screening",
            patient_id=patient_id,
            detail={"count": len(rows)},
        )
        return _views(session, list(rows), current.id)
