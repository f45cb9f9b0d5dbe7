"""The infusion day: sessions from signed orders, the worklist and board, the chart (issue 10).

One function per user action, each in one transaction with its permission check and audit row
(``services.unit.action``). The chart is append-only (``session_events``); every read replays it
through the pure domain (``ketapath.domain.sessions``) at the clinic's now, so the state, the
delivered dose and the prompts are never stored and never typed.

Rules the services add to the domain's:

- only a usable signed order (``services.orders``: signed, not cancelled, consent on record,
  dosing facts unchanged or confirmed) is scheduled, checked in, started or resumed;
- check-in reads the pump programme from the signed order and the clinic's active drug
  library (the pump of the order, its range, the bag strength stocked, the adjunct limits)
  and freezes it into the check-in entry;
- every write carries ``expected_seq``, the last entry its writer saw: an entry that changes
  the state or the dose, or answers a prompt, is refused (409) when the chart has moved on;
  observations land anyway (two nurses charting one patient lose nothing);
- a discharge with an override reason needs the physician's permission;
- times are clinical times: not in the future beyond the clock skew of ``input_bounds.yaml``
  and not before the session's day (in the clinic's time zone).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from ketapath.domain.errors import DomainError
from ketapath.domain.session_dose import mg_text
from ketapath.domain.session_events import (
    Acknowledge,
    ChartEntry,
    ChartEvent,
    CheckIn,
    PumpProgramme,
    Void,
)
from ketapath.domain.session_view import Prompt, SessionView, State
from ketapath.domain.sessions import (
    ChartRefused,
    IllegalTransition,
    PatientFacts,
    PatientFactsInput,
    ProgrammeReplayRequest,
    ReplayEvent,
    ReplayRequest,
    SessionContext,
    check_append,
    delivered_fraction,
    is_strict,
    programme_of,
    replay,
    replay_log,
)

__all__ = ["PatientFactsInput", "ProgrammeReplayRequest", "ReplayEvent", "ReplayRequest"]
from ketapath.config import Settings, get_settings
from ketapath.knowledge.bounds import input_bounds
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.sessions import (
    SessionRulesFile,
    load_clinic_thresholds,
    with_clinic_thresholds,
)
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.library import active_library
from ketapath.services.orders import OrderView, order_in, refuse_unusable
from ketapath.services.patients import as_patient, latest_versions_query, load_patient
from ketapath.services.permissions import Actor
from ketapath.services.unit import action, check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.store.models import (
    CourseRecord,
    InfusionSession,
    Order,
    PatientVersion,
    SessionEvent,
    User,
    utcnow,
)

ENTRY: TypeAdapter[Any] = TypeAdapter(ChartEntry)
# How far ahead of today a course may be scheduled (a typing slip of a year, not a policy).
MAX_DAYS_AHEAD = 366
CHAIR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
# Entries that use the signed order: it must still be usable when they are charted.
USES_ORDER = ("check_in", "start", "resume")


def chart_time_ahead() -> timedelta:
    """The clock skew a chart entry's time may have over the server's (input_bounds.yaml)."""
    return timedelta(seconds=input_bounds()["chart_time_ahead_s"].maximum)


# ------------------------------------------------------------------ requests and views


class ScheduleRequest(BaseModel):
    """Schedule every session of a signed course: from a first date, in a chair."""

    model_config = ConfigDict(extra="forbid")

    first_date: date = Field(description="The clinic date of the course's first session.")
    chair: str = Field(min_length=1, max_length=40, pattern=CHAIR_PATTERN, examples=["Chair 1"])


class ChartWrite(BaseModel):
    """One chart entry, with the last entry the writer saw."""

    model_config = ConfigDict(extra="forbid")

    expected_seq: int = Field(
        ge=0, le=2**31 - 1, description="The last entry (seq) the writer saw; 0 for none."
    )
    entry: ChartEntry


class Correction(ChartWrite):
    """A correction of an earlier entry: the entry as it should read, and why."""

    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


class VoidRequest(BaseModel):
    """An observation entered in error, and why."""

    model_config = ConfigDict(extra="forbid")

    expected_seq: int = Field(ge=0, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


class PromptBrief(BaseModel):
    """A prompt as the worklist and the board show it."""

    id: str
    code: str
    severity: str
    message: str


class SessionSummary(BaseModel):
    """A session as the worklist shows it (replayed now)."""

    id: int
    patient_id: int
    patient_name: str
    order_id: int
    session_number: int
    sessions_in_course: int
    protocol_id: str
    protocol_name: str
    scheduled_on: date
    chair: str
    state: State
    state_since: datetime | None
    running_rate_mg_per_h: float | None
    running_rate_ml_per_h: float | None
    delivered_mg: float
    ordered_mg: float | None
    next_observation_due: datetime | None
    alerts: list[PromptBrief] = Field(description="Prompts nobody has answered yet.")
    last_seq: int


class BoardChair(BaseModel):
    """One chair of the clinic board: who is in it and what needs doing."""

    chair: str
    session: SessionSummary | None
    minutes_to_next_observation: float | None = Field(
        description="Minutes until observations are due (negative: overdue)."
    )
    sessions_today: list[int]


class Board(BaseModel):
    """Every chair of the clinic on a date, at a moment."""

    on: date
    at: datetime
    chairs: list[BoardChair]


class SessionDetail(BaseModel):
    """A session and its chart replayed now: what the session page shows."""

    id: int
    patient_id: int
    patient_name: str
    order_id: int
    session_number: int
    sessions_in_course: int
    protocol_id: str
    protocol_name: str
    scheduled_on: date
    chair: str
    scheduled_by: str | None
    scheduled_at: datetime
    order_state: str = Field(description="usable, stale, no_consent or cancelled")
    order_problem: str | None = Field(description="Why the order cannot be used now, if so.")
    programme: PumpProgramme | None = Field(
        description="The pump programme: frozen at check-in, or what check-in would read now."
    )
    chart: SessionView


class ChartResult(BaseModel):
    """What a chart write answers: the entry's place, and the chart replayed with it."""

    session_id: int
    patient_id: int
    seq: int = Field(description="The entry just charted.")
    chart: SessionView


class StoredEntry(BaseModel):
    """One entry of the chart as stored (corrections included, never changed)."""

    seq: int
    kind: str
    occurred_at: datetime
    recorded_at: datetime
    recorded_by: str | None
    recorded_role: str
    amends_seq: int | None
    reason: str | None
    entry: ChartEntry


class PatientSessions(BaseModel):
    """A patient's sessions and the ketamine given over all of them."""

    patient_id: int
    sessions: list[SessionSummary]
    lifetime_delivered_mg: float
    lifetime_delivered_mg_exact: str


# ------------------------------------------------------------------ loading


def _live_sessions() -> Any:
    """Sessions not replaced by a later row (moved sessions keep their old row)."""
    newer = aliased(InfusionSession)
    return select(InfusionSession).where(~exists().where(newer.replaces_id == InfusionSession.id))


def _row(session: Session, session_id: int) -> InfusionSession:
    row = session.get(InfusionSession, session_id)
    if row is None:
        raise NotFound(f"session_id: no session {session_id}.", field="session_id")
    return row


def _locked_row(session: Session, session_id: int) -> InfusionSession:
    """The session row, locked for this transaction on PostgreSQL (one writer per chart;
    SQLite's BEGIN IMMEDIATE already admits one writer at a time)."""
    row = session.scalars(
        select(InfusionSession).where(InfusionSession.id == session_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"session_id: no session {session_id}.", field="session_id")
    return row


@dataclass(frozen=True)
class _Chart:
    """A chart as read: its entries, and the id and time of its last row (the fingerprint
    that a later read checks before it trusts the copy)."""

    events: tuple[ChartEvent, ...]
    last_id: int
    last_recorded_at: datetime


# Chart rows are never changed (append-only, by trigger), so a chart read once is kept and
# only its new rows are read afterwards; the last row's id and time are checked first, so a
# database restored or emptied under the same address is read again in full.
_CHARTS: OrderedDict[tuple[str, int], _Chart] = OrderedDict()
_CHARTS_LOCK = threading.Lock()
CACHED_CHARTS = 512


# Sessions per query of _events: SQLite parses a chain of ORs as a tree at most 1,000 deep
# ("Expression tree is too large"), and PostgreSQL plans a 100,000-way OR very slowly.
EVENTS_BATCH = 500


def _events(session: Session, session_ids: Sequence[int]) -> dict[int, list[ChartEvent]]:
    """The charts of several sessions: the rows not yet read, in one query per
    ``EVENTS_BATCH`` sessions (the sessions read in full by ``IN``, the cached ones from their
    next entry)."""
    if not session_ids:
        return {}
    where = str(session.get_bind().engine.url)
    with _CHARTS_LOCK:
        known = {sid: _CHARTS.get((where, sid)) for sid in session_ids}
    unread = [sid for sid, chart in known.items() if chart is None]
    cached = [(sid, chart) for sid, chart in known.items() if chart is not None]
    batches: list[Any] = [
        SessionEvent.session_id.in_(unread[i : i + EVENTS_BATCH])
        for i in range(0, len(unread), EVENTS_BATCH)
    ] + [
        or_(
            *(
                and_(SessionEvent.session_id == sid, SessionEvent.seq >= len(chart.events))
                for sid, chart in cached[i : i + EVENTS_BATCH]
            )
        )
        for i in range(0, len(cached), EVENTS_BATCH)
    ]
    rows: list[SessionEvent] = []
    for condition in batches:
        rows.extend(
            session.scalars(
                select(SessionEvent)
                .where(condition)
                .order_by(SessionEvent.session_id, SessionEvent.seq)
            ).all()
        )
    fresh: dict[int, list[SessionEvent]] = {sid: [] for sid in session_ids}
    for row in rows:
        fresh[row.session_id].append(row)
    names = _usernames(session, {r.recorded_by_id for r in rows})  # one query, not a chart's
    out: dict[int, list[ChartEvent]] = {}
    stale = []
    for sid, chart in known.items():
        new = fresh[sid]
        if chart is not None and chart.events:
            first = new[0] if new else None
            if first is None or (first.id, first.recorded_at) != (
                chart.last_id,
                chart.last_recorded_at,
            ):
                stale.append(sid)
                continue
            new = new[1:]
        out[sid] = [*(chart.events if chart else ()), *_parsed(new, names)]
        _keep(where, sid, out[sid], new[-1] if new else None, chart)
    for sid in stale:  # read again in full
        with _CHARTS_LOCK:
            _CHARTS.pop((where, sid), None)
        out[sid] = _events(session, [sid])[sid]
    return out


def _parsed(rows: Sequence[SessionEvent], names: dict[int | None, str]) -> list[ChartEvent]:
    return [
        ChartEvent(
            seq=row.seq,
            entry=ENTRY.validate_python(row.payload),
            recorded_by=names.get(row.recorded_by_id) or "",
            by_role=row.recorded_role,
            recorded_at=row.recorded_at,
            amends_seq=row.amends_seq,
            reason=row.reason or "",
        )
        for row in rows
    ]


def _keep(
    where: str,
    sid: int,
    events: list[ChartEvent],
    last: SessionEvent | None,
    before: _Chart | None,
) -> None:
    if last is not None:
        chart = _Chart(tuple(events), last.id, last.recorded_at)
    elif before is not None:
        chart = before
    else:
        return
    with _CHARTS_LOCK:
        _CHARTS[(where, sid)] = chart
        _CHARTS.move_to_end((where, sid))
        while len(_CHARTS) > CACHED_CHARTS:
            _CHARTS.popitem(last=False)


def _usernames(session: Session, ids: set[int | None]) -> dict[int | None, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


def _patients(session: Session, patient_ids: set[int]) -> dict[int, PatientVersion]:
    rows = session.scalars(
        latest_versions_query().where(PatientVersion.patient_id.in_(patient_ids))
    ).all()
    return {row.patient_id: row for row in rows}


def _courses(session: Session, order_ids: set[int]) -> dict[int, dict[str, Any]]:
    rows = session.execute(
        select(Order.id, CourseRecord.course)
        .join(CourseRecord, CourseRecord.id == Order.course_id)
        .where(Order.id.in_(order_ids))
    ).all()
    return {order_id: course for order_id, course in rows}


def _facts(version: PatientVersion | None) -> PatientFacts:
    if version is None:
        return PatientFacts()
    patient = as_patient(version.document)
    return PatientFacts(sex=patient.sex, pregnancy=patient.pregnancy)


def _programme(events: Sequence[ChartEvent]) -> PumpProgramme | None:
    """The programme frozen at check-in (its latest correction keeps it)."""
    check_in = next((e for e in events if e.kind == "check_in" and e.amends_seq is None), None)
    if check_in is None:
        return None
    latest: ChartEvent = check_in
    for event in events:
        if event.amends_seq == latest.seq:
            latest = event
    entry = latest.entry if isinstance(latest.entry, CheckIn) else check_in.entry
    assert isinstance(entry, CheckIn)
    return entry.programme


def _context(
    row: InfusionSession,
    events: Sequence[ChartEvent],
    facts: PatientFacts | None,
    clock: ClinicClock,
    programme: PumpProgramme | None = None,
) -> SessionContext:
    return SessionContext(
        programme=programme or _programme(events),
        patient=facts,
        zone=clock.tz(),
        earliest=clock.start_of(row.scheduled_on),
        clinic_rules=session_rules(),
    )


_configured: SessionRulesFile | None = None


def session_rules(settings: Settings | None = None) -> SessionRulesFile:
    """The rules the clinic's charts run: the packaged ``session_rules.yaml`` with the
    clinic's own vital-sign thresholds (``KETAPATH_VITAL_THRESHOLDS_FILE``) in place of the
    defaults; those of the server's settings once ``configure_rules`` ran. A bad file is a
    ``KnowledgeError`` naming it."""
    if settings is None and _configured is not None:
        return _configured
    path = (settings or get_settings()).vital_thresholds_file
    return _clinic_rules(path) if path else knowledge().session_rules


def configure_rules(settings: Settings) -> SessionRulesFile:
    """Load and check the rules of ``settings`` for this process (the server does it at start,
    so that a bad thresholds file stops it there, naming the file)."""
    global _configured
    _configured = session_rules(settings)
    return _configured


@functools.cache
def _clinic_rules(path: str) -> SessionRulesFile:
    return with_clinic_thresholds(knowledge().session_rules, load_clinic_thresholds(Path(path)))


def _brief(prompt: Prompt) -> PromptBrief:
    return PromptBrief(
        id=prompt.id, code=prompt.code, severity=prompt.severity, message=prompt.message
    )


def _summary(
    row: InfusionSession,
    view: SessionView,
    name: str,
    course: dict[str, Any],
) -> SessionSummary:
    session_order: dict[str, Any] = next(
        (s for s in course.get("sessions", []) if int(s["session"]) == row.session_number), {}
    )
    return SessionSummary(
        id=row.id,
        patient_id=row.patient_id,
        patient_name=name,
        order_id=row.order_id,
        session_number=row.session_number,
        sessions_in_course=len(course.get("sessions", [])),
        protocol_id=str(course.get("protocol_id", "")),
        protocol_name=str(course.get("protocol_name", "")),
        scheduled_on=row.scheduled_on,
        chair=row.chair,
        state=view.state,
        state_since=view.state_since,
        running_rate_mg_per_h=view.running_rate_mg_per_h,
        running_rate_ml_per_h=view.running_rate_ml_per_h,
        delivered_mg=view.dose.delivered_mg,
        ordered_mg=view.dose.ordered_mg
        if view.dose.ordered_mg is not None
        else session_order.get("total_mg"),
        next_observation_due=view.next_observation_due,
        alerts=[_brief(p) for p in view.prompts if p.status == "open"],
        last_seq=view.last_seq,
    )


def _summaries(
    session: Session, rows: Sequence[InfusionSession], clock: ClinicClock
) -> list[tuple[SessionSummary, SessionView]]:
    """Each session replayed at the clinic's now, in a fixed number of queries."""
    if not rows:
        return []
    charts = _events(session, [r.id for r in rows])
    patients = _patients(session, {r.patient_id for r in rows})
    courses = _courses(session, {r.order_id for r in rows})
    now = clock.now()
    out = []
    for row in rows:
        version = patients.get(row.patient_id)
        events = charts[row.id]
        view = replay(events, now, _context(row, events, None, clock))
        name = version.full_name if version is not None else ""
        out.append((_summary(row, view, name, courses.get(row.order_id, {})), view))
    return out


def replayed_charts(
    session: Session, rows: Sequence[InfusionSession], clock: ClinicClock
) -> list[tuple[InfusionSession, list[ChartEvent], SessionView]]:
    """Each session's chart entries and its replay at the clinic's now, inside a transaction
    the caller holds (after its permission check; the caller audits), in a fixed number of
    queries: what the outcomes of a course read (delivered doses, why a session stopped)."""
    if not rows:
        return []
    return _replayed(rows, _events(session, [r.id for r in rows]), clock)


def report_charts(
    session: Session, rows: Sequence[InfusionSession], clock: ClinicClock
) -> list[tuple[InfusionSession, list[ChartEvent], SessionView]]:
    """As :func:`replayed_charts`, for reports over thousands of sessions (the research
    export): the charts read by :func:`read_charts`, past the process's cache of open charts
    (which a report would only empty)."""
    if not rows:
        return []
    return _replayed(rows, read_charts(session, [r.id for r in rows]), clock)


def _replayed(
    rows: Sequence[InfusionSession], charts: dict[int, list[ChartEvent]], clock: ClinicClock
) -> list[tuple[InfusionSession, list[ChartEvent], SessionView]]:
    now = clock.now()
    out = []
    for row in rows:
        chart = charts[row.id]
        out.append((row, chart, replay(chart, now, _context(row, chart, None, clock))))
    return out


def read_charts(session: Session, session_ids: Sequence[int]) -> dict[int, list[ChartEvent]]:
    """The charts of many sessions as stored (every entry, in order, with who recorded it),
    ``EVENTS_BATCH`` sessions a query, read by columns rather than as records and not through
    the cache of open charts: for summaries over a registry (the registry's summary rows,
    the research export). A session with no entry has an empty chart."""
    out: dict[int, list[ChartEvent]] = {sid: [] for sid in session_ids}
    ids = list(out)
    for i in range(0, len(ids), EVENTS_BATCH):
        rows = session.execute(
            select(
                SessionEvent.session_id,
                SessionEvent.seq,
                SessionEvent.payload,
                SessionEvent.recorded_by_id,
                SessionEvent.recorded_role,
                SessionEvent.recorded_at,
                SessionEvent.amends_seq,
                SessionEvent.reason,
            )
            .where(SessionEvent.session_id.in_(ids[i : i + EVENTS_BATCH]))
            .order_by(SessionEvent.session_id, SessionEvent.seq)
        ).all()
        names = _usernames(session, {r.recorded_by_id for r in rows})
        for sid, seq, payload, by_id, role, at, amends, reason in rows:
            out[sid].append(
                ChartEvent(
                    seq=seq,
                    entry=ENTRY.validate_python(payload),
                    recorded_by=names.get(by_id) or "",
                    by_role=role,
                    recorded_at=at,
                    amends_seq=amends,
                    reason=reason or "",
                )
            )
    return out


def live_sessions() -> Any:
    """A query of the sessions not replaced by a later row (a moved session's old row is
    left out)."""
    return _live_sessions()


# ------------------------------------------------------------------ scheduling


def schedule_course(
    db: Database,
    actor: Actor,
    order_id: int,
    request: ScheduleRequest,
    *,
    clock: ClinicClock | None = None,
) -> list[SessionSummary]:
    """One session per session of a usable signed course, from ``first_date`` (its day 0)
    in ``chair``; refused for an order that is not usable or already scheduled."""
    clock = clock or clinic_clock()
    today = clock.today()
    if request.first_date < today:
        raise InvalidInput(
            f"first_date: {request.first_date.isoformat()} is before today ({today.isoformat()}).",
            field="first_date",
        )
    if request.first_date > today + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidInput(
            f"first_date: {request.first_date.isoformat()} is more than a year ahead.",
            field="first_date",
        )
    chair = request.chair.strip()
    with action(db, actor, "session.schedule", entity="order", entity_id=order_id) as session:
        view = refuse_unusable(order_in(session, order_id, clock))
        scheduled = session.scalars(
            _live_sessions().where(InfusionSession.order_id == order_id)
        ).all()
        if scheduled:
            raise Conflict(
                f"order_id: order {order_id} is already scheduled (sessions "
                f"{', '.join(str(r.id) for r in scheduled)}).",
                field="order_id",
            )
        rows = [
            InfusionSession(
                patient_id=view.patient_id,
                order_id=order_id,
                session_number=int(s["session"]),
                scheduled_on=request.first_date + timedelta(days=int(s["day"])),
                chair=chair,
                created_at=utcnow(),
                created_by_id=actor.user_id,
            )
            for s in view.course["sessions"]
        ]
        session.add_all(rows)
        session.flush()
        audit.record(
            session,
            actor,
            "session.schedule",
            entity="order",
            entity_id=order_id,
            patient_id=view.patient_id,
            detail={
                "sessions": [r.id for r in rows],
                "first_date": request.first_date.isoformat(),
                "chair": chair,
            },
        )
        return [s for s, _ in _summaries(session, rows, clock)]


# ------------------------------------------------------------------ worklist and board


def worklist(
    db: Database,
    actor: Actor,
    *,
    on: date | None = None,
    chair: str | None = None,
    clock: ClinicClock | None = None,
) -> list[SessionSummary]:
    """The sessions of a clinic date (default: the clinic's today), optionally of one chair,
    by chair then session id."""
    clock = clock or clinic_clock()
    day = on or clock.today()
    with action(db, actor, "session.read", entity="session") as session:
        query = _live_sessions().where(InfusionSession.scheduled_on == day)
        if chair:
            query = query.where(InfusionSession.chair == chair.strip())
        rows = session.scalars(query.order_by(InfusionSession.chair, InfusionSession.id)).all()
        out = [s for s, _ in _summaries(session, rows, clock)]
        audit.record(
            session,
            actor,
            "session.worklist",
            entity="session",
            detail={"on": day.isoformat(), "chair": chair, "count": len(out)},
        )
        return out


ACTIVE_FIRST: dict[str, int] = {
    "running": 0,
    "paused": 0,
    "checked_in": 0,
    "stopped": 0,
    "completed": 0,
    "observation": 0,
    "scheduled": 1,
}


def board(
    db: Database, actor: Actor, *, on: date | None = None, clock: ClinicClock | None = None
) -> Board:
    """Every chair with a session on the date: the patient in it now (else the next one,
    else the last), the state, the running rate, minutes to the next observations, alerts."""
    clock = clock or clinic_clock()
    day = on or clock.today()
    with action(db, actor, "session.read", entity="session") as session:
        rows = session.scalars(
            _live_sessions()
            .where(InfusionSession.scheduled_on == day)
            .order_by(InfusionSession.chair, InfusionSession.id)
        ).all()
        summaries = _summaries(session, rows, clock)
        now = clock.now()
        chairs: dict[str, list[SessionSummary]] = {}
        for summary, _ in summaries:
            chairs.setdefault(summary.chair, []).append(summary)
        out = []
        for name, sessions in chairs.items():
            current = min(sessions, key=lambda s: (ACTIVE_FIRST.get(s.state, 2), s.id))
            if ACTIVE_FIRST.get(current.state) is None:
                current = max(sessions, key=lambda s: s.id)
            due = current.next_observation_due
            out.append(
                BoardChair(
                    chair=name,
                    session=current,
                    minutes_to_next_observation=(
                        round((due - now).total_seconds() / 60, 1) if due is not None else None
                    ),
                    sessions_today=[s.id for s in sessions],
                )
            )
        audit.record(
            session,
            actor,
            "session.board",
            entity="session",
            detail={"on": day.isoformat(), "chairs": len(out)},
        )
        return Board(on=day, at=now, chairs=out)


# ------------------------------------------------------------------ one session


def _detail(
    session: Session,
    row: InfusionSession,
    events: Sequence[ChartEvent],
    view: SessionView,
    clock: ClinicClock,
) -> SessionDetail:
    order = order_in(session, row.order_id, clock)
    _, version = load_patient(session, row.patient_id)
    course = order.course
    summary = _summary(row, view, version.full_name, course)
    problem = None
    try:
        refuse_unusable(order)
    except Exception as error:  # OrderNotUsable: its message says what to do
        problem = getattr(error, "message", str(error))
    programme = view.programme
    if programme is None and problem is None and view.state == "scheduled":
        try:
            programme = _programme_now(session, row, order)
        except InvalidInput as error:
            problem = error.message
    names = _usernames(session, {row.created_by_id})
    return SessionDetail(
        id=row.id,
        patient_id=row.patient_id,
        patient_name=version.full_name,
        order_id=row.order_id,
        session_number=row.session_number,
        sessions_in_course=summary.sessions_in_course,
        protocol_id=summary.protocol_id,
        protocol_name=summary.protocol_name,
        scheduled_on=row.scheduled_on,
        chair=row.chair,
        scheduled_by=names.get(row.created_by_id),
        scheduled_at=row.created_at,
        order_state=order.state,
        order_problem=problem,
        programme=programme,
        chart=view,
    )


def chart_in(
    session: Session, session_id: int, clock: ClinicClock
) -> tuple[InfusionSession, SessionView]:
    """A session's row and its chart replayed now, inside a transaction the caller holds
    (after its permission check; the caller audits); ``NotFound`` naming ``session_id``."""
    row = _row(session, session_id)
    events = _events(session, [row.id])[row.id]
    return row, replay(events, clock.now(), _context(row, events, None, clock))


def patient_charts(
    session: Session, patient_id: int, clock: ClinicClock
) -> list[tuple[InfusionSession, SessionView]]:
    """The patient's sessions (not those replaced by a move) with each chart replayed at the
    clinic's now, in a transaction the caller holds (after its permission check; the caller
    audits). Used by the FHIR export (``services.fhir``)."""
    rows = session.scalars(
        _live_sessions()
        .where(InfusionSession.patient_id == patient_id)
        .order_by(InfusionSession.order_id, InfusionSession.session_number)
    ).all()
    charts = _events(session, [r.id for r in rows])
    now = clock.now()
    return [
        (row, replay(charts[row.id], now, _context(row, charts[row.id], None, clock)))
        for row in rows
    ]


def course_charts(
    session: Session, order_id: int, clock: ClinicClock
) -> list[tuple[InfusionSession, list[ChartEvent], SessionView]]:
    """Each live session of a course (order) in session order: its row, its chart's entries
    and the chart replayed at the clinic's now, inside a transaction the caller holds (after
    its permission check; the caller audits). Used by the letters (``services.letters``)."""
    rows = session.scalars(
        _live_sessions()
        .where(InfusionSession.order_id == order_id)
        .order_by(InfusionSession.session_number, InfusionSession.id)
    ).all()
    charts = _events(session, [r.id for r in rows])
    now = clock.now()
    return [
        (
            row,
            charts[row.id],
            replay(charts[row.id], now, _context(row, charts[row.id], None, clock)),
        )
        for row in rows
    ]


def get_session(
    db: Database, actor: Actor, session_id: int, *, clock: ClinicClock | None = None
) -> SessionDetail:
    """A session with its chart replayed now: state, allowed and held actions, prompts and
    who answered them, the pump programme, the delivered dose, the vitals and rate series,
    the discharge score and readiness."""
    clock = clock or clinic_clock()
    with action(db, actor, "session.read", entity="session", entity_id=session_id) as session:
        row = _row(session, session_id)
        events = _events(session, [row.id])[row.id]
        view = replay(events, clock.now(), _context(row, events, None, clock))
        audit.record(
            session,
            actor,
            "session.read",
            entity="session",
            entity_id=row.id,
            patient_id=row.patient_id,
        )
        return _detail(session, row, events, view, clock)


def session_log(db: Database, actor: Actor, session_id: int) -> list[StoredEntry]:
    """Every entry of the chart as stored, corrections included, in order."""
    with action(db, actor, "session.read", entity="session", entity_id=session_id) as session:
        row = _row(session, session_id)
        rows = session.scalars(
            select(SessionEvent).where(SessionEvent.session_id == row.id).order_by(SessionEvent.seq)
        ).all()
        names = _usernames(session, {r.recorded_by_id for r in rows})
        audit.record(
            session,
            actor,
            "session.log",
            entity="session",
            entity_id=row.id,
            patient_id=row.patient_id,
        )
        return [
            StoredEntry(
                seq=r.seq,
                kind=r.kind,
                occurred_at=r.occurred_at,
                recorded_at=r.recorded_at,
                recorded_by=names.get(r.recorded_by_id),
                recorded_role=r.recorded_role,
                amends_seq=r.amends_seq,
                reason=r.reason,
                entry=ENTRY.validate_python(r.payload),
            )
            for r in rows
        ]


def patient_sessions(
    db: Database, actor: Actor, patient_id: int, *, clock: ClinicClock | None = None
) -> PatientSessions:
    """The patient's sessions (every course) and the ketamine delivered over all of them."""
    clock = clock or clinic_clock()
    with action(db, actor, "session.read", entity="patient", patient_id=patient_id) as session:
        load_patient(session, patient_id)
        rows = session.scalars(
            select(InfusionSession)
            .where(InfusionSession.patient_id == patient_id)
            .order_by(InfusionSession.scheduled_on, InfusionSession.id)
        ).all()
        replayed = _summaries(session, rows, clock)
        total = sum((delivered_fraction(view) for _, view in replayed), Fraction(0))
        audit.record(
            session,
            actor,
            "session.patient",
            entity="patient",
            entity_id=patient_id,
            detail={"sessions": len(rows)},
        )
        return PatientSessions(
            patient_id=patient_id,
            sessions=[s for s, _ in replayed],
            lifetime_delivered_mg=float(total),
            lifetime_delivered_mg_exact=mg_text(total),
        )


# ------------------------------------------------------------------ the chart


def _programme_now(session: Session, row: InfusionSession, order: OrderView) -> PumpProgramme:
    """The pump programme of this session from its order and the clinic's active library."""
    course = order.course
    library = active_library(session)
    pump = next((p for p in library.pumps if p.id == course.get("pump_id")), None)
    if pump is None:
        raise InvalidInput(
            f"programme: the order's pump ({course.get('pump_id') or 'none'}) is not in the "
            f"clinic's drug library (version {library.version}); a physician signs a new "
            "course against the current library.",
            field="programme",
        )
    concentration = float(course["concentration_mg_per_ml"])
    if not pump.stocks(concentration):
        raise InvalidInput(
            f"programme: the order's bag strength ({concentration:g} mg/mL) is no longer "
            f"stocked for {pump.name} (drug library version {library.version}); a physician "
            "signs a new course.",
            field="programme",
        )
    try:
        protocol_min = int(knowledge().protocol(str(course.get("protocol_id"))).observation_min)
    except KeyError:
        protocol_min = 0
    programme = programme_of(
        course,
        row.session_number,
        pump=pump,
        limits=library.setting(str(course.get("setting", "clinic"))),
        observation_min=protocol_min or None,
    ).model_copy(
        update={
            "library_name": library.name,
            "library_version": library.version,
            "library_digest": library.digest(),
        }
    )
    for step in programme.steps:
        if not pump.min_rate_ml_per_h <= step.rate_ml_per_h <= pump.max_rate_ml_per_h:
            raise InvalidInput(
                f"programme: step {step.number} ({step.rate_ml_per_h:g} mL/h) is outside the "
                f"pump's range ({pump.min_rate_ml_per_h:g}-{pump.max_rate_ml_per_h:g} mL/h).",
                field="programme",
            )
    return programme


def _append(
    db: Database,
    actor: Actor,
    session_id: int,
    entry: Any,
    expected_seq: int,
    clock: ClinicClock | None,
    *,
    amends_seq: int | None = None,
    reason: str | None = None,
) -> ChartResult:
    clock = clock or clinic_clock()
    with action(db, actor, "session.chart", entity="session", entity_id=session_id) as session:
        row = _locked_row(session, session_id)
        events = _events(session, [row.id])[row.id]
        last = max((e.seq for e in events), default=0)
        if expected_seq > last:
            raise Conflict(
                f"expected_seq: the chart's last entry is {last}, not {expected_seq}; reload it.",
                field="expected_seq",
            )
        programme = None
        kind = entry.kind if amends_seq is None else _root(events, amends_seq).kind
        # the record's facts are judged only by the check-in being charted (or corrected)
        facts = None
        if kind == "check_in":
            facts = _facts(load_patient(session, row.patient_id)[1])
        if entry.kind in USES_ORDER and amends_seq is None:
            order = refuse_unusable(order_in(session, row.order_id, clock))
            if entry.kind == "check_in":
                programme = _programme_now(session, row, order)
                entry = entry.model_copy(update={"programme": programme})
        elif entry.kind == "check_in":  # a correction keeps the programme read at check-in
            entry = entry.model_copy(update={"programme": _programme(events)})
        event = ChartEvent(
            seq=last + 1,
            entry=entry,
            recorded_by=actor.username,
            by_role=actor.role,
            amends_seq=amends_seq,
            reason=(reason or "").strip(),
        )
        if expected_seq < last and is_strict(event, events):
            newest = events[-1]
            raise Conflict(
                f"expected_seq: the chart changed since entry {expected_seq} (entry {last}: "
                f"{newest.kind.replace('_', ' ')} by {newest.recorded_by or 'someone'}); "
                f"reload it before you {kind.replace('_', ' ')}.",
                field="expected_seq",
            )
        context = _context(row, events, facts, clock, programme)
        try:
            view = check_append(events, event, clock.now(), context, ahead=chart_time_ahead())
        except IllegalTransition as refused:
            raise Conflict(refused.message, field=refused.field or "kind") from refused
        except ChartRefused as refused:
            raise InvalidInput(refused.message, field=refused.field or None) from refused
        session.add(
            SessionEvent(
                session_id=row.id,
                seq=event.seq,
                kind=entry.kind,
                occurred_at=entry.occurred_at,
                recorded_at=utcnow(),
                recorded_by_id=actor.user_id,
                recorded_role=actor.role,
                payload=entry.model_dump(mode="json"),
                amends_seq=amends_seq,
                reason=event.reason or None,
            )
        )
        session.flush()
        audit.record(
            session,
            actor,
            "session.chart",
            entity="session",
            entity_id=row.id,
            patient_id=row.patient_id,
            detail=_audit_detail(event),
        )
        return ChartResult(session_id=row.id, patient_id=row.patient_id, seq=event.seq, chart=view)


def _root(events: Sequence[ChartEvent], seq: int) -> ChartEvent:
    by_seq = {e.seq: e for e in events}
    if seq not in by_seq:
        raise NotFound(f"seq: the chart has no entry {seq}.", field="seq")
    event = by_seq[seq]
    while event.amends_seq is not None and event.amends_seq in by_seq:
        event = by_seq[event.amends_seq]
    return event


def _audit_detail(event: ChartEvent) -> dict[str, Any]:
    detail: dict[str, Any] = {"seq": event.seq, "kind": event.kind}
    if event.amends_seq is not None:
        detail |= {"amends_seq": event.amends_seq, "reason": event.reason}
    entry = event.entry
    if isinstance(entry, Acknowledge):
        detail["prompt_id"] = entry.prompt_id
    override = getattr(entry, "override_reason", None)
    if override:
        detail["override_reason"] = override
    return detail


def chart(
    db: Database,
    actor: Actor,
    session_id: int,
    write: ChartWrite,
    *,
    clock: ClinicClock | None = None,
) -> ChartResult:
    """Append one entry to the chart (any kind but a void), checked by the rules.

    Refused: 409 when the entry changes the state or the dose, or answers a prompt, and the
    chart has moved on since ``expected_seq`` (or the state does not allow it); 422 when a
    rule refuses it (the message says which and what to do). A discharge with an override
    reason needs a physician.
    """
    if write.entry.kind == "void":
        raise InvalidInput(
            "kind: a void corrects an entry entered in error: use the entry's void.",
            field="entry.kind",
        )
    if getattr(write.entry, "override_reason", None):
        check(db, actor, "session.override", entity="session", entity_id=session_id)
    return _append(db, actor, session_id, write.entry, write.expected_seq, clock)


def correct(
    db: Database,
    actor: Actor,
    session_id: int,
    seq: int,
    correction: Correction,
    *,
    clock: ClinicClock | None = None,
) -> ChartResult:
    """Correct entry ``seq``: a new entry of the same kind that amends it, with a reason.

    The original stays in the log; the chart reads the correction in its place. Refused when
    the corrected chart would break a rule (a pump change moved before an earlier one ...).
    """
    if getattr(correction.entry, "override_reason", None):
        check(db, actor, "session.override", entity="session", entity_id=session_id)
    return _append(
        db,
        actor,
        session_id,
        correction.entry,
        correction.expected_seq,
        clock,
        amends_seq=seq,
        reason=correction.reason,
    )


def void(
    db: Database,
    actor: Actor,
    session_id: int,
    seq: int,
    request: VoidRequest,
    *,
    clock: ClinicClock | None = None,
) -> ChartResult:
    """Void an observation entered in error (vitals, side effect, adjunct, note, discharge
    assessment): it stays in the log and no longer counts."""
    clock = clock or clinic_clock()
    return _append(
        db,
        actor,
        session_id,
        Void(occurred_at=clock.now()),
        request.expected_seq,
        clock,
        amends_seq=seq,
        reason=request.reason,
    )


def acknowledge(
    db: Database,
    actor: Actor,
    session_id: int,
    prompt_id: str,
    *,
    expected_seq: int,
    note: str = "",
    clock: ClinicClock | None = None,
) -> ChartResult:
    """Acknowledge a prompt now (who and when are recorded); a physician's acknowledgement
    of a pause or stop prompt is a direction that resolves it."""
    clock = clock or clinic_clock()
    entry = Acknowledge(occurred_at=clock.now(), prompt_id=prompt_id, note=note)
    return chart(
        db, actor, session_id, ChartWrite(expected_seq=expected_seq, entry=entry), clock=clock
    )


# ------------------------------------------------------------------ replays that store nothing


def replay_programme(db: Database, actor: Actor, request: ProgrammeReplayRequest) -> SessionView:
    """Replay a posted log against a posted pump programme; nothing is stored."""
    check(db, actor, "session.replay", entity="session")
    try:
        context = dataclasses.replace(request.context(), clinic_rules=session_rules())
        view = replay_log(request, context)
    except DomainError as error:
        raise InvalidInput(error.message, field=error.field or None) from error
    with db.transaction() as session:
        audit.record(
            session,
            actor,
            "session.replay",
            entity="session",
            detail={"events": len(request.events)},
        )
    return view


def replay_session(
    db: Database,
    actor: Actor,
    session_id: int,
    request: ReplayRequest,
    *,
    clock: ClinicClock | None = None,
) -> SessionView:
    """Replay a posted log against a stored session's order (its programme as check-in would
    read it now, or as it was frozen); nothing is stored."""
    clock = clock or clinic_clock()
    with action(db, actor, "session.replay", entity="session", entity_id=session_id) as session:
        row = _row(session, session_id)
        stored = _events(session, [row.id])[row.id]
        programme = _programme(stored)
        if programme is None:
            programme = _programme_now(session, row, order_in(session, row.order_id, clock))
        _, version = load_patient(session, row.patient_id)
        context = SessionContext(
            programme=programme,
            patient=_facts(version),
            zone=clock.tz(),
            clinic_rules=session_rules(),
        )
        try:
            view = replay_log(request, context)
        except DomainError as error:
            raise InvalidInput(error.message, field=error.field or None) from error
        audit.record(
            session,
            actor,
            "session.replay",
            entity="session",
            entity_id=row.id,
            patient_id=row.patient_id,
            detail={"events": len(request.events)},
        )
        return view
