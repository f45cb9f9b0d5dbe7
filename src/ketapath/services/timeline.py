"""The patient's timeline: record versions, assessments, screens, orders and the opioid plan,
oldest first."""

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
    OpioidDose,
    OpioidPlan,
    Order,
    OrderConfirmation,
    PatientVersion,
    ScreeningResult,
    User,
)

EventKind = Literal[
    "record",
    "amendment",
    "assessment",
    "assessment_amendment",
    "screening",
    "order",
    "cancel",
    "order_confirmation",
    "opioid_plan",
    "opioid_plan_withdrawn",
    "opioid_dose",
    "opioid_dose_amendment",
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
    for confirmation in session.scalars(
        select(OrderConfirmation).where(OrderConfirmation.patient_id == patient_id)
    ):
        changes = "; ".join(c.get("text", "") for c in confirmation.facts.get("changes", []))
        events.append(
            TimelineEvent(
                at=confirmation.recorded_at,
                kind="order_confirmation",
                id=confirmation.order_id,
                by=names.get(confirmation.recorded_by_id or -1),
                summary=f"confirmed order {confirmation.order_id} ({changes})",
                reason=confirmation.reason,
            )
        )
    for plan in session.scalars(select(OpioidPlan).where(OpioidPlan.patient_id == patient_id)):
        agreed = plan.status == "agreed"
        conversion = (plan.plan or {}).get("conversion") or {}
        target = (
            f" (to {conversion.get('route')} {conversion.get('opioid_id')})" if conversion else ""
        )
        events.append(
            TimelineEvent(
                at=plan.recorded_at,
                kind="opioid_plan" if agreed else "opioid_plan_withdrawn",
                id=plan.id if agreed else (plan.amends_id or plan.id),
                by=names.get(plan.recorded_by_id or -1),
                summary=f"opioid plan agreed{target}" if agreed else "opioid plan withdrawn",
                reason=plan.override_reason if agreed else plan.reason,
            )
        )
    for dose in session.scalars(select(OpioidDose).where(OpioidDose.patient_id == patient_id)):
        ome = "incomplete" if dose.ome_mg_per_day is None else f"{dose.ome_mg_per_day:g} mg OME"
        events.append(
            TimelineEvent(
                at=dose.recorded_at,
                kind="opioid_dose_amendment" if dose.amends_id else "opioid_dose",
                id=dose.id,
                by=names.get(dose.recorded_by_id or -1),
                summary=f"opioids taken on {dose.taken_on.isoformat()}: {ome} per day",
                reason=dose.reason,
                data={"taken_on": dose.taken_on.isoformat(), "ome_mg_per_day": dose.ome_mg_per_day},
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
