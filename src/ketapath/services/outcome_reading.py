"""What a course's outcomes are computed from, read from the records inside a transaction the
caller holds (after its permission check; the caller audits).

- the course: its signed order, protocol and dosing weight (``read_course``);
- its sessions: which were **given** (the pump was started: a ``start`` entry in the chart),
  the dose each delivered (replayed from the chart, never typed), why one stopped, and
  which are still to come (``course_sessions``);
- its assessments by label (baseline, post-session, follow-up) and timepoint;
- its diary (the latest entry of each day);
- the daily opioid dose before and after it (mg OME).

"Given" is one definition everywhere: the follow-up schedule, the outcomes, the cumulative
dose and the repeat decision all count from the last session whose pump was started.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketapath.domain import opioids
from ketapath.domain.errors import DomainError
from ketapath.domain.session_dose import mg_text
from ketapath.domain.session_events import Stop
from ketapath.domain.sessions import delivered_fraction
from ketapath.knowledge.clinical import Protocol, knowledge
from ketapath.services.assessments import contexts_of, current_assessments
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import NotFound
from ketapath.services.patients import as_patient
from ketapath.services.sessions import live_sessions, replayed_charts
from ketapath.store.models import (
    CourseRecord,
    DiaryEntry,
    InfusionSession,
    OpioidDose,
    Order,
    PatientVersion,
    SessionEvent,
)

# Why a session stopped that makes the course "not tolerated" (FPM (ANZCA) 2016, section 5:
# dissociative or amnestic effects stop the infusion; troublesome side effects).
NOT_TOLERATED = {
    "dissociation": "dissociation",
    "amnesia": "amnesia",
    "side_effect": "side effects",
}
# Sessions that ended without being given.
NOT_GIVEN_STATES = {"cancelled", "did_not_attend"}


@dataclass(frozen=True)
class CourseRow:
    """A signed order as a course: its protocol, plan and dosing weight."""

    order_id: int
    patient_id: int
    protocol_id: str
    protocol_name: str
    course: dict[str, Any]
    options: dict[str, Any]
    cancelled: bool
    signed_at: datetime
    patient_version_id: int

    @property
    def dosing_weight_kg(self) -> float | None:
        weight = self.course.get("dosing_weight_kg")
        return float(weight) if isinstance(weight, int | float) and weight > 0 else None

    @property
    def protocol(self) -> Protocol | None:
        try:
            return knowledge().protocol(self.protocol_id)
        except KeyError:
            return None

    def planned_rate_mg_per_kg_per_h(self, number: int) -> float | None:
        """The highest rate the course planned for session ``number`` (mg/kg/h)."""
        for planned in self.course.get("sessions", []):
            if int(planned.get("session", 0)) == number:
                rates = [
                    float(step["rate_mg_per_kg_per_h"])
                    for step in planned.get("steps", [])
                    if isinstance(step.get("rate_mg_per_kg_per_h"), int | float)
                ]
                return max(rates, default=None)
        return None


@dataclass(frozen=True)
class GivenSession:
    """A session whose pump was started, with what its chart delivered."""

    session_id: int
    number: int
    day: date
    state: str
    delivered_mg: Fraction
    stop_reason: str | None

    @property
    def delivered_text(self) -> str:
        return mg_text(self.delivered_mg)


@dataclass(frozen=True)
class CourseSessions:
    """The sessions of a course: those given (by day) and how many are still to come."""

    given: tuple[GivenSession, ...]
    to_come: int

    @property
    def last_day(self) -> date | None:
        return self.given[-1].day if self.given else None

    @property
    def first_day(self) -> date | None:
        return self.given[0].day if self.given else None

    @property
    def delivered_mg(self) -> Fraction:
        return sum((s.delivered_mg for s in self.given), Fraction(0))


@dataclass(frozen=True)
class CourseReading:
    """One assessment of the course: its label, timepoint and scores."""

    assessment_id: int
    instrument_id: str
    label: str
    timepoint_days: int | None
    administered_at: datetime
    total: float | None
    score: dict[str, Any]

    def subscale(self, scale_id: str) -> float | None:
        """A subscale's value when it could be scored (never 0 for an unscored one)."""
        scale = (self.score.get("subscales") or {}).get(scale_id) or {}
        value = scale.get("value")
        if value is None or not scale.get("scorable", True):
            return None
        return float(value)

    def answer(self, item_id: str) -> float | None:
        value = (self.score.get("answers") or {}).get(item_id)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )


# ------------------------------------------------------------------ the course


def _course_row(order: Order, record: CourseRecord, cancelled: bool) -> CourseRow:
    return CourseRow(
        order_id=order.id,
        patient_id=order.patient_id,
        protocol_id=record.protocol_id,
        protocol_name=str(record.course.get("protocol_name", record.protocol_id)),
        course=record.course,
        options=record.options or {},
        cancelled=cancelled,
        signed_at=order.recorded_at,
        patient_version_id=record.patient_version_id,
    )


def read_course(session: Session, order_id: int) -> CourseRow:
    """The signed order ``order_id`` as a course; ``NotFound`` naming ``order_id``."""
    order = session.get(Order, order_id)
    if order is None or order.status != "signed":
        raise NotFound(f"order_id: no signed order {order_id}.", field="order_id")
    record = session.get(CourseRecord, order.course_id)
    assert record is not None
    cancelled = session.scalar(select(Order.id).where(Order.amends_id == order.id)) is not None
    return _course_row(order, record, cancelled)


def patient_courses(session: Session, patient_id: int) -> list[CourseRow]:
    """Every signed order of the patient (cancelled ones too), oldest first."""
    orders = session.scalars(
        select(Order)
        .where(Order.patient_id == patient_id, Order.status == "signed")
        .order_by(Order.recorded_at, Order.id)
    ).all()
    return _rows_of(session, list(orders))


def _rows_of(session: Session, orders: list[Order]) -> list[CourseRow]:
    if not orders:
        return []
    ids = [o.id for o in orders]
    records = {
        r.id: r
        for r in session.scalars(
            select(CourseRecord).where(CourseRecord.id.in_({o.course_id for o in orders}))
        )
    }
    cancelled = set(session.scalars(select(Order.amends_id).where(Order.amends_id.in_(ids))))
    return [_course_row(o, records[o.course_id], o.id in cancelled) for o in orders]


# ------------------------------------------------------------------ sessions


def course_sessions(
    session: Session, order_ids: Iterable[int], clock: ClinicClock
) -> dict[int, CourseSessions]:
    """For each order, its sessions given (pump started), with the dose each chart
    delivered, and how many are still to come (scheduled from today on, not yet given)."""
    wanted = list(dict.fromkeys(order_ids))
    if not wanted:
        return {}
    rows = session.scalars(
        live_sessions()
        .where(InfusionSession.order_id.in_(wanted))
        .order_by(InfusionSession.scheduled_on, InfusionSession.session_number)
    ).all()
    today = clock.today()
    given: dict[int, list[GivenSession]] = {o: [] for o in wanted}
    to_come: dict[int, int] = dict.fromkeys(wanted, 0)
    for row, events, view in replayed_charts(session, rows, clock):
        started = any(e.kind == "start" for e in events)
        if started:
            stop = next((e.entry for e in events if isinstance(e.entry, Stop)), None)
            given[row.order_id].append(
                GivenSession(
                    session_id=row.id,
                    number=row.session_number,
                    day=row.scheduled_on,
                    state=view.state,
                    delivered_mg=delivered_fraction(view),
                    stop_reason=stop.reason if stop is not None else None,
                )
            )
        elif view.state not in NOT_GIVEN_STATES and row.scheduled_on >= today:
            to_come[row.order_id] += 1
    return {o: CourseSessions(tuple(given[o]), to_come[o]) for o in wanted}


def last_given_days(session: Session, clock: ClinicClock) -> dict[int, tuple[int, date]]:
    """For every signed order with a session given: (patient id, the day of its last session
    given), without replaying charts; orders with a session still to come are left out (their
    follow-up has not begun)."""
    started = (
        select(SessionEvent.id)
        .where(SessionEvent.session_id == InfusionSession.id, SessionEvent.kind == "start")
        .exists()
    )
    ended = (
        select(SessionEvent.id)
        .where(
            SessionEvent.session_id == InfusionSession.id,
            SessionEvent.kind.in_(("cancel", "did_not_attend")),
        )
        .exists()
    )
    live = live_sessions().subquery()
    given = dict(
        (order_id, (patient_id, day))
        for order_id, patient_id, day in session.execute(
            select(
                InfusionSession.order_id,
                InfusionSession.patient_id,
                func.max(InfusionSession.scheduled_on),
            )
            .where(InfusionSession.id.in_(select(live.c.id)), started)
            .group_by(InfusionSession.order_id, InfusionSession.patient_id)
        ).all()
    )
    if not given:
        return {}
    coming = set(
        session.scalars(
            select(InfusionSession.order_id)
            .where(
                InfusionSession.id.in_(select(live.c.id)),
                InfusionSession.order_id.in_(list(given)),
                InfusionSession.scheduled_on >= clock.today(),
                ~started,
                ~ended,
            )
            .distinct()
        )
    )
    # a course cancelled after some of its sessions were given still has its follow-up
    return {o: v for o, v in given.items() if o not in coming}


# ------------------------------------------------------------------ assessments and diary


def course_readings(session: Session, patient_id: int, order_id: int) -> list[CourseReading]:
    """The course's assessments (current versions), oldest first."""
    rows = current_assessments(session, patient_id)
    contexts = {rid: c for rid, c in contexts_of(session, rows).items() if c.order_id == order_id}
    return [
        CourseReading(
            assessment_id=row.id,
            instrument_id=row.instrument_id,
            label=contexts[row.id].label,
            timepoint_days=contexts[row.id].timepoint_days,
            administered_at=row.administered_at,
            total=row.total,
            score=row.score or {},
        )
        for row in rows
        if row.id in contexts
    ]


def recorded_timepoints(
    session: Session, order_ids: Sequence[int]
) -> dict[int, dict[int, set[str]]]:
    """For each order: follow-up timepoint (days) -> the instruments recorded at it."""
    from ketapath.store.models import Assessment, AssessmentContext

    if not order_ids:
        return {}
    rows = session.execute(
        select(
            AssessmentContext.order_id, AssessmentContext.timepoint_days, Assessment.instrument_id
        )
        .join(Assessment, Assessment.id == AssessmentContext.assessment_id)
        .where(
            AssessmentContext.order_id.in_(list(order_ids)),
            AssessmentContext.label == "follow-up",
        )
    ).all()
    out: dict[int, dict[int, set[str]]] = {}
    for order_id, days, instrument_id in rows:
        if days is not None:
            out.setdefault(order_id, {}).setdefault(days, set()).add(instrument_id)
    return out


def course_diary(session: Session, order_id: int) -> dict[date, tuple[int, int | None]]:
    """The latest entry of each diary day: (pain NRS, sleep quality or None)."""
    rows = session.scalars(
        select(DiaryEntry).where(DiaryEntry.order_id == order_id).order_by(DiaryEntry.id)
    ).all()
    amended = {row.amends_id for row in rows if row.amends_id is not None}
    out: dict[date, tuple[int, int | None]] = {}
    for row in rows:
        if row.id in amended:
            continue
        sleep = (row.entry or {}).get("sleep_quality")
        out[row.day] = (row.pain_nrs, sleep if isinstance(sleep, int) else None)
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ opioids


@dataclass(frozen=True)
class OmeTotal:
    """A daily opioid total (mg OME) and where it comes from; ``complete`` False when an
    opioid was left out; ``total`` None when there is none."""

    total: float | None
    complete: bool
    source: str


def _current_doses(session: Session, patient_id: int) -> list[OpioidDose]:
    rows = session.scalars(
        select(OpioidDose).where(OpioidDose.patient_id == patient_id).order_by(OpioidDose.id)
    ).all()
    replaced = {row.amends_id for row in rows if row.amends_id is not None}
    current = [row for row in rows if row.id not in replaced]
    return sorted(current, key=lambda row: (row.taken_on, row.id))


def _dose_total(row: OpioidDose, words: str) -> OmeTotal:
    """A recorded day's total: the stored OME when complete; else the partial total of its
    result (what could be converted), marked incomplete so that it is never used as known."""
    if row.complete and row.ome_mg_per_day is not None:
        return OmeTotal(row.ome_mg_per_day, True, words)
    partial = (row.result or {}).get("total_ome_mg_per_day")
    total = float(partial) if isinstance(partial, int | float) else None
    return OmeTotal(total, False, words + " (incomplete: an opioid could not be converted)")


def baseline_ome(session: Session, course: CourseRow, first_day: date | None) -> OmeTotal:
    """The daily opioid dose before the course: the last dose recorded on or before its
    first session, else the opioids of the record the course was signed from."""
    before = [
        row
        for row in _current_doses(session, course.patient_id)
        if first_day is not None and row.taken_on <= first_day
    ]
    if before:
        row = before[-1]
        return _dose_total(row, f"daily dose recorded for {row.taken_on.isoformat()}")
    version = session.get(PatientVersion, course.patient_version_id)
    if version is None:
        return OmeTotal(None, False, "no record")
    try:
        result = opioids.oral_morphine_equivalents(
            list(as_patient(version.document).medications), opioids.DEFAULT_TABLE
        )
    except DomainError:
        return OmeTotal(None, False, "the record's opioids could not be read")
    words = f"the record the course was signed from (version {version.version})"
    if result.total_status == "no-opioids":
        return OmeTotal(0.0, True, words + ": no opioid")
    return OmeTotal(result.total_ome_mg_per_day, result.complete, words)


def current_ome(session: Session, patient_id: int, last_day: date | None) -> OmeTotal:
    """The daily opioid dose after the course: the latest dose recorded after its last
    session (None when none is recorded yet: unknown, never 0)."""
    after = [
        row
        for row in _current_doses(session, patient_id)
        if last_day is not None and row.taken_on > last_day
    ]
    if not after:
        return OmeTotal(None, False, "no daily dose recorded after the last session")
    row = after[-1]
    return _dose_total(row, f"daily dose recorded for {row.taken_on.isoformat()}")
