"""Eligibility and safety screening of the current patient record, stored as computed.

The result keeps every finding with its rule and source, and the versions of the rule base
that produced it, so that a later reader sees what the physician saw.

The screen reads the record and the latest PHQ-9, GAD-7 and DASS-21 recorded for the patient
(``ketapath.domain.mood``); which assessments it read is kept with the result, so a screen
after which one of them is recorded or corrected is no longer current.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.domain import instruments
from ketapath.domain.mood import SCREENED_INSTRUMENTS, RecordedScore
from ketapath.domain.screening import screen
from ketapath.services import audit
from ketapath.services.assessments import latest_assessments
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import InvalidInput
from ketapath.services.patients import as_patient, load_patient
from ketapath.services.people import usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import Assessment, PatientVersion, ScreeningResult, utcnow


class ScreeningView(BaseModel):
    id: int
    patient_id: int
    patient_version: int
    decision: str
    result: dict[str, Any]
    run_at: datetime
    run_by: str | None
    # computed on the patient's current record and its latest PHQ-9, GAD-7 and DASS-21
    current: bool


def _view(
    session: Session, row: ScreeningResult, current_version_id: int, refs: frozenset[str]
) -> ScreeningView:
    return _views(session, [row], current_version_id, refs)[0]


def _views(
    session: Session, rows: list[ScreeningResult], current_version_id: int, refs: frozenset[str]
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
            current=row.patient_version_id == current_version_id and _refs(row) == refs,
        )
        for row in rows
    ]


def _ref(row: Assessment) -> str:
    return f"assessment {row.id}"


def _refs(row: ScreeningResult) -> frozenset[str]:
    """The assessments a stored screen read (none for screens stored before it read any)."""
    return frozenset(str(q.get("ref", "")) for q in row.result.get("questionnaires") or [])


def _latest_refs(session: Session, patient_id: int) -> frozenset[str]:
    return frozenset(_ref(r) for r in latest_assessments(session, patient_id, SCREENED_INSTRUMENTS))


def questionnaires_changed(session: Session, row: ScreeningResult) -> bool:
    """Whether a PHQ-9, GAD-7 or DASS-21 was recorded or corrected after the screen ``row``."""
    return _refs(row) != _latest_refs(session, row.patient_id)


def recorded_scores(
    session: Session, patient_id: int, clock: ClinicClock | None = None
) -> list[RecordedScore]:
    """The patient's latest PHQ-9, GAD-7 and DASS-21, scored again from the answers as given
    (with the current instrument definitions), dated on the clinic's calendar."""
    clock = clock or clinic_clock()
    out = []
    for row in latest_assessments(session, patient_id, SCREENED_INSTRUMENTS):
        try:
            scored = instruments.score(row.instrument_id, row.answers)
        except instruments.InstrumentError as error:
            raise InvalidInput(
                f"assessments: {_ref(row)} ({row.instrument_id}) can no longer be scored "
                f"({error}); correct it before screening.",
                field="assessments",
            ) from error
        out.append(RecordedScore(scored, clock.date_of(row.administered_at), _ref(row)))
    return out


def run_screening(
    db: Database, actor: Actor, patient_id: int, *, clock: ClinicClock | None = None
) -> ScreeningView:
    """Screen the patient's current record (and latest questionnaires); store the result."""
    with action(db, actor, "screening.run", entity="screening", patient_id=patient_id) as session:
        _, current = load_patient(session, patient_id)
        scores = recorded_scores(session, patient_id, clock)
        today = (clock or clinic_clock()).today()
        result = screen(as_patient(current.document, today), questionnaires=scores)
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
        return _view(session, row, current.id, frozenset(s.ref for s in scores))


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
        return _views(session, list(rows), current.id, _latest_refs(session, patient_id))
