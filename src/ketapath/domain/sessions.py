"""An infusion session, replayed from its chart (PRODUCT step 7): pure, no I/O.

A session's chart is an append-only log of entries (``ketapath.domain.session_events``):
check-in, the pump's start, rate changes, pauses, resumes, stop or completion, observations,
side effects, adjuncts, acknowledgements, the discharge assessment and the discharge. Nothing
derived is ever typed: the state, the running rate, the delivered dose, the prompts the rules
raise, when observations are due, the discharge score and whether the patient may go home
all come from replaying the log (``replay``). A correction is a new entry that amends an
earlier one (``amends_seq``); the earlier entry stays in the log, and the replay reads the
latest correction in its place.

The rules (``session_rules.yaml``, FPM (ANZCA) 2016 section 5 and clinic policy):

- a troublesome side effect while the pump runs raises a prompt to pause it for an hour;
  a nurse resumes no earlier than the hour (a physician may); a further troublesome side
  effect after recommencing raises a prompt to call the responsible physician;
- dissociative or amnestic effects raise a prompt to stop the infusion: until it is
  stopped the pump cannot start, resume, be raised or give a bolus, unless a physician
  acknowledges the prompt with a direction;
- a rate is one of the signed order's steps and inside the pump's range; a bolus is at
  most the order's bolus; an adjunct over the drug library's hard limit is recorded only
  by a physician;
- vital signs outside the clinic's thresholds raise alerts; observations are due at the
  clinic's interval for the state;
- discharge needs the observation period, a PADSS of at least 9 from the chart, every prompt
  answered, an escort and the after-hours plan, or a physician's override with a reason.

``check_append`` is the gate for a new entry: it replays the log with it and refuses it
(``ChartRefused``, a plain message naming the state and what is allowed) if the rules do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ketapath.domain.errors import InvalidInput
from ketapath.domain.session_chart import (
    CLOCK_PROMPTS,
    Chart,
    Effective,
    PatientFacts,
    SessionContext,
    Step,
    order_steps,
)
from ketapath.domain.session_dose import (
    Segment,
    after,
    exact,
    infused_ml,
    infusion_mg,
    mg_text,
    running_minutes,
)
from ketapath.domain.session_events import (
    AdjunctLimitSnapshot,
    ChartEntry,
    ChartEvent,
    Kind,
    ProgrammeAdjunct,
    ProgrammeStep,
    PumpProgramme,
    Role,
    chart_time,
)
from ketapath.domain.session_view import (
    STRICT_KINDS,
    VOIDABLE,
    BlockedAction,
    BolusGiven,
    ChartRefused,
    DeliveredDose,
    IllegalTransition,
    RatePoint,
    RateSegment,
    Refusal,
    SessionView,
    State,
    kinds_allowed_in,
)
from ketapath.knowledge.library import PumpType, SettingLimits

__all__ = [
    "CLOCK_PROMPTS",
    "ChartRefused",
    "IllegalTransition",
    "PatientFacts",
    "SessionContext",
    "SessionView",
    "check_append",
    "delivered_fraction",
    "effective_log",
    "is_strict",
    "programme_of",
    "replay",
    "replay_log",
]


# ------------------------------------------------------------------ a log to replay


class ReplayEvent(BaseModel):
    """An entry of a log to replay: the entry, who made it (role) and what it corrects."""

    model_config = ConfigDict(extra="forbid")

    entry: ChartEntry
    by_role: Role = "nurse"
    recorded_by: str = Field(default="", max_length=64)
    amends_seq: int | None = Field(default=None, ge=1, le=10_000)
    reason: str = Field(default="", max_length=2000)


class PatientFactsInput(BaseModel):
    """The patient's facts the rules read (the pregnancy test at check-in)."""

    model_config = ConfigDict(extra="forbid")

    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    pregnancy: Literal["pregnant", "not_pregnant", "unknown", "not_applicable"] = "unknown"


class ReplayRequest(BaseModel):
    """A log replayed without storing anything: for checking a scenario. Entry ``n`` of
    ``events`` is entry (seq) ``n`` of the chart."""

    model_config = ConfigDict(extra="forbid")

    events: list[ReplayEvent] = Field(max_length=2000)
    at: AwareDatetime | None = Field(
        default=None, description="When to read the chart; default the last entry's time."
    )

    @field_validator("at")
    @classmethod
    def _bounded_time(cls, value: datetime | None) -> datetime | None:
        return None if value is None else chart_time(value, "at")


class ProgrammeReplayRequest(ReplayRequest):
    """A log replayed against a pump programme given in full (and the patient's facts)."""

    programme: PumpProgramme
    patient: PatientFactsInput = PatientFactsInput()

    def context(self) -> SessionContext:
        facts = PatientFacts(sex=self.patient.sex, pregnancy=self.patient.pregnancy)
        return SessionContext(programme=self.programme, patient=facts)


def replay_log(request: ReplayRequest, context: SessionContext) -> SessionView:
    """Replay a posted log (``request.at``, default the time of its last entry)."""
    events = [
        ChartEvent(
            seq=index,
            entry=event.entry,
            recorded_by=event.recorded_by or event.by_role,
            by_role=event.by_role,
            amends_seq=event.amends_seq,
            reason=event.reason,
        )
        for index, event in enumerate(request.events, start=1)
    ]
    if request.at is not None:
        at = request.at
    elif events:
        at = max(e.entry.occurred_at for e in events)
    else:
        raise InvalidInput("at: an empty log needs the time to read it at.", field="at")
    return replay(events, at, context)


def programme_of(
    course: Mapping[str, Any],
    session_number: int,
    *,
    pump: PumpType,
    limits: SettingLimits | None,
    observation_min: int | None,
) -> PumpProgramme:
    """The pump programme of one session of a signed course (the stored course document):
    the bag strength, each step's rate in mL/h and mg/h, the volume to be infused, the bolus,
    the pump's range, the ordered adjuncts and the drug library's adjunct limits."""
    session = next(s for s in course["sessions"] if int(s["session"]) == session_number)
    library = course.get("library") or {}
    return PumpProgramme(
        protocol_id=str(course.get("protocol_id", "")),
        session_number=session_number,
        route=course.get("route", "iv"),
        setting=course.get("setting", "clinic"),
        concentration_mg_per_ml=float(course["concentration_mg_per_ml"]),
        pump_id=pump.id,
        pump_name=pump.name,
        pump_min_ml_per_h=pump.min_rate_ml_per_h,
        pump_max_ml_per_h=pump.max_rate_ml_per_h,
        bolus_mg=float(session.get("bolus_mg", 0.0)),
        bolus_ml=float(session.get("bolus_ml", 0.0)),
        steps=[
            ProgrammeStep(
                number=index,
                rate_ml_per_h=float(step["rate_ml_per_h"]),
                rate_mg_per_h=float(step["rate_mg_per_h"]),
                duration_min=float(step["end_min"]) - float(step["start_min"]),
                volume_ml=float(step["volume_ml"]),
                note=str(step.get("note", ""))[:500],
            )
            for index, step in enumerate(session["steps"], start=1)
        ],
        total_mg=float(session["total_mg"]),
        volume_to_be_infused_ml=float(session["infusion_volume_ml"]),
        observation_min=observation_min or None,
        condition=str(session.get("condition", ""))[:500],
        adjuncts=[
            ProgrammeAdjunct(
                drug=str(a["drug"]),
                route=str(a["route"]),
                dose=float(a["dose"]),
                unit=str(a["unit"]),
                timing=str(a.get("timing", ""))[:500],
            )
            for a in course.get("adjuncts", [])
        ],
        adjunct_limits=[
            AdjunctLimitSnapshot(
                drug=a.drug,
                route=a.route,
                dose_unit=a.dose_unit,
                dose_soft=a.dose.soft,
                dose_hard=a.dose.hard,
                session_soft=a.session.soft,
                session_hard=a.session.hard,
            )
            for a in (limits.adjuncts if limits is not None else ())
        ],
        library_name=str(library.get("name", "")),
        library_version=library.get("version"),
        library_digest=str(library.get("digest", "")),
    )


def effective_log(events: Sequence[ChartEvent]) -> tuple[list[Effective], list[Refusal]]:
    """The entries as they stand after corrections, in the order they were first charted.

    A correction (``amends_seq``) must name an earlier entry of the log, be of the same kind
    (or a ``void`` of an observation) and come with a reason; it replaces what it corrects
    (the latest correction of a chain wins). Corrections that break these rules are refused.
    """
    by_seq = {e.seq: e for e in events}
    root_of: dict[int, int] = {}
    latest: dict[int, ChartEvent] = {}
    refusals: list[Refusal] = []
    for event in sorted(events, key=lambda e: e.seq):
        if event.amends_seq is None:
            root_of[event.seq] = event.seq
            continue
        problem = _correction_problem(event, by_seq, root_of, latest)
        if problem:
            refusals.append(
                Refusal(seq=event.seq, kind=event.kind, message=problem, field="amends_seq")
            )
            continue
        root = root_of[event.amends_seq]
        root_of[event.seq] = root
        latest[root] = event
    out = []
    for event in sorted(events, key=lambda e: e.seq):
        if event.amends_seq is not None:
            continue
        correction = latest.get(event.seq)
        entry = event.entry if correction is None else correction.entry
        out.append(
            Effective(
                seq=event.seq,
                entry=None if entry.kind == "void" else entry,
                recorded_by=event.recorded_by,
                by_role=event.by_role,
                corrected=correction is not None,
            )
        )
    return out, refusals


def _correction_problem(
    event: ChartEvent,
    by_seq: dict[int, ChartEvent],
    root_of: dict[int, int],
    latest: dict[int, ChartEvent],
) -> str:
    target_seq = event.amends_seq
    assert target_seq is not None
    if target_seq >= event.seq or target_seq not in root_of:
        return f"amends_seq: there is no earlier entry {target_seq} to correct."
    if not event.reason.strip():
        return "reason: say why the entry is corrected."
    root = root_of[target_seq]
    current = latest.get(root, by_seq[root])
    if current.seq != target_seq:
        return (
            f"amends_seq: entry {target_seq} was already corrected by entry {current.seq}; "
            f"correct entry {current.seq}."
        )
    if current.kind == "void":
        return f"amends_seq: entry {target_seq} was voided."
    original_kind = by_seq[root].kind
    if event.kind == "void":
        if original_kind not in VOIDABLE:
            return (
                f"kind: a {original_kind.replace('_', ' ')} entry cannot be voided; correct it "
                "with an entry of the same kind."
            )
        return ""
    if event.kind != original_kind:
        return (
            f"kind: a correction of a {original_kind.replace('_', ' ')} entry is an entry of the "
            f"same kind, not {event.kind.replace('_', ' ')}."
        )
    return ""


def replay(
    events: Sequence[ChartEvent],
    now: datetime,
    context: SessionContext | None = None,
    *,
    appending: int | None = None,
) -> SessionView:
    """The session as its chart says at ``now``: deterministic, whatever the entries.

    Entries the rules refuse are listed in ``refusals`` and change nothing. ``now`` ends a
    segment still running and times the prompts of the clock (observations due, the end of
    a pause's hour, the ordered dose delivered, the next rate step).
    """
    context = context or SessionContext()
    effective, refusals = effective_log(events)
    chart = Chart(context=context, appending=appending)
    for item in effective:
        chart.apply(item)
    chart.refusals = sorted([*refusals, *chart.refusals], key=lambda r: r.seq)
    chart.last_seq = max((e.seq for e in events), default=0)
    return _view(chart, now)


def check_append(
    events: Sequence[ChartEvent],
    event: ChartEvent,
    now: datetime,
    context: SessionContext | None = None,
    *,
    ahead: timedelta = timedelta(0),
) -> SessionView:
    """The session with ``event`` appended, or ``ChartRefused`` if the rules refuse it.

    ``event.seq`` must follow the log. Its clinical time may be at most ``ahead`` after
    ``now`` (clock skew) and not before ``context.earliest``. A correction is refused if the
    log it leaves would refuse any entry the log did not refuse before.
    """
    context = context or SessionContext()
    last = max((e.seq for e in events), default=0)
    if event.seq != last + 1:
        raise ChartRefused(f"seq: the next entry is {last + 1}, not {event.seq}.", field="seq")
    at = event.entry.occurred_at
    if at > now + ahead:
        raise ChartRefused(
            f"occurred_at: {at.astimezone(context.zone):%Y-%m-%d %H:%M} is in the future.",
            field="occurred_at",
            kind=event.kind,
        )
    if context.earliest is not None and at < context.earliest:
        raise ChartRefused(
            f"occurred_at: {at.astimezone(context.zone):%Y-%m-%d %H:%M} is before the day of "
            "the session.",
            field="occurred_at",
            kind=event.kind,
        )
    if event.amends_seq is None and event.kind == "void":
        raise ChartRefused(
            "kind: a void is only a correction of an observation entered in error (give "
            "amends_seq).",
            field="kind",
            kind="void",
        )
    after = replay([*events, event], now, context, appending=event.seq)
    if event.amends_seq is None:
        refused = [r for r in after.refusals if r.seq == event.seq]
    else:
        before = {(r.seq, r.message) for r in replay(events, now, context).refusals}
        refused = [r for r in after.refusals if (r.seq, r.message) not in before]
    if refused:
        first = refused[0]
        cls = IllegalTransition if first.illegal else ChartRefused
        raise cls(first.message, field=first.field, kind=first.kind)
    return after


def is_strict(event: ChartEvent, events: Sequence[ChartEvent]) -> bool:
    """Whether ``event`` changes the state or the dose, or answers a prompt (or corrects
    such an entry): with two people charting it is refused unless its writer saw the
    latest entry."""
    kind = event.kind
    if event.amends_seq is not None:
        target = next((e for e in events if e.seq == event.amends_seq), None)
        return True if target is None else _root_kind(target, events) in STRICT_KINDS
    return kind in STRICT_KINDS


def _root_kind(event: ChartEvent, events: Sequence[ChartEvent]) -> str:
    by_seq = {e.seq: e for e in events}
    seen = 0
    while event.amends_seq is not None and event.amends_seq in by_seq and seen < len(events):
        event = by_seq[event.amends_seq]
        seen += 1
    return event.kind


# ------------------------------------------------------------------ the view


def _view(chart: Chart, now: datetime) -> SessionView:
    programme = chart.context.programme
    steps = chart.steps or (order_steps(programme) if programme else [])
    readiness = chart.readiness(now)
    prompts = [*chart.prompts.values(), *chart.clock_prompts(now)]
    allowed, blocked = _allowed(
        chart, now, readiness.ready, [b.message for b in readiness.blockers]
    )
    return SessionView(
        at=now,
        state=chart.state,
        state_since=chart.state_since,
        last_seq=chart.last_seq,
        allowed_actions=allowed,
        blocked_actions=blocked,
        programme=programme,
        running_rate_ml_per_h=float(chart.running.ml) if chart.running else None,
        running_rate_mg_per_h=float(chart.running.mg) if chart.running else None,
        running_step=chart.running.number if chart.running else None,
        dose=_dose(chart, now),
        segments=[_segment(s, steps) for s in chart.segments],
        boluses=[
            BolusGiven(at=at, mg=float(mg), seq=seq)
            for seq, at, mg in sorted(chart.boluses, key=lambda b: (b[1], b[0]))
        ],
        rate_series=_rate_series(chart),
        prompts=prompts,
        open_prompts=[p.id for p in prompts if p.status == "open"],
        next_observation_due=chart.next_observation_due(),
        vitals=sorted(chart.vitals, key=lambda v: (v.at, v.seq)),
        side_effects=chart.side_effects,
        adjuncts=chart.adjuncts,
        notes=chart.notes,
        check_in=chart.check_in,
        discharge=readiness,
        discharged=chart.discharged,
        cancelled_reason=chart.cancelled_reason,
        refusals=chart.refusals,
        delivered_mg_fraction=_fraction_text(_delivered(chart, now)),
    )


def _delivered(chart: Chart, now: datetime) -> Fraction:
    return infusion_mg(chart.segments, now) + _bolus(chart)


def _bolus(chart: Chart) -> Fraction:
    return sum((mg for _, _, mg in chart.boluses), Fraction(0))


def _fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def delivered_fraction(view: SessionView) -> Fraction:
    """The exact delivered dose (mg) of a view."""
    return Fraction(view.delivered_mg_fraction)


def _dose(chart: Chart, now: datetime) -> DeliveredDose:
    programme = chart.context.programme
    infusion = infusion_mg(chart.segments, now)
    bolus = _bolus(chart)
    delivered = infusion + bolus
    ordered = exact(programme.total_mg) if programme else None
    return DeliveredDose(
        delivered_mg=float(delivered),
        delivered_mg_exact=mg_text(delivered),
        infusion_mg=float(infusion),
        bolus_mg=float(bolus),
        infused_ml=float(infused_ml(chart.segments, now)),
        ordered_mg=float(ordered) if ordered is not None else None,
        remaining_mg=float(max(Fraction(0), ordered - delivered)) if ordered is not None else None,
        delivered_percent=float(delivered * 100 / ordered) if ordered else None,
        running_minutes=float(running_minutes(chart.segments, now)),
        paused_minutes=float(chart.paused_minutes(now)),
        started_at=chart.started_at,
        ended_at=chart.ended_at,
    )


def _segment(segment: Segment, steps: list[Step]) -> RateSegment:
    step = next((s.number for s in steps if s.ml == segment.rate_ml_per_h), None)
    return RateSegment(
        start=segment.start,
        end=segment.end,
        rate_ml_per_h=float(segment.rate_ml_per_h),
        rate_mg_per_h=float(segment.rate_mg_per_h),
        step=step,
        seq=segment.seq,
    )


def _rate_series(chart: Chart) -> list[RatePoint]:
    points: list[RatePoint] = []
    segments = chart.segments
    for index, segment in enumerate(segments):
        points.append(
            RatePoint(
                at=segment.start,
                rate_mg_per_h=float(segment.rate_mg_per_h),
                rate_ml_per_h=float(segment.rate_ml_per_h),
            )
        )
        following = segments[index + 1] if index + 1 < len(segments) else None
        if segment.end is not None and (following is None or following.start != segment.end):
            points.append(RatePoint(at=segment.end, rate_mg_per_h=0.0, rate_ml_per_h=0.0))
    return points


def _allowed(
    chart: Chart, now: datetime, ready: bool, blockers: list[str]
) -> tuple[list[Kind], list[BlockedAction]]:
    """What may be charted now, and what the state allows but a rule holds back."""
    state: State = chart.state
    allowed = kinds_allowed_in(state)
    blocked: list[BlockedAction] = []

    def hold(kind: Kind, reason: str, physician_may: bool) -> None:
        if kind in allowed:
            allowed.remove(kind)
            blocked.append(BlockedAction(kind=kind, reason=reason, physician_may=physician_may))

    stop = chart.unresolved("session:stop-infusion")
    if stop is not None:
        why = f"{stop.message} (prompt {stop.id}; a physician's direction lifts it)"
        for kind in ("start", "resume", "bolus"):
            hold(kind, why, True)
    if state == "paused" and chart.pause is not None and chart.pause.side_effect:
        hour = after(chart.pause.hour_from, chart.rules.pause.minutes)
        if now < hour:
            hold(
                "resume",
                f"the pause for a side effect lasts until {chart.hm(hour)}; a physician may "
                "resume earlier",
                True,
            )
    held = chart.unresolved(
        "session:stop-infusion", "session:pause-for-side-effect", "session:call-physician"
    )
    if held is not None and "rate_change" in allowed:
        blocked.append(
            BlockedAction(
                kind="rate_change",
                reason=f"a higher rate is held while prompt {held.id} is open; a lower one is "
                "allowed",
                physician_may=held.resolved_by == "physician",
            )
        )
    if "discharge" in allowed and not ready:
        hold("discharge", " ".join(blockers) or "the discharge criteria are not met", True)
    return allowed, blocked
