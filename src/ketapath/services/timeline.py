"""The patient's timeline: record versions, assessments, screens and orders, oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.services import audit
from ketapath.services.patients import load_patient
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import (
    Assessment,
    CourseRecord,
    Order,
    PatientVersion,
    ScreeningResult,
    User,
)

EventKind = Literal[
    "record", "amendment", "assessment", "assessment_amendment", "screening", "order", "cancel"
]


class TimelineEvent(BaseModel):
    at: datetime
    kind: EventKind
    id: int
    by: str | None
    summary: str
    reason: str | None = None
    data: dict[str, Any] = {}


def _names(session: Session) -> dict[int, str]:
    return {row.id: row.username for row in session.execute(select(User.id, User.username))}


def _events(session: Session, patient_id: int) -> list[TimelineEvent]:
    names = _names(session)
    events: list[TimelineEvent] = []
    for version in session.scalars(
        select(PatientVersion).where(PatientVersion.patient_id == patient_id)
    ):
        events.append(
            TimelineEvent(
                at=version.recorded_at,
                kind="record" if version.version == 1 else "amendment",
                id=version.id,
                by=names.get(version.recorded_by_id or -1),
                summary=f"record version {version.version}",
                reason=version.reason,
                data={"version": version.version},
            )
        )
    for row in session.scalars(select(Assessment).where(Assessment.patient_id == patient_id)):
        total = "" if row.total is None else f": {row.total:g}"
        events.append(
            TimelineEvent(
                at=row.recorded_at,
                kind="assessment_amendment" if row.amends_id else "assessment",
                id=row.id,
                by=names.get(row.recorded_by_id or -1),
                summary=f"{row.instrument_id}{total}",
                reason=row.reason,
                data={"administered_at": row.administered_at.isoformat(), "total": row.total},
            )
        )
    for screen in session.scalars(
        select(ScreeningResult).where(ScreeningResult.patient_id == patient_id)
    ):
        events.append(
            TimelineEvent(
                at=screen.run_at,
                kind="screening",
                id=screen.id,
                by=names.get(screen.run_by_id or -1),
                summary=f"screen: {screen.decision.replace('_', ' ')}",
                data={"decision": screen.decision},
            )
        )
    protocols = dict(
        session.execute(
            select(CourseRecord.id, CourseRecord.protocol_id).where(
                CourseRecord.patient_id == patient_id
            )
        ).all()
    )
    for order in session.scalars(select(Order).where(Order.patient_id == patient_id)):
        protocol = protocols.get(order.course_id, "?")
        signed = order.status == "signed"
        events.append(
            TimelineEvent(
                at=order.recorded_at,
                kind="order" if signed else "cancel",
                id=order.amends_id if not signed and order.amends_id else order.id,
                by=names.get(order.recorded_by_id or -1),
                summary=f"{'signed' if signed else 'cancelled'} order: {protocol}",
                reason=order.override_reason if signed else order.reason,
                data={"protocol_id": protocol, "override_codes": order.override_codes},
            )
        )
    return sorted(events, key=lambda e: (e.at, e.kind, e.id))


def patient_timeline(db: Database, actor: Actor, patient_id: int) -> list[TimelineEvent]:
    """Everything recorded about the patient, oldest first (the read is audited)."""
    with action(db, actor, "patient.timeline", entity="patient", entity_id=patient_id) as s:
        load_patient(s, patient_id)
        events = _events(s, patient_id)
        audit.record(
            s,
            actor,
            "patient.timeline",
            entity="patient",
            entity_id=patient_id,
            patient_id=patient_id,
            detail={"count": len(events)},
        )
        return events
