"""Builders for the registry's tests: courses with known outcomes, written as the services
would have stored them over past weeks.

A course is a physician's signed order (through the services: the course document is the
domain's), then rows the services cannot write in the past: its sessions on past dates with
their charts (check-in with the pump programme, start, completion), the baseline and follow-up
pain scores tied to the course, and the diary. Every day is counted from the course's last
session, so a test states each outcome by construction (relief ends on day 10, censored at
day 6, never began) and computes the analytics' expected numbers by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import TypeAdapter
from tests.integration.conftest import signed_order

from ketapath.domain.session_events import ChartEntry
from ketapath.domain.sessions import programme_of
from ketapath.knowledge.library import default_library
from ketapath.services import orders
from ketapath.services.assessments import score_answers
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import (
    Assessment,
    AssessmentContext,
    DiaryEntry,
    InfusionSession,
    SessionEvent,
)

ENTRY: TypeAdapter[Any] = TypeAdapter(ChartEntry)
# The last session of every built course; days of outcomes count from it.
LAST_SESSION = date(2025, 3, 3)
VITALS = {
    "heart_rate": 72,
    "systolic": 124,
    "diastolic": 78,
    "spo2": 98,
    "respiratory_rate": 14,
    "sedation": 0,
}


@dataclass
class CourseSpec:
    """One course: its baseline NRS, follow-up NRS by day, and diary pain by day (days after
    the last session); ``minutes`` of infusion at the order's rate in its one session."""

    baseline: int | None = 8
    follow_ups: dict[int, int] = field(default_factory=dict)
    diary: dict[int, int] = field(default_factory=dict)
    minutes: int = 180
    name: str = "Registry Patient"


def at(day: date, minutes: int) -> datetime:
    return datetime.combine(day, time(9, 0), tzinfo=UTC) + timedelta(minutes=minutes)


def build_course(database: Database, users: dict[str, Actor], spec: CourseSpec) -> int:
    """Write one course (asra-initial: 80 mg over 180 min in one session); its order id."""
    order_id = signed_order(database, users, name=spec.name)
    order = orders.get_order(database, users["physician"], order_id)
    library = default_library()
    course = order.course
    pump = next(p for p in library.pumps if p.id == course["pump_id"])
    programme = programme_of(
        course, 1, pump=pump, limits=library.setting("clinic"), observation_min=None
    )
    with database.transaction() as session:
        row = InfusionSession(
            patient_id=order.patient_id,
            order_id=order_id,
            session_number=1,
            scheduled_on=LAST_SESSION,
            chair="Chair 1",
            created_at=at(LAST_SESSION, -60 * 24 * 7),
        )
        session.add(row)
        session.flush()
        entries: list[dict[str, Any]] = [
            {
                "kind": "check_in",
                "occurred_at": at(LAST_SESSION, 0),
                "consent_confirmed": True,
                "fasting_confirmed": True,
                "escort_present": True,
                "allergies_confirmed": True,
                "pregnancy_test": "negative",
                "baseline": VITALS,
                "baseline_pain_nrs": 7,
                "programme": programme.model_dump(mode="json"),
            },
            {"kind": "start", "occurred_at": at(LAST_SESSION, 10)},
            {"kind": "vitals", "occurred_at": at(LAST_SESSION, 40), **VITALS},
            {"kind": "complete", "occurred_at": at(LAST_SESSION, 10 + spec.minutes)},
        ]
        for seq, data in enumerate(entries, start=1):
            entry = ENTRY.validate_python(data)
            session.add(
                SessionEvent(
                    session_id=row.id,
                    seq=seq,
                    kind=entry.kind,
                    occurred_at=entry.occurred_at,
                    recorded_at=entry.occurred_at,
                    recorded_role="nurse",
                    payload=entry.model_dump(mode="json"),
                )
            )
        if spec.baseline is not None:
            _nrs(session, order.patient_id, order_id, spec.baseline, -7, "baseline", None)
        for days, score in spec.follow_ups.items():
            _nrs(session, order.patient_id, order_id, score, days, "follow-up", days)
        for days, pain in spec.diary.items():
            add_diary(session, order.patient_id, order_id, days, pain)
    return order_id


def _nrs(
    session: Any,
    patient_id: int,
    order_id: int,
    score: int,
    days: int,
    label: str,
    timepoint: int | None,
) -> None:
    given = at(LAST_SESSION + timedelta(days=days), 120)
    row = Assessment(
        patient_id=patient_id,
        instrument_id="nrs",
        answers={"pain": score},
        score=score_answers("nrs", {"pain": score}),
        total=float(score),
        administered_at=given,
        recorded_at=given,
    )
    session.add(row)
    session.flush()
    session.add(
        AssessmentContext(
            assessment_id=row.id,
            patient_id=patient_id,
            order_id=order_id,
            label=label,
            timepoint_days=timepoint,
            recorded_at=given,
        )
    )


def add_diary(session: Any, patient_id: int, order_id: int, days: int, pain: int) -> None:
    """One diary day, ``days`` after the last session."""
    day = LAST_SESSION + timedelta(days=days)
    session.add(
        DiaryEntry(
            patient_id=patient_id,
            order_id=order_id,
            day=day,
            pain_nrs=pain,
            entry={"sleep_quality": None, "side_effects": [], "opioid_doses": [], "note": ""},
            recorded_at=at(day, 600),
        )
    )


def relieved(first: int, last: int, pain: int = 3) -> dict[int, int]:
    """Diary days ``first``..``last`` in relief."""
    return dict.fromkeys(range(first, last + 1), pain)
