"""What a letter after a course says, assembled from the records: pure, no I/O.

:func:`assemble` takes what the services read (the course and each session's chart, the
patient, the opioid records and plan, the clinic's details) and returns :class:`LetterFacts`:
every value the letter shows, already in words and numbers, frozen into the stored version
and rendered by one template per kind (``ketapath.reports.letters``) to HTML and to PDF.

- What was given: per session its date, protocol, the ketamine delivered in mg and mg/kg
  from the chart's exact delivered dose (``domain.sessions.delivered_fraction``: rate x time
  plus boluses, in fractions), adjuncts, pauses and how it ended; the course's total is the
  exact sum, rounded once. mg are shown to 0.1 mg and mg/kg to 0.01 mg/kg, rounded half to
  even from the exact value; the exact decimals (to 1e-9 mg) are kept in the facts.
- Adverse events: each side effect charted and each vital-sign alert.
- Opioids: the daily dose before the course and now in oral morphine equivalents, the change
  (``domain.outcomes.opioid_change``: unknown when a total is incomplete, never 0) and the
  agreed plan.
- Follow-up: ``domain.outcomes.follow_up_schedule`` from the date of the last session given.
- The outcome and the repeat decision (discharge summary and GP letter, ``OUTCOME_KINDS``):
  the course's outcome as its Outcome card gives it (pain at baseline and at the latest
  follow-up, the change, responder at 30% and 50%, duration of relief, PGIC), each result in
  the card's words with its definition's citation, and the physician's current decision
  (repeat, change protocol, stop; when, who, and the reason as written). What is not known
  yet is "not yet recorded" (or "unknown" with the reason), never 0.
- The wording (side effects, when to seek help, the relapse plan) from ``letter_rules.yaml``.

A value that is missing is "not recorded"; one that cannot be read is "not recognised: check
by hand"; neither is ever shown as 0. What the letter cannot say is also a finding
(``letters:*``), shown beside the letter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ketapath.domain.findings import Finding, cite, finding
from ketapath.domain.outcomes import (
    change_definition,
    follow_up_schedule,
    opioid_change,
    pgic_responder,
    relief_definition,
    responder,
)
from ketapath.domain.session_dose import exact, mg_text
from ketapath.domain.session_events import ChartEvent, Pause, Resume, Stop
from ketapath.domain.session_view import STATE_WORDS, AdjunctRecord, SessionView
from ketapath.domain.sessions import delivered_fraction, effective_log
from ketapath.knowledge.base import Source
from ketapath.knowledge.letters import (
    LETTER_KINDS,
    EffectText,
    LetterKind,
    LetterRules,
    letter_rules,
)

__all__ = ["LETTER_KINDS", "LetterKind"]

NOT_RECORDED = "not recorded"
NOT_YET_RECORDED = "not yet recorded"
# The letters that report the course's outcome and the physician's repeat decision: the
# clinicians' letters (the patient information sheet does not).
OUTCOME_KINDS: frozenset[LetterKind] = frozenset({"discharge_summary", "gp_letter"})
# Parts the facts gained after letters were first stored: absent from a version drafted
# before them, and then left out of its stored facts and digest (``LetterFacts.stored``).
ADDED_LATER = ("outcome", "repeat_decision")
DECISION_WORDS = {
    "repeat": "repeat the course",
    "change protocol": "change protocol",
    "stop": "stop",
}
NOT_RECOGNISED = "not recognised: check by hand"
# States in which the infusion ran and has ended (the dose is final).
ENDED = frozenset({"stopped", "completed", "observation", "discharged"})
UNDER_WAY = frozenset({"checked_in", "running", "paused"})
PAUSE_REASONS = {
    "side_effect": "a side effect",
    "patient_request": "the patient's request",
    "clinical": "a clinical reason",
    "equipment": "an equipment problem",
    "other": "another reason",
}
STOP_REASONS = {
    "dissociation": "dissociation",
    "amnesia": "amnestic effects",
    "side_effect": "a side effect",
    "physician": "the physician's decision",
    "patient_request": "the patient's request",
    "equipment": "an equipment problem",
    "other": "another reason",
}
MAX_PLAN_STEPS = 12  # a taper longer than this is summarised after its first steps
# A table row of the PDF must fit on one page: a cell's text is cut at this many characters
# and says where the rest is; a session's adjuncts are listed up to MAX_ADJUNCTS.
CELL_CHARS = 240
CUT_MARK = " [cut: in full in the chart]"
MAX_ADJUNCTS = 8


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SessionInput:
    """One session of the course: its number, its day, its chart replayed, and the chart's
    entries as stored (for the reasons of pauses and stops)."""

    number: int
    scheduled_on: date
    view: SessionView
    events: tuple[ChartEvent, ...] = ()


@dataclass(frozen=True)
class CourseInput:
    """The signed course (the order) and its sessions, in session order."""

    order_id: int
    protocol_name: str
    route: str
    setting: str
    sessions_ordered: int
    dosing_weight_kg: float | None
    weight_basis: str
    signed_by: str | None
    signed_on: date | None
    cancelled: bool
    sessions: tuple[SessionInput, ...]


@dataclass(frozen=True)
class PatientInput:
    """What the letter names of the patient (the record's latest version)."""

    name: str
    birth_date: date | None
    gp: str
    referrer: str
    diagnoses: tuple[str, ...] = ()
    allergies: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpioidLineInput:
    """One opioid medicine with its daily dose and OME (None: not converted)."""

    medicine: str
    daily_dose: float | None
    unit: str | None
    ome_mg_per_day: float | None
    converted: bool


@dataclass(frozen=True)
class OpioidRecord:
    """The opioids taken at one time: ``label`` says when and from which record."""

    label: str
    lines: tuple[OpioidLineInput, ...]
    total_ome_mg_per_day: float | None
    complete: bool


@dataclass(frozen=True)
class TaperStepInput:
    on: date
    daily_dose: float
    unit: str
    ome_mg_per_day: float | None


@dataclass(frozen=True)
class OpioidPlanInput:
    """The agreed opioid plan in force: the conversion in words and the taper steps."""

    agreed_on: date
    agreed_by: str | None
    conversion: str
    taper: str
    steps: tuple[TaperStepInput, ...]


@dataclass(frozen=True)
class OpioidInput:
    table_name: str
    before: OpioidRecord | None
    now: OpioidRecord | None
    plan: OpioidPlanInput | None


@dataclass(frozen=True)
class PainScoreInput:
    """A pain score (NRS 0-10) of the course's assessments: when, and at which timepoint."""

    value: int
    on: date
    label: str  # baseline, post-session, follow-up
    timepoint_days: int | None = None


@dataclass(frozen=True)
class ResultInput:
    """A result as the Outcome card gives it: its status, the reason in words and the
    citation of the definition it used."""

    status: str
    reason: str
    citation: str


@dataclass(frozen=True)
class OutcomeInput:
    """The course's outcome as its Outcome card gives it (``services.outcomes``): pain at
    baseline and the score it is compared with (the latest follow-up, else the latest after a
    session), the change (None with the reason in ``change_note``), responder at 30% and 50%,
    the duration of relief (days None: unknown) and the PGIC (category None: not asked)."""

    baseline: PainScoreInput | None
    compared: PainScoreInput | None
    change_points: float | None
    change_percent: float | None
    change_note: str
    change_citation: str
    responder_30: ResultInput
    responder_50: ResultInput
    relief: ResultInput  # status: ended, censored, never began, no data, not assessable
    relief_days: int | None
    pgic: ResultInput  # status: improved, not improved, unknown; reason: the category's label
    pgic_category: int | None
    pgic_timepoint_days: int | None


@dataclass(frozen=True)
class DecisionInput:
    """The physician's current repeat decision of the course (the latest not amended)."""

    decision: str  # repeat, change protocol, stop
    next_protocol: str | None
    reason: str
    decided_on: date
    decided_by: str | None


@dataclass(frozen=True)
class ClinicInput:
    """The clinic's settings (``KETAPATH_CLINIC_NAME``, ``_ADDRESS``, ``_AFTER_HOURS``)."""

    name: str = ""
    address: str = ""
    after_hours: str = ""


# ---------------------------------------------------------------------------- the facts


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Cited(_Facts):
    """A sentence of the letter rules with its short citations."""

    text: str
    citation: str


class EffectFacts(_Facts):
    plain: str
    advice: str
    citation: str


class HelpFacts(_Facts):
    urgency: Literal["emergency", "clinic"]
    when: list[str]
    action: str
    citation: str


class SessionFacts(_Facts):
    """One session as the letter shows it (text) and its exact dose."""

    number: int
    date: str
    state: str
    given: bool
    ketamine_mg: str
    ketamine_mg_exact: str
    mg_per_kg: str
    bolus_mg: str
    infusion_time: str
    ended: str
    adjuncts: list[str]
    pauses: list[str]
    discharge: str


class AdverseEvent(_Facts):
    session: int
    date: str
    time: str
    what: str
    detail: str


class OpioidLineFacts(_Facts):
    medicine: str
    daily_dose: str
    ome: str


class OpioidRecordFacts(_Facts):
    label: str
    lines: list[OpioidLineFacts]
    total: str


class TaperStepFacts(_Facts):
    date: str
    daily_dose: str
    ome: str


class OpioidFacts(_Facts):
    table: str
    before: OpioidRecordFacts | None
    now: OpioidRecordFacts | None
    change: str
    change_rule: str
    plan: str
    plan_conversion: str
    plan_taper: str
    plan_steps: list[TaperStepFacts]
    plan_more_steps: int


class FollowUpFacts(_Facts):
    label: str
    date: str
    window: str


class FindingFacts(_Facts):
    code: str
    severity: str
    message: str
    rule: str
    citation: str


class OutcomeLine(_Facts):
    """One result of the course's outcome in words, with its definition's citation."""

    what: str
    result: str
    citation: str


class OutcomeFacts(_Facts):
    """The course's outcome as the letter reports it: which score it is judged at, and each
    result (unknown ones say so, never 0)."""

    judged_at: str
    lines: list[OutcomeLine]


class RepeatDecisionFacts(_Facts):
    """The physician's repeat decision, or that none is recorded yet."""

    recorded: bool
    decision: str
    next_protocol: str
    decided_on: str
    decided_by: str
    reason: str


class LetterFacts(_Facts):
    """Everything a letter shows, frozen when the version is drafted (stored as JSON)."""

    kind: LetterKind
    title: str
    reader: str
    purpose: str
    letter_date: str
    written_by: str
    rules_version: int
    clinic_name: str
    clinic_address: str
    after_hours: str
    patient_name: str
    birth_date: str
    gp: str
    referrer: str
    diagnoses: list[str]
    allergies: list[str]
    order_id: int
    protocol: str
    route: str
    setting: str
    course_signed: str
    course_status: str
    dosing_weight: str
    sessions_ordered: int
    sessions_given: int
    first_session: str
    last_session: str
    total_mg: str
    total_mg_exact: str
    total_mg_per_kg: str
    sessions: list[SessionFacts]
    adverse_events: list[AdverseEvent]
    opioids: OpioidFacts
    follow_up: list[FollowUpFacts]
    follow_up_basis: str
    follow_up_rule: Cited
    relapse_plan: list[Cited]
    after_hours_plan: Cited
    opioid_statements: list[Cited]
    side_effects_intro: Cited
    side_effects: list[EffectFacts]
    later_effects: list[EffectFacts]
    after_treatment: list[Cited]
    seek_help: list[HelpFacts]
    repeated_courses: list[Cited]
    findings: list[FindingFacts]
    # None: a letter that does not report them (OUTCOME_KINDS), or a version drafted before
    # letters reported them.
    outcome: OutcomeFacts | None = None
    repeat_decision: RepeatDecisionFacts | None = None

    def stored(self) -> dict[str, object]:
        """The facts as stored and digested: the parts added later (``ADDED_LATER``) are left
        out when a version has none, so that a version drafted before them, read back and
        signed, keeps the same facts and the same digest."""
        absent = {name for name in ADDED_LATER if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=absent)


# ---------------------------------------------------------------------------- numbers


def mg(value: Fraction) -> str:
    """mg to 0.1 mg from the exact value ('98.0')."""
    return mg_text(value, 1)


def per_kg(value: Fraction, weight_kg: float | None) -> str:
    """mg/kg to 0.01 mg/kg from the exact dose and the dosing weight."""
    if weight_kg is None or weight_kg <= 0:
        return NOT_RECOGNISED
    return mg_text(value / exact(weight_kg), 2)


def _number(value: float) -> str:
    return f"{value:g}"


def _duration(minutes: float) -> str:
    whole = round(minutes)
    return f"{whole // 60} h {whole % 60} min"


def cell(text: str) -> str:
    """Text for a table cell: at most ``CELL_CHARS`` characters, saying so when cut."""
    if len(text) <= CELL_CHARS:
        return text
    return text[: CELL_CHARS - len(CUT_MARK)].rstrip() + CUT_MARK


def _adjuncts(records: Sequence[AdjunctRecord], zone: tzinfo) -> list[str]:
    listed = [_adjunct(a, zone) for a in records[:MAX_ADJUNCTS]]
    if len(records) > MAX_ADJUNCTS:
        listed.append(f"and {len(records) - MAX_ADJUNCTS} more (see the chart)")
    return listed


def _hm(at: datetime | None, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%H:%M") if at is not None else NOT_RECORDED


def _cited(text: str, source: Source) -> Cited:
    return Cited(text=text.strip(), citation="; ".join(c.text for c in cite(source)))


def _citation(source: Source) -> str:
    return "; ".join(c.text for c in cite(source))


def _finding(item: Finding) -> FindingFacts:
    return FindingFacts(
        code=item.code,
        severity=item.severity,
        message=item.message,
        rule=item.rule,
        citation=item.citation,
    )


# ---------------------------------------------------------------------------- sessions


def given(session: SessionInput) -> bool:
    """Whether the infusion of a session started (its chart has a dose)."""
    return session.view.dose.started_at is not None


def _pauses(session: SessionInput, zone: tzinfo) -> tuple[list[str], str]:
    """The pauses in words ('10:15 to 11:15, for a side effect') and how a stop read."""
    effective, refused = effective_log(session.events)
    skipped = {r.seq for r in refused} | {r.seq for r in session.view.refusals}
    pauses: list[str] = []
    stop = ""
    opened: tuple[datetime, str] | None = None
    for item in effective:
        entry = item.entry
        if entry is None or item.seq in skipped:
            continue
        if isinstance(entry, Pause):
            opened = (entry.occurred_at, PAUSE_REASONS.get(entry.reason, entry.reason))
        elif isinstance(entry, Resume | Stop) and opened is not None:
            pauses.append(f"{_hm(opened[0], zone)} to {_hm(entry.occurred_at, zone)}, {opened[1]}")
            opened = None
        if isinstance(entry, Stop):
            words = STOP_REASONS.get(entry.reason, entry.reason)
            stop = f"stopped early at {_hm(entry.occurred_at, zone)}, for {words}"
            if entry.note:
                stop += f" ({entry.note})"
    if opened is not None:
        pauses.append(f"from {_hm(opened[0], zone)}, {opened[1]} (still paused)")
    return pauses, stop


def _ended(session: SessionInput, stop: str, zone: tzinfo) -> str:
    view = session.view
    if view.state == "cancelled":
        return f"cancelled: {view.cancelled_reason or NOT_RECORDED}"
    if stop:
        return stop
    if view.dose.ended_at is not None:
        return f"completed as ordered at {_hm(view.dose.ended_at, zone)}"
    return STATE_WORDS.get(view.state, view.state)


def _adjunct(record: AdjunctRecord, zone: tzinfo) -> str:
    dose = _number(record.dose)
    return f"{record.drug} {dose} {record.unit} {record.route.upper()} at {_hm(record.at, zone)}"


def _discharge(view: SessionView, zone: tzinfo) -> str:
    record = view.discharged
    if record is None:
        return "not discharged" if view.dose.started_at is not None else ""
    escort = f"with {record.escort_name or 'an escort'}" if record.escort_present else "no escort"
    plan = "after-hours plan given" if record.emergency_plan_given else "after-hours plan NOT given"
    words = f"discharged at {_hm(record.at, zone)} by {record.by}, {escort}; {plan}"
    if record.override_reason:
        words += f"; criteria overridden by a physician: {record.override_reason}"
    return words


def session_facts(session: SessionInput, weight_kg: float | None, zone: tzinfo) -> SessionFacts:
    """One session in words, its dose from the chart's exact delivered dose."""
    view = session.view
    dose = delivered_fraction(view)
    pauses, stop = _pauses(session, zone)
    ran = given(session)
    return SessionFacts(
        number=session.number,
        date=session.scheduled_on.isoformat(),
        state=STATE_WORDS.get(view.state, view.state),
        given=ran,
        ketamine_mg=mg(dose) if ran else "none given",
        ketamine_mg_exact=mg_text(dose),
        mg_per_kg=per_kg(dose, weight_kg) if ran else "none given",
        bolus_mg=mg(exact(view.dose.bolus_mg)) if view.dose.bolus_mg else "none",
        infusion_time=_duration(view.dose.running_minutes) if ran else "none",
        ended=cell(_ended(session, stop, zone)),
        adjuncts=_adjuncts(view.adjuncts, zone),
        pauses=pauses,
        discharge=_discharge(view, zone),
    )


def adverse_events(sessions: Sequence[SessionInput], zone: tzinfo) -> list[AdverseEvent]:
    """Every side effect charted and every vital-sign alert, session by session."""
    events: list[AdverseEvent] = []
    for session in sessions:
        day = session.scheduled_on.isoformat()
        for effect in session.view.side_effects:
            detail = effect.severity + (", troublesome" if effect.troublesome else "")
            if effect.description:
                detail += f": {effect.description}"
            events.append(
                AdverseEvent(
                    session=session.number,
                    date=day,
                    time=_hm(effect.at, zone),
                    what=cell(effect.name),
                    detail=cell(detail),
                )
            )
        for prompt in session.view.prompts:
            if prompt.code == "session:vital-alert":
                events.append(
                    AdverseEvent(
                        session=session.number,
                        date=day,
                        time=_hm(prompt.raised_at, zone),
                        what="Vital-sign alert",
                        detail=cell(prompt.message),
                    )
                )
    return events


# ---------------------------------------------------------------------------- opioids


def daily_text(dose: float | None, unit: str | None) -> str:
    """'40 mg/day' (a unit already per day is not made per day again)."""
    if dose is None:
        return NOT_RECORDED
    unit = (unit or "").strip()
    if not unit.endswith("/day"):
        unit = f"{unit}/day" if unit else "per day"
    return f"{_number(dose)} {unit}"


def _record_facts(record: OpioidRecord | None) -> OpioidRecordFacts | None:
    if record is None:
        return None
    lines = [
        OpioidLineFacts(
            medicine=line.medicine,
            daily_dose=daily_text(line.daily_dose, line.unit),
            ome=(
                f"{_number(line.ome_mg_per_day)} mg/day"
                if line.converted and line.ome_mg_per_day is not None
                else NOT_RECOGNISED
            ),
        )
        for line in record.lines
    ]
    if not record.lines:
        total = "no opioids"
    elif record.complete and record.total_ome_mg_per_day is not None:
        total = f"{_number(record.total_ome_mg_per_day)} mg OME/day"
    else:
        total = f"incomplete: {NOT_RECOGNISED}"
    return OpioidRecordFacts(label=record.label, lines=lines, total=total)


def _total(record: OpioidRecord | None) -> tuple[float | None, bool]:
    if record is None:
        return None, False
    if not record.lines:
        return 0.0, True  # no opioid taken is a measured zero
    return record.total_ome_mg_per_day, record.complete


def opioid_facts(opioids: OpioidInput, today: date) -> tuple[OpioidFacts, list[Finding]]:
    """Before and now in OME, the change (unknown when either is incomplete), the plan."""
    before, before_complete = _total(opioids.before)
    now, now_complete = _total(opioids.now)
    change = opioid_change(before, now, (before_complete, now_complete))
    found: list[Finding] = []
    if change.status == "complete":
        assert change.change_mg is not None
        words = f"{_number(round(change.change_mg, 1))} mg OME/day ({change.reason}"
        if change.percent is not None:
            words += f"; {_number(round(change.percent, 1))}%"
        words += ")"
    else:
        words = f"not known: {change.reason}; {NOT_RECOGNISED}"
        found.append(finding("letters:opioids-incomplete", f"Opioid change: {change.reason}."))
    plan = opioids.plan
    steps = [s for s in plan.steps if s.on >= today] if plan else []
    return (
        OpioidFacts(
            table=opioids.table_name,
            before=_record_facts(opioids.before),
            now=_record_facts(opioids.now),
            change=words,
            change_rule=change.definition.citation,
            plan=(
                f"Agreed by {plan.agreed_by or NOT_RECORDED} on {plan.agreed_on.isoformat()}."
                if plan
                else "No opioid plan is agreed."
            ),
            plan_conversion=plan.conversion if plan else "",
            plan_taper=plan.taper if plan else "",
            plan_steps=[
                TaperStepFacts(
                    date=s.on.isoformat(),
                    daily_dose=daily_text(s.daily_dose, s.unit),
                    ome=(
                        f"{_number(s.ome_mg_per_day)} mg/day"
                        if s.ome_mg_per_day is not None
                        else NOT_RECOGNISED
                    ),
                )
                for s in steps[:MAX_PLAN_STEPS]
            ],
            plan_more_steps=max(0, len(steps) - MAX_PLAN_STEPS),
        ),
        found,
    )


# ---------------------------------------------------------------------------- follow-up


def follow_up(course: CourseInput, today: date) -> tuple[list[FollowUpFacts], str, list[Finding]]:
    """The follow-up dates from the last session given, and whether they may still move."""
    ran = [s for s in course.sessions if given(s)]
    found: list[Finding] = []
    if not ran:
        found.append(
            finding(
                "letters:no-session-given",
                "No session of this course has been given yet: there is no dose to report "
                "and no follow-up date.",
            )
        )
        return [], "No session of the course has been given yet.", found
    last = max(s.scheduled_on for s in ran)
    basis = f"Counted from the last session given, on {last.isoformat()}."
    waiting = [
        s for s in course.sessions if s.view.state == "scheduled" or s.view.state in UNDER_WAY
    ]
    if waiting and not course.cancelled:
        numbers = ", ".join(str(s.number) for s in waiting)
        many = len(waiting) != 1
        basis += (
            f" Session{'s' if many else ''} {numbers} {'are' if many else 'is'} not finished, "
            "so these dates may move."
        )
        found.append(
            finding(
                "letters:course-not-finished",
                f"Session{'s' if len(waiting) != 1 else ''} {numbers} of the course "
                f"{'are' if len(waiting) != 1 else 'is'} not finished: the totals are those "
                "given so far and the follow-up dates may move.",
            )
        )
    running = [s for s in course.sessions if s.view.state in ("running", "paused")]
    for s in running:
        found.append(
            finding(
                "letters:infusion-running",
                f"Session {s.number}'s infusion is {s.view.state} now: its dose is counted up "
                "to this moment.",
            )
        )
    schedule = follow_up_schedule(last)
    rows = [
        FollowUpFacts(
            label=t.label,
            date=t.due_on.isoformat(),
            window=f"{t.due_from.isoformat()} to {t.due_until.isoformat()}",
        )
        for t in schedule
    ]
    return rows, basis, found


def _follow_up_rule() -> Cited:
    definition = follow_up_schedule(date(2000, 1, 1))[0].definition
    return Cited(text=definition.rule, citation=definition.citation)


# ---------------------------------------------------------------------------- outcome


def _days(days: int | None) -> str:
    return f"{days} day{'s' if days != 1 else ''}"


def _score_words(score: PainScoreInput) -> str:
    when = score.on.isoformat()
    if score.label == "follow-up" and score.timepoint_days is not None:
        after = _days(score.timepoint_days)
        return f"{score.value}, at follow-up {after} after the last session ({when})"
    return f"{score.value}, {score.label} assessment ({when})"


def _judged_at(outcome: OutcomeInput) -> str:
    compared = outcome.compared
    if compared is None:
        return (
            "No pain score after the course is recorded yet, so the change in pain and the "
            "response are not yet known."
        )
    if compared.label == "follow-up":
        at = (
            f"the latest follow-up score ({_days(compared.timepoint_days)} after the last session)"
            if compared.timepoint_days is not None
            else "the latest follow-up score"
        )
    else:
        at = f"the latest {compared.label} score (no follow-up score is recorded yet)"
    return (
        f"Judged at {at}, against the pain before the course, as on the course's Outcome card "
        "(its current state)."
    )


def _change_words(outcome: OutcomeInput) -> str:
    base, later = outcome.baseline, outcome.compared
    if base is None or later is None or outcome.change_points is None:
        return f"{NOT_YET_RECORDED}: {outcome.change_note}"
    words = f"{base.value} to {later.value} ({_number(round(outcome.change_points, 1))} points"
    if outcome.change_percent is not None:
        words += f", {_number(round(outcome.change_percent, 1))}%)"
    else:
        words += f"; {outcome.change_note})"
    return words


def _responder_words(result: ResultInput, outcome: OutcomeInput) -> str:
    if result.status != "unknown":
        return f"{result.status}: {result.reason}"
    if outcome.baseline is None or outcome.compared is None:
        return f"{NOT_YET_RECORDED} ({result.reason})"
    return f"unknown: {result.reason}"


def _relief_words(outcome: OutcomeInput) -> str:
    relief, days = outcome.relief, outcome.relief_days
    if relief.status == "censored" and days is not None:
        return f"{_days(days)} so far (censored: relief was continuing): {relief.reason}"
    if relief.status == "ended" and days is not None:
        return f"{_days(days)} (ended): {relief.reason}"
    if relief.status == "never began":
        return f"none: {relief.reason}"
    if relief.status == "no data":
        return f"{NOT_YET_RECORDED}: {relief.reason}"
    return f"unknown ({relief.status}): {relief.reason}"


def _pgic_words(outcome: OutcomeInput) -> str:
    pgic = outcome.pgic
    if outcome.pgic_category is None:
        return f"{NOT_YET_RECORDED} (not asked at a follow-up yet)"
    at = (
        f", at {_days(outcome.pgic_timepoint_days)}"
        if outcome.pgic_timepoint_days is not None
        else ""
    )
    return f"{pgic.reason} ({outcome.pgic_category}{at}): {pgic.status}"


def outcome_facts(outcome: OutcomeInput) -> OutcomeFacts:
    """The course's outcome in the Outcome card's words, each result with its citation."""
    compared = outcome.compared
    if compared is not None and compared.label == "follow-up":
        later = _score_words(compared)
    elif compared is not None:
        later = (
            f"{NOT_YET_RECORDED} (the latest score after a session, "
            f"{_score_words(compared)}, is the one judged below)"
        )
    else:
        later = NOT_YET_RECORDED
    baseline = _score_words(outcome.baseline) if outcome.baseline else NOT_YET_RECORDED
    r30, r50 = outcome.responder_30, outcome.responder_50
    relief, pgic = outcome.relief, outcome.pgic
    lines = [
        ("Pain before the course (NRS 0-10)", baseline, ""),
        ("Pain at the latest follow-up (NRS 0-10)", later, ""),
        ("Change in pain from baseline", _change_words(outcome), outcome.change_citation),
        ("Responder at 30%", _responder_words(r30, outcome), r30.citation),
        ("Responder at 50%", _responder_words(r50, outcome), r50.citation),
        ("Duration of relief", _relief_words(outcome), relief.citation),
        ("Patient's impression of change (PGIC)", _pgic_words(outcome), pgic.citation),
    ]
    return OutcomeFacts(
        judged_at=_judged_at(outcome),
        lines=[OutcomeLine(what=w, result=r, citation=c) for w, r, c in lines],
    )


def decision_facts(decision: DecisionInput | None) -> RepeatDecisionFacts:
    """The physician's repeat decision in words, or "not yet recorded"."""
    if decision is None:
        return RepeatDecisionFacts(
            recorded=False,
            decision=NOT_YET_RECORDED,
            next_protocol="",
            decided_on="",
            decided_by="",
            reason="",
        )
    words = DECISION_WORDS.get(decision.decision, decision.decision)
    if decision.next_protocol and decision.decision == "repeat":
        words += f" ({decision.next_protocol})"
    elif decision.next_protocol:
        words += f" to {decision.next_protocol}"
    return RepeatDecisionFacts(
        recorded=True,
        decision=words,
        next_protocol=decision.next_protocol or "",
        decided_on=decision.decided_on.isoformat(),
        decided_by=decision.decided_by or NOT_RECORDED,
        reason=decision.reason.strip() or NOT_RECORDED,
    )


# ---------------------------------------------------------------------------- assembly


def _clinic(clinic: ClinicInput) -> tuple[str, str, str, list[Finding]]:
    found: list[Finding] = []
    name = clinic.name.strip() or f"{NOT_RECORDED} (KETAPATH_CLINIC_NAME is not set)"
    address = clinic.address.strip() or f"{NOT_RECORDED} (KETAPATH_CLINIC_ADDRESS is not set)"
    if not clinic.name.strip() or not clinic.address.strip():
        found.append(finding("letters:clinic-not-set", "The clinic's name or address is not set."))
    after_hours = clinic.after_hours.strip()
    if not after_hours:
        after_hours = (
            f"{NOT_RECORDED}: write the clinic's after-hours contact here by hand "
            "(KETAPATH_CLINIC_AFTER_HOURS is not set)"
        )
        found.append(
            finding(
                "letters:after-hours-not-set",
                "The clinic's after-hours contact is not set: write it on the letter by hand, "
                "or set KETAPATH_CLINIC_AFTER_HOURS and draft again.",
            )
        )
    return name, address, after_hours, found


def _wording(rules: LetterRules) -> dict[str, object]:
    """The letter rules' sentences with their citations."""

    def effect(e: EffectText) -> EffectFacts:
        return EffectFacts(
            plain=e.plain.strip(), advice=e.advice.strip(), citation=_citation(e.source)
        )

    return {
        "relapse_plan": [_cited(s.text, s.source) for s in rules.relapse_plan],
        "after_hours_plan": _cited(rules.after_hours.text, rules.after_hours.source),
        "opioid_statements": [_cited(s.text, s.source) for s in rules.opioid_plan],
        "side_effects_intro": _cited(
            rules.side_effects_intro.text, rules.side_effects_intro.source
        ),
        "side_effects": [effect(e) for e in rules.side_effects],
        "later_effects": [effect(e) for e in rules.later_effects],
        "after_treatment": [_cited(s.text, s.source) for s in rules.after_treatment],
        "seek_help": [
            HelpFacts(
                urgency=h.urgency,
                when=list(h.when),
                action=h.action.strip(),
                citation=_citation(h.source),
            )
            for h in rules.seek_help
        ],
        "repeated_courses": [_cited(s.text, s.source) for s in rules.repeated_courses],
    }


def _course_words(course: CourseInput) -> dict[str, object]:
    signed = (
        f"signed by {course.signed_by or NOT_RECORDED} on "
        f"{course.signed_on.isoformat() if course.signed_on else NOT_RECORDED}"
    )
    weight = (
        f"{_number(course.dosing_weight_kg)} kg ({course.weight_basis} weight)"
        if course.dosing_weight_kg
        else NOT_RECOGNISED
    )
    return {
        "order_id": course.order_id,
        "protocol": course.protocol_name or NOT_RECORDED,
        "route": course.route.upper() if course.route else NOT_RECORDED,
        "setting": course.setting or NOT_RECORDED,
        "course_signed": signed,
        "course_status": "cancelled" if course.cancelled else "signed",
        "dosing_weight": weight,
        "sessions_ordered": course.sessions_ordered,
    }


def assemble(
    kind: LetterKind,
    *,
    patient: PatientInput,
    course: CourseInput,
    opioids: OpioidInput,
    clinic: ClinicInput,
    today: date,
    written_by: str,
    zone: tzinfo = UTC,
    rules: LetterRules | None = None,
    outcome: OutcomeInput | None = None,
    decision: DecisionInput | None = None,
) -> LetterFacts:
    """The facts of a letter of ``kind`` about ``course``, as they are ``today``. A letter of
    ``OUTCOME_KINDS`` reports ``outcome`` (None: nothing is known of it yet, every result
    "not yet recorded") and ``decision`` (None: not yet recorded); the others do not."""
    if kind not in LETTER_KINDS:
        raise ValueError(f"kind: one of {', '.join(LETTER_KINDS)}")
    rules = rules or letter_rules()
    text = rules.kind_text(kind)
    sessions = sorted(course.sessions, key=lambda s: s.number)
    facts = [session_facts(s, course.dosing_weight_kg, zone) for s in sessions]
    ran = [s for s in sessions if given(s)]
    total = sum((delivered_fraction(s.view) for s in ran), Fraction(0))
    name, address, after_hours, found = _clinic(clinic)
    opioid_part, opioid_findings = opioid_facts(opioids, today)
    rows, basis, follow_findings = follow_up(course, today)
    found += follow_findings + opioid_findings
    if kind == "gp_letter" and not patient.gp.strip():
        found.append(
            finding("letters:no-gp", "The record names no general practitioner for this letter.")
        )
    data: dict[str, object] = {
        "kind": kind,
        "title": text.title,
        "reader": text.reader,
        "purpose": text.purpose.strip(),
        "letter_date": today.isoformat(),
        "written_by": written_by,
        "rules_version": rules.version,
        "clinic_name": name,
        "clinic_address": address,
        "after_hours": after_hours,
        "patient_name": patient.name.strip() or NOT_RECORDED,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else NOT_RECORDED,
        "gp": patient.gp.strip() or NOT_RECORDED,
        "referrer": patient.referrer.strip() or NOT_RECORDED,
        "diagnoses": list(patient.diagnoses) or [NOT_RECORDED],
        "allergies": list(patient.allergies) or ["none recorded"],
        "sessions_given": len(ran),
        "first_session": ran[0].scheduled_on.isoformat() if ran else "none given",
        "last_session": max(s.scheduled_on for s in ran).isoformat() if ran else "none given",
        "total_mg": mg(total) if ran else "none given",
        "total_mg_exact": mg_text(total),
        "total_mg_per_kg": per_kg(total, course.dosing_weight_kg) if ran else "none given",
        "sessions": facts,
        "adverse_events": adverse_events(sessions, zone),
        "opioids": opioid_part,
        "follow_up": rows,
        "follow_up_basis": basis,
        "follow_up_rule": _follow_up_rule(),
        "findings": [_finding(f) for f in found],
        **_course_words(course),
        **_wording(rules),
    }
    if kind in OUTCOME_KINDS:
        data["outcome"] = outcome_facts(outcome or _nothing_known())
        data["repeat_decision"] = decision_facts(decision)
    return LetterFacts.model_validate(data)


def _nothing_known() -> OutcomeInput:
    """An outcome of which nothing is known yet (the services always give the card's)."""
    unknown = [responder(None, None, t) for t in (30, 50)]
    return OutcomeInput(
        baseline=None,
        compared=None,
        change_points=None,
        change_percent=None,
        change_note="no pain score is recorded",
        change_citation=change_definition().citation,
        responder_30=ResultInput("unknown", unknown[0].reason, unknown[0].definition.citation),
        responder_50=ResultInput("unknown", unknown[1].reason, unknown[1].definition.citation),
        relief=ResultInput(
            "no data", "no diary after the last session", relief_definition().citation
        ),
        relief_days=None,
        pgic=ResultInput("unknown", "not answered", pgic_responder(None).definition.citation),
        pgic_category=None,
        pgic_timepoint_days=None,
    )
