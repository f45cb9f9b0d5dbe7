"""After the infusion: a course's outcomes, its follow-up schedule, the clinic's due and overdue
follow-ups, and the safety checks due for repeated courses (issue 12; docs/outcomes.md).

The definitions are the pure ones of ``ketapath.domain.outcomes`` with the numbers of
``outcome_rules.yaml``; this module reads what they need (``services.outcome_reading``), one
transaction per call with its permission check (``outcome.read``: physicians and nurses) and
audit row, and returns typed views (``services.outcome_views``). "Today" is the clinic's
clock. What cannot be known yet is None or "unknown" with the reason, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ketapath.domain import outcomes as rules
from ketapath.domain import safety as safety_rules
from ketapath.domain.findings import Finding, cite
from ketapath.domain.outcomes import FollowUpTimepoint
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.outcomes import outcome_rules
from ketapath.knowledge.safety import safety_checks
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.outcome_reading import (
    NOT_TOLERATED,
    CourseReading,
    CourseRow,
    CourseSessions,
    baseline_ome,
    course_diary,
    course_readings,
    course_sessions,
    current_ome,
    last_given_days,
    patient_courses,
    read_course,
    recorded_timepoints,
)
from ketapath.services.outcome_views import (
    AucView,
    ChangeView,
    CheckDueView,
    CourseDoseView,
    CourseFollowUps,
    CourseOutcomeView,
    DefinitionView,
    DiaryPoint,
    FollowUpItem,
    FollowUpList,
    GivenSessionView,
    OpioidView,
    PainReading,
    PainView,
    PgicView,
    ReliefView,
    ResponderView,
    SafetyDueView,
    ScoreChangeView,
    SleepView,
    TimepointPain,
    TimepointView,
)
from ketapath.services.patients import latest_versions_query, load_patient
from ketapath.services.permissions import Actor
from ketapath.services.signing import FindingView
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import CourseRecord, Order, PatientVersion, SafetyResult

PAIN = "nrs"
FUNCTION = ("bpi-sf", "interference")
SLEEP = ("bpi-sf", "sleep")
PGIC = "pgic"


# ------------------------------------------------------------------ the schedule


def schedule_of(course: CourseRow, last_day: date) -> tuple[list[FollowUpTimepoint], str]:
    """The follow-up timepoints of a course from its last session day, and where their
    offsets come from (``schedule_for``)."""
    return schedule_for(course.protocol_id, last_day)


def schedule_for(protocol_id: str, last_day: date) -> tuple[list[FollowUpTimepoint], str]:
    """The follow-up timepoints from ``last_day`` for a course of ``protocol_id``: the
    protocol's own offsets when it gives them (``protocols.yaml`` ``follow_up_days``), else
    the defaults of ``outcome_rules.yaml``; and which of the two."""
    try:
        protocol = knowledge().protocol(protocol_id)
    except KeyError:
        protocol = None
    if protocol is not None and protocol.follow_up_days:
        return rules.follow_up_schedule(last_day, list(protocol.follow_up_days)), "protocol"
    return rules.follow_up_schedule(last_day), "outcome rules"


def follow_up_end(schedule: list[FollowUpTimepoint], last_day: date, today: date) -> date:
    """The end of follow-up so far: today, or the last timepoint's date once it has passed
    (never before the last session)."""
    end = min(today, schedule[-1].due_on) if schedule else today
    return max(end, last_day)


# ------------------------------------------------------------------ one course's outcome


@dataclass(frozen=True)
class ComputedOutcome:
    """The outcome view and the figures the repeat proposal compares (domain's)."""

    view: CourseOutcomeView
    figures: rules.CourseOutcome


def _nrs(reading: CourseReading) -> int | None:
    total = reading.total
    if total is None or total != int(total) or not 0 <= total <= 10:
        return None
    return int(total)


def _pain_reading(reading: CourseReading) -> PainReading | None:
    value = _nrs(reading)
    if value is None or reading.label not in ("baseline", "post-session", "follow-up"):
        return None
    return PainReading(
        assessment_id=reading.assessment_id,
        label=reading.label,
        timepoint_days=reading.timepoint_days,
        administered_at=reading.administered_at,
        value=value,
    )


def _latest(readings: list[CourseReading], label: str) -> list[CourseReading]:
    """The readings of a label, latest last (follow-ups by timepoint, then time given)."""
    chosen = [r for r in readings if r.label == label]
    return sorted(chosen, key=lambda r: (r.timepoint_days or 0, r.administered_at))


def _pain(
    readings: list[CourseReading],
) -> tuple[PainView, ResponderView, ResponderView, float | None]:
    pain = [r for r in readings if r.instrument_id == PAIN and _nrs(r) is not None]
    baseline = next(iter(reversed(_latest(pain, "baseline"))), None)
    compared = next(iter(reversed(_latest(pain, "follow-up"))), None) or next(
        iter(reversed(_latest(pain, "post-session"))), None
    )
    base = _nrs(baseline) if baseline else None
    later = _nrs(compared) if compared else None
    r30 = rules.responder(base, later, 30)
    r50 = rules.responder(base, later, 50)
    reason = ""
    change = None
    if base is None:
        reason = "no baseline pain score (NRS) is recorded for this course"
    elif later is None:
        reason = "no pain score (NRS) is recorded after a session or at a follow-up yet"
    else:
        change = ChangeView.model_validate(rules.change_from_baseline(base, later))
    by_timepoint = []
    per_timepoint: dict[int, CourseReading] = {}
    for r in _latest(pain, "follow-up"):
        if r.timepoint_days is not None:
            per_timepoint[r.timepoint_days] = r
    for days, r in sorted(per_timepoint.items()):
        value = _nrs(r)
        assert value is not None
        by_timepoint.append(
            TimepointPain(
                timepoint_days=days,
                value=value,
                administered_at=r.administered_at,
                change=ChangeView.model_validate(rules.change_from_baseline(base, value))
                if base is not None
                else None,
                responder_30=rules.responder(base, value, 30).status,
                responder_50=rules.responder(base, value, 50).status,
            )
        )
    view = PainView(
        baseline=_pain_reading(baseline) if baseline else None,
        compared=_pain_reading(compared) if compared else None,
        change=change,
        reason=reason,
        by_timepoint=by_timepoint,
        definition=DefinitionView.model_validate(rules.change_definition()),
    )
    return (
        view,
        ResponderView.model_validate(r30),
        ResponderView.model_validate(r50),
        r30.reduction_percent,
    )


def _score_change(
    readings: list[CourseReading],
    instrument_id: str,
    part: str,
    name: str,
    measure: str,
    *,
    item: bool = False,
) -> ScoreChangeView:
    def value_of(r: CourseReading) -> float | None:
        return r.answer(part) if item else r.subscale(part)

    chosen = [r for r in readings if r.instrument_id == instrument_id and value_of(r) is not None]
    baseline = next(iter(reversed(_latest(chosen, "baseline"))), None)
    later = next(iter(reversed(_latest(chosen, "follow-up"))), None)
    base_value = value_of(baseline) if baseline else None
    later_value = value_of(later) if later else None
    change = None
    improvement = None
    reason = ""
    if base_value is None:
        reason = f"no baseline {measure} is recorded for this course"
    elif later_value is None:
        reason = f"no follow-up {measure} is recorded yet"
    else:
        computed = rules.change_from_baseline(base_value, later_value)
        change = ChangeView.model_validate(computed)
        improvement = -computed.percent if computed.percent is not None else None
        if computed.percent is None:
            reason = computed.percent_undefined
    return ScoreChangeView(
        name=name,
        measure=measure,
        status="complete" if change is not None else "not enough data",
        baseline=base_value,
        baseline_at=baseline.administered_at if baseline else None,
        value=later_value,
        value_at=later.administered_at if later else None,
        timepoint_days=later.timepoint_days if later else None,
        change=change,
        improvement_percent=improvement,
        reason=reason,
        definition=DefinitionView.model_validate(rules.change_definition()),
    )


def _pgic(readings: list[CourseReading]) -> PgicView:
    chosen = [
        r
        for r in readings
        if r.instrument_id == PGIC and r.total is not None and r.total == int(r.total)
    ]
    latest = next(iter(reversed(_latest(chosen, "follow-up"))), None)
    category = int(latest.total) if latest and latest.total is not None else None
    if category is not None and not 1 <= category <= 7:
        category = None
    return PgicView.of(rules.pgic_responder(category), latest.timepoint_days if latest else None)


def _relief(
    base: int | None, daily: dict[date, int], last_day: date | None, end: date | None
) -> ReliefView:
    definition = rules.relief_definition()
    r = outcome_rules().relief
    if last_day is None or end is None or base is None:
        why = (
            "no session of the course was given"
            if last_day is None
            else "no baseline pain score (NRS) is recorded for this course"
        )
        return ReliefView(
            status="no data",
            days=None,
            event=False,
            censored=False,
            start=last_day,
            follow_up_end=end,
            event_date=None,
            last_in_relief=None,
            censored_at=None,
            baseline=base,
            margin_nrs=r.margin_nrs,
            onset_threshold_percent=r.onset_threshold_percent,
            explanation=why,
            definition=DefinitionView.model_validate(definition),
        )
    return ReliefView.of(rules.relief_duration(base, daily, last_day, end))


def _auc(daily: dict[date, int], last_day: date | None) -> tuple[AucView, list[Finding]]:
    if last_day is None:
        window = outcome_rules().pain_auc.days
        return (
            AucView(
                status="incomplete",
                auc=None,
                window_days=window,
                first_day=None,
                last_day=None,
                observed_days=0,
                missing=[],
                interpolated=[],
                mean_daily_pain=None,
                explanation="incomplete: no session of the course was given",
                definition=DefinitionView.model_validate(rules.pain_auc_definition()),
            ),
            [],
        )
    area = rules.pain_auc(daily, last_day)
    return AucView.model_validate(area), list(area.findings)


def _tolerance(sessions: CourseSessions) -> tuple[bool | None, str]:
    if not sessions.given:
        return None, "no session was given"
    stopped = [s for s in sessions.given if s.stop_reason in NOT_TOLERATED]
    if stopped:
        words = ", ".join(
            f"session {s.number} ({s.day.isoformat()}) for {NOT_TOLERATED[s.stop_reason or '']}"
            for s in stopped
        )
        return False, f"stopped because of side effects: {words}"
    return True, "no session was stopped for dissociation, amnesia or side effects"


def compute_outcome(
    session: Session, course: CourseRow, sessions: CourseSessions, today: date
) -> ComputedOutcome:
    """The outcome of ``course`` from its records, inside a transaction the caller holds."""
    readings = course_readings(session, course.patient_id, course.order_id)
    diary = course_diary(session, course.order_id)
    pain_by_day = {day: pain for day, (pain, _) in diary.items()}
    last_day = sessions.last_day
    end = None
    if last_day is not None:
        schedule, _ = schedule_of(course, last_day)
        end = follow_up_end(schedule, last_day, today)
    pain, r30, r50, reduction = _pain(readings)
    base = pain.baseline.value if pain.baseline else None
    relief = _relief(base, pain_by_day, last_day, end)
    auc, auc_findings = _auc(pain_by_day, last_day)
    pgic = _pgic(readings)
    function = _score_change(
        readings, *FUNCTION, "function", "pain interference (BPI-SF interference)"
    )
    sleep = _sleep(readings, diary, last_day)
    baseline_total = baseline_ome(session, course, sessions.first_day)
    current_total = current_ome(session, course.patient_id, last_day)
    opioid = OpioidView.of(
        rules.opioid_change(
            baseline_total.total,
            current_total.total,
            (baseline_total.complete, current_total.complete),
        ),
        baseline_total.source,
        current_total.source,
    )
    tolerated, tolerance = _tolerance(sessions)
    delivered = sessions.delivered_mg
    weight = course.dosing_weight_kg
    missing = _missing(pain, relief, auc, pgic, function, sleep, opioid, tolerated)
    status: Literal["complete", "incomplete", "no sessions"] = (
        "no sessions" if not sessions.given else ("incomplete" if missing else "complete")
    )
    view = CourseOutcomeView(
        order_id=course.order_id,
        patient_id=course.patient_id,
        protocol_id=course.protocol_id,
        protocol_name=course.protocol_name,
        status=status,
        today=today,
        in_progress=sessions.to_come > 0,
        sessions=[
            GivenSessionView(
                session_id=s.session_id,
                number=s.number,
                day=s.day,
                state=s.state,
                delivered_mg=float(s.delivered_mg),
                delivered_mg_exact=s.delivered_text,
                stop_reason=s.stop_reason,
            )
            for s in sessions.given
        ],
        sessions_to_come=sessions.to_come,
        last_session_day=last_day,
        follow_up_end=end,
        delivered_mg=float(delivered),
        delivered_mg_per_kg=float(delivered / Fraction(weight)) if weight else None,
        dosing_weight_kg=weight,
        pain=pain,
        responder_30=r30,
        responder_50=r50,
        relief=relief,
        pain_auc=auc,
        pgic=pgic,
        function=function,
        sleep=sleep,
        opioids=opioid,
        tolerated=tolerated,
        tolerance=tolerance,
        diary=[DiaryPoint(day=d, pain_nrs=p, sleep_quality=s) for d, (p, s) in diary.items()],
        missing=missing,
        findings=[FindingView.model_validate(f) for f in auc_findings],
    )
    figures = rules.CourseOutcome(
        pain_reduction_percent=reduction,
        relief_days=relief.days if relief.status in ("ended", "censored", "never began") else None,
        relief_censored=relief.status == "censored",
        function_improvement_percent=function.improvement_percent,
        opioid_reduction_percent=-opioid.percent if opioid.percent is not None else None,
        tolerated=tolerated,
    )
    return ComputedOutcome(view, figures)


def _sleep(
    readings: list[CourseReading], diary: dict[date, tuple[int, int | None]], last_day: date | None
) -> SleepView:
    item = _score_change(
        readings, *SLEEP, "sleep", "interference with sleep (BPI-SF item 9F)", item=True
    )
    window = outcome_rules().pain_auc.days
    nights = [
        quality
        for day, (_, quality) in diary.items()
        if quality is not None
        and last_day is not None
        and last_day < day <= last_day + timedelta(days=window)
    ]
    mean = float(Fraction(sum(nights), len(nights))) if nights else None
    return SleepView(
        **item.model_dump(), diary_mean_sleep_quality=mean, diary_sleep_days=len(nights)
    )


def _missing(
    pain: PainView,
    relief: ReliefView,
    auc: AucView,
    pgic: PgicView,
    function: ScoreChangeView,
    sleep: ScoreChangeView,
    opioid: OpioidView,
    tolerated: bool | None,
) -> list[str]:
    out = []
    if pain.change is None:
        out.append(f"pain change: {pain.reason}")
    if relief.status in ("no data", "not assessable"):
        out.append(f"duration of relief: {relief.explanation}")
    if auc.status != "complete":
        out.append(f"35-day pain area: {auc.explanation}")
    if pgic.status == "unknown":
        out.append("PGIC: not asked at a follow-up yet")
    if function.status != "complete":
        out.append(f"function: {function.reason}")
    if sleep.status != "complete":
        out.append(f"sleep: {sleep.reason}")
    if opioid.status != "complete":
        out.append(f"opioid dose change: {opioid.reason}")
    if tolerated is None:
        out.append("tolerance: no session was given")
    return out


def course_outcome(
    db: Database, actor: Actor, order_id: int, *, clock: ClinicClock | None = None
) -> CourseOutcomeView:
    """What happened after the course of ``order_id`` (physician, nurse): change in pain,
    responder at 30% and 50%, duration of relief, 35-day pain area, PGIC, function, sleep,
    opioid change and tolerance, each with its definition."""
    clock = clock or clinic_clock()
    with action(db, actor, "outcome.read", entity="order", entity_id=order_id) as session:
        course = read_course(session, order_id)
        sessions = course_sessions(session, [order_id], clock)[order_id]
        computed = compute_outcome(session, course, sessions, clock.today())
        audit.record(
            session,
            actor,
            "outcome.read",
            entity="order",
            entity_id=order_id,
            patient_id=course.patient_id,
            detail={"status": computed.view.status},
        )
        return computed.view


# ------------------------------------------------------------------ follow-up


def _timepoints(
    schedule: list[FollowUpTimepoint], recorded: dict[int, set[str]], today: date
) -> list[TimepointView]:
    wanted = outcome_rules().follow_up_instruments.all_ids
    out = []
    for tp in schedule:
        done = recorded.get(tp.offset_days, set())
        out.append(
            TimepointView(
                label=tp.label,
                offset_days=tp.offset_days,
                due_on=tp.due_on,
                due_from=tp.due_from,
                due_until=tp.due_until,
                status=rules.timepoint_status(tp, today, bool(done)),
                recorded=sorted(done),
                missing=[i for i in wanted if i not in done] if done else list(wanted),
            )
        )
    return out


def follow_ups_in(
    session: Session, course: CourseRow, sessions: CourseSessions, today: date
) -> CourseFollowUps:
    """A course's follow-up schedule inside a transaction the caller holds."""
    recorded = recorded_timepoints(session, [course.order_id]).get(course.order_id, {})
    last_day = sessions.last_day
    if last_day is not None:
        schedule, source = schedule_of(course, last_day)
    else:
        schedule = []
        source = schedule_for(course.protocol_id, today)[1]
    timepoints = _timepoints(schedule, recorded, today)
    done = {t.offset_days: t.status == "done" for t in timepoints}
    findings = rules.follow_up_findings(schedule, today, done)
    definition = (
        schedule[0].definition if schedule else rules.follow_up_schedule(today)[0].definition
    )
    return CourseFollowUps(
        order_id=course.order_id,
        patient_id=course.patient_id,
        protocol_id=course.protocol_id,
        today=today,
        last_session_day=last_day,
        in_progress=sessions.to_come > 0,
        schedule_from="protocol" if source == "protocol" else "outcome rules",
        instruments=list(outcome_rules().follow_up_instruments.all_ids),
        timepoints=timepoints,
        findings=[FindingView.model_validate(f) for f in findings],
        definition=DefinitionView.model_validate(definition),
    )


def course_follow_ups(
    db: Database, actor: Actor, order_id: int, *, clock: ClinicClock | None = None
) -> CourseFollowUps:
    """A course's follow-up timepoints from its last session given, each done, due,
    overdue or not yet due, with the instruments recorded and missing at it."""
    clock = clock or clinic_clock()
    with action(db, actor, "outcome.read", entity="order", entity_id=order_id) as session:
        course = read_course(session, order_id)
        sessions = course_sessions(session, [order_id], clock)[order_id]
        view = follow_ups_in(session, course, sessions, clock.today())
        audit.record(
            session,
            actor,
            "follow_up.read",
            entity="order",
            entity_id=order_id,
            patient_id=course.patient_id,
            detail={"timepoints": len(view.timepoints)},
        )
        return view


def follow_ups(
    db: Database,
    actor: Actor,
    status: Literal["due", "overdue"] | None = None,
    *,
    clock: ClinicClock | None = None,
) -> FollowUpList:
    """The clinic's follow-ups due today (inside their window) and overdue (past it, not
    recorded), over every course whose sessions are over; ``status`` keeps one of the two.
    Overdue first (the longest overdue first), then due (the earliest first)."""
    clock = clock or clinic_clock()
    today = clock.today()
    with action(db, actor, "outcome.read", entity="follow_up") as session:
        given = last_given_days(session, clock)
        items = _due_items(session, given, today, status)
        audit.record(
            session,
            actor,
            "follow_up.list",
            entity="follow_up",
            detail={"status": status or "all", "count": len(items)},
        )
        return FollowUpList(today=today, status=status or "all", items=items)


def _due_items(
    session: Session,
    given: dict[int, tuple[int, date]],
    today: date,
    status: str | None,
) -> list[FollowUpItem]:
    if not given:
        return []
    orders = list(given)
    protocols = dict(
        session.execute(
            select(Order.id, CourseRecord.protocol_id)
            .join(CourseRecord, CourseRecord.id == Order.course_id)
            .where(Order.id.in_(orders))
        ).all()
    )
    names = {
        row.patient_id: row.full_name
        for row in session.scalars(
            latest_versions_query().where(
                PatientVersion.patient_id.in_({p for p, _ in given.values()})
            )
        )
    }
    recorded = recorded_timepoints(session, orders)
    items = []
    for order_id, (patient_id, last_day) in given.items():
        protocol_id = protocols.get(order_id, "")
        schedule, _ = schedule_for(protocol_id, last_day)
        for tp in schedule:
            state = rules.timepoint_status(
                tp, today, bool(recorded.get(order_id, {}).get(tp.offset_days))
            )
            if state not in ("due", "overdue") or (status and state != status):
                continue
            items.append(
                FollowUpItem(
                    patient_id=patient_id,
                    patient_name=names.get(patient_id, ""),
                    order_id=order_id,
                    protocol_id=protocol_id,
                    last_session_day=last_day,
                    label=tp.label,
                    offset_days=tp.offset_days,
                    due_on=tp.due_on,
                    due_from=tp.due_from,
                    due_until=tp.due_until,
                    status=state,
                    days_overdue=max(0, (today - tp.due_until).days),
                )
            )
    items.sort(key=lambda i: (i.status != "overdue", i.due_on, i.patient_name, i.order_id))
    return items


# ------------------------------------------------------------------ cumulative dose and safety


@dataclass(frozen=True)
class PatientDoses:
    """Every course of a patient with what it delivered, and the totals over them."""

    courses: list[CourseRow]
    sessions: dict[int, CourseSessions]
    counted: int
    cumulative_mg: Fraction
    cumulative_mg_per_kg: Fraction | None


def patient_doses(
    session: Session, patient_id: int, clock: ClinicClock, *, leave_out: int | None = None
) -> PatientDoses:
    """The patient's courses (``leave_out``: an order not to count) with their delivered
    doses from the charts, the number of courses given or under way, and the cumulative dose
    (mg, and mg/kg of each course's dosing weight; None when a weight is not known)."""
    courses = [c for c in patient_courses(session, patient_id) if c.order_id != leave_out]
    sessions = course_sessions(session, [c.order_id for c in courses], clock)
    counted = [
        c
        for c in courses
        if sessions[c.order_id].given or (not c.cancelled and sessions[c.order_id].to_come)
    ]
    doses = [
        (s.delivered_mg, c.dosing_weight_kg) for c in courses for s in sessions[c.order_id].given
    ]
    total_mg = sum((mg for mg, _ in doses), Fraction(0))
    return PatientDoses(
        courses, sessions, len(counted), total_mg, rules.cumulative_mg_per_kg(doses)
    )


def _last_results(session: Session, patient_id: int, today: date) -> dict[str, SafetyResult]:
    newer = aliased(SafetyResult)
    rows = session.scalars(
        select(SafetyResult)
        .where(SafetyResult.patient_id == patient_id, SafetyResult.observed_on <= today)
        .where(~select(newer.id).where(newer.amends_id == SafetyResult.id).exists())
        .order_by(SafetyResult.observed_on, SafetyResult.id)
    ).all()
    return {row.check_id: row for row in rows}


def safety_due(
    db: Database, actor: Actor, patient_id: int, *, clock: ClinicClock | None = None
) -> SafetyDueView:
    """The safety checks of repeated courses due for the patient: by the number of courses
    and the cumulative dose delivered over all of them (from the charts), and the last
    result of each check (an abnormal one keeps its findings)."""
    clock = clock or clinic_clock()
    today = clock.today()
    with action(db, actor, "outcome.read", entity="patient", patient_id=patient_id) as session:
        load_patient(session, patient_id)
        doses = patient_doses(session, patient_id, clock)
        last = _last_results(session, patient_id, today)
        cumulative = doses.cumulative_mg_per_kg
        due = rules.safety_checks_due(
            float(cumulative) if cumulative is not None else None,
            {check_id: row.observed_on for check_id, row in last.items() if _known(check_id)},
            today,
            doses.counted,
        )
        findings = list(due)
        for row in last.values():
            if row.abnormal and _known(row.check_id):
                check = safety_checks().check(row.check_id)
                findings += [
                    f for f in safety_rules.judge(check, row.values) if f.severity != "info"
                ]
        audit.record(
            session,
            actor,
            "safety.due",
            entity="patient",
            entity_id=patient_id,
            detail={"courses": doses.counted, "findings": [f.code for f in findings]},
        )
        return SafetyDueView(
            patient_id=patient_id,
            today=today,
            courses=doses.counted,
            course_doses=[_course_dose(c, doses.sessions[c.order_id]) for c in doses.courses],
            cumulative_mg=float(doses.cumulative_mg),
            cumulative_mg_per_kg=float(cumulative) if cumulative is not None else None,
            checks=_checks(due, last, doses.counted),
            findings=[FindingView.model_validate(f) for f in findings],
            rule=outcome_rules().safety.rule,
            citation="; ".join(c.text for c in cite(outcome_rules().safety.source)),
        )


def _known(check_id: str) -> bool:
    return check_id in {c.id for c in outcome_rules().safety.checks}


def _course_dose(course: CourseRow, sessions: CourseSessions) -> CourseDoseView:
    weight = course.dosing_weight_kg
    delivered = sessions.delivered_mg
    return CourseDoseView(
        order_id=course.order_id,
        protocol_id=course.protocol_id,
        first_day=sessions.first_day,
        last_day=sessions.last_day,
        sessions_given=len(sessions.given),
        sessions_to_come=sessions.to_come,
        delivered_mg=float(delivered),
        dosing_weight_kg=weight,
        delivered_mg_per_kg=float(delivered / Fraction(weight)) if weight else None,
    )


def _checks(due: list[Finding], last: dict[str, SafetyResult], courses: int) -> list[CheckDueView]:
    by_check = {f.subject: f for f in due if f.code.startswith("outcomes:safety-check")}
    out = []
    for check in outcome_rules().safety.checks:
        found = by_check.get(check.id)
        row = last.get(check.id)
        if found is not None:
            state: Literal["not due", "due", "overdue"] = (
                "overdue" if found.code == "outcomes:safety-check-overdue" else "due"
            )
            message = found.message
        else:
            state = "not due"
            message = (
                f"{check.name}: last recorded {row.observed_on.isoformat()}; not due again yet."
                if row is not None
                else f"{check.name}: not due (from course {check.from_course}"
                + (
                    f" or above {check.above_mg_per_kg:g} mg/kg cumulative"
                    if check.above_mg_per_kg is not None
                    else ""
                )
                + f"; this is course {courses})."
            )
        out.append(
            CheckDueView(
                check_id=check.id,
                name=check.name,
                status=state,
                last_done=row.observed_on if row else None,
                last_result_id=row.id if row else None,
                last_abnormal=row.abnormal if row else None,
                message=message,
            )
        )
    return out


def earlier_courses_finding(
    session: Session, patient_id: int, planned_mg_per_kg: float, clock: ClinicClock
) -> Finding | None:
    """The cumulative-dose finding of a new course for the patient (signing): the doses their
    earlier courses delivered (from the charts) and this course as planned; None when the
    patient has no earlier course given."""
    doses = patient_doses(session, patient_id, clock)
    earlier = [c for c in doses.courses if doses.sessions[c.order_id].given]
    if not earlier:
        return None
    cumulative = doses.cumulative_mg_per_kg
    return rules.cumulative_dose_finding(
        float(cumulative) if cumulative is not None else None, len(earlier), planned_mg_per_kg
    )
