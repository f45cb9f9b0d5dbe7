"""The repeat decision after a course (issue 12, item 4; seed 003 point 2): ketapath proposes
repeat, change protocol (on a dose ladder: its next step) or stop from the indicators of
success agreed at assessment and the course's outcome (``domain.outcomes.repeat_proposal``),
showing its reasoning; the physician decides, with a reason that is always written.

A decision is stored with the proposal and the outcome it was taken on (``basis``); a
correction is a new row that amends the current one (``amends_id``). Only a physician decides
(``repeat.decide``); physicians and nurses read (``outcome.read``). Nothing is written when
the input is refused: an unknown protocol, a missing reason, a change of protocol without the
protocol, a course with no session given, a second decision that does not amend the first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.domain import outcomes as rules
from ketapath.knowledge.clinical import knowledge
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.indicators import indicators_in
from ketapath.services.outcome_reading import (
    CourseRow,
    CourseSessions,
    course_sessions,
    patient_courses,
    read_course,
)
from ketapath.services.outcome_views import (
    CourseOverview,
    DefinitionView,
    IndicatorResultView,
    RepeatDecisionInput,
    RepeatDecisionPage,
    RepeatDecisionView,
    RepeatProposalView,
)
from ketapath.services.outcomes import (
    ComputedOutcome,
    compute_outcome,
    follow_ups_in,
    patient_doses,
)
from ketapath.services.patients import load_patient
from ketapath.services.people import usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.signing import FindingView
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import RepeatDecision


def ladder_next(course: CourseRow, sessions: CourseSessions) -> float | None:
    """The dose ladder's next rung after the course (mg/kg/h): the lowest step above the
    highest rate its sessions given were planned at, up to the ceiling; the order's own
    steps and ceiling when the physician chose them. None off a ladder or at its top."""
    protocol = course.protocol
    if protocol is None or protocol.dose_ladder is None:
        return None
    ladder = protocol.dose_ladder
    steps = course.options.get("ladder_steps_mg_per_kg_per_h") or ladder.steps_mg_per_kg_per_h
    ceiling = course.options.get("ladder_ceiling_mg_per_kg_per_h") or ladder.ceiling_mg_per_kg_per_h
    rates = [course.planned_rate_mg_per_kg_per_h(s.number) for s in sessions.given]
    highest = max((r for r in rates if r is not None), default=None)
    return rules.ladder_next_step([float(s) for s in steps], float(ceiling), highest)


def proposal_in(
    session: Session,
    course: CourseRow,
    clock: ClinicClock,
    known: tuple[CourseSessions, ComputedOutcome] | None = None,
) -> RepeatProposalView:
    """The repeat proposal of ``course`` inside a transaction the caller holds (``known``:
    its sessions and outcome, when the caller has them already)."""
    if known is None:
        sessions = course_sessions(session, [course.order_id], clock)[course.order_id]
        computed = compute_outcome(session, course, sessions, clock.today())
    else:
        sessions, computed = known
    agreed = indicators_in(session, course.patient_id, course.order_id)
    values = agreed.indicators if agreed else None
    indicators = rules.SuccessIndicators(
        pain_reduction_percent=values.pain_reduction_percent if values else None,
        relief_days=values.relief_days if values else None,
        function_improvement_percent=values.function_improvement_percent if values else None,
        opioid_reduction_percent=values.opioid_reduction_percent if values else None,
    )
    step = ladder_next(course, sessions)
    label = f"{course.protocol_id} at {step:g} mg/kg/h" if step is not None else None
    proposal = rules.repeat_proposal(indicators, computed.figures, label)
    goals = []
    if values is not None:
        for words, text in (
            ("Function goal", values.function_goal),
            ("Sleep goal", values.sleep_goal),
            ("Other goals", values.other_goals),
        ):
            if text:
                goals.append(f"{words} agreed: “{text}”; judge it with the patient.")
    next_protocol = None
    if proposal.proposal == "repeat" or proposal.next_protocol is not None:
        next_protocol = course.protocol_id
    doses = patient_doses(session, course.patient_id, clock)
    figures = computed.figures
    return RepeatProposalView(
        order_id=course.order_id,
        patient_id=course.patient_id,
        protocol_id=course.protocol_id,
        proposal=proposal.proposal,
        next_protocol_id=next_protocol,
        next_step_mg_per_kg_per_h=step if proposal.next_protocol is not None else None,
        reasons=list(proposal.reasons),
        indicators_id=agreed.id if agreed else None,
        indicators=[IndicatorResultView.model_validate(i) for i in proposal.indicators],
        goals_to_judge=goals,
        outcome={
            "status": computed.view.status,
            "pain_reduction_percent": figures.pain_reduction_percent,
            "relief_days": figures.relief_days,
            "relief_censored": figures.relief_censored,
            "function_improvement_percent": figures.function_improvement_percent,
            "opioid_reduction_percent": figures.opioid_reduction_percent,
            "tolerated": figures.tolerated,
            "responder_30": computed.view.responder_30.status,
            "responder_50": computed.view.responder_50.status,
            "pain_auc": computed.view.pain_auc.auc,
            "last_session_day": (
                computed.view.last_session_day.isoformat()
                if computed.view.last_session_day
                else None
            ),
        },
        cumulative_mg_per_kg=(
            float(doses.cumulative_mg_per_kg) if doses.cumulative_mg_per_kg is not None else None
        ),
        courses=doses.counted,
        findings=[FindingView.model_validate(f) for f in proposal.findings],
        definition=DefinitionView.model_validate(proposal.definition),
    )


# ------------------------------------------------------------------ decisions


def _rows(session: Session, order_id: int) -> list[RepeatDecision]:
    return list(
        session.scalars(
            select(RepeatDecision)
            .where(RepeatDecision.order_id == order_id)
            .order_by(RepeatDecision.id)
        )
    )


def _views(session: Session, rows: list[RepeatDecision]) -> list[RepeatDecisionView]:
    names = usernames_of(session, [row.decided_by_id for row in rows])
    amended = {row.amends_id for row in rows if row.amends_id is not None}
    return [
        RepeatDecisionView(
            id=row.id,
            order_id=row.order_id,
            patient_id=row.patient_id,
            proposal=row.proposal,
            decision=row.decision,
            next_protocol_id=row.next_protocol_id,
            reason=row.reason,
            agrees_with_proposal=row.proposal == row.decision,
            decided_at=row.decided_at,
            decided_by=names.get(row.decided_by_id),
            amends_id=row.amends_id,
            amended=row.id in amended,
            basis=row.basis,
        )
        for row in rows
    ]


def _current(views: list[RepeatDecisionView]) -> RepeatDecisionView | None:
    return next((v for v in reversed(views) if not v.amended), None)


def current_decision_in(session: Session, order_id: int) -> RepeatDecisionView | None:
    """The course's current repeat decision (the latest not amended; None: none recorded),
    inside a transaction the caller holds (the letters read it)."""
    return _current(_views(session, _rows(session, order_id)))


def decision_page(
    db: Database, actor: Actor, order_id: int, *, clock: ClinicClock | None = None
) -> RepeatDecisionPage:
    """The course's repeat proposal with its reasoning, its current decision and every
    decision recorded (physician, nurse)."""
    clock = clock or clinic_clock()
    with action(db, actor, "outcome.read", entity="order", entity_id=order_id) as session:
        course = read_course(session, order_id)
        proposal = proposal_in(session, course, clock)
        views = _views(session, _rows(session, order_id))
        audit.record(
            session,
            actor,
            "repeat.read",
            entity="order",
            entity_id=order_id,
            patient_id=course.patient_id,
            detail={"proposal": proposal.proposal, "decisions": len(views)},
        )
        return RepeatDecisionPage(proposal=proposal, current=_current(views), history=views)


def list_decisions(db: Database, actor: Actor, order_id: int) -> list[RepeatDecisionView]:
    """Every repeat decision of the course, oldest first (amended ones marked)."""
    with action(db, actor, "outcome.read", entity="order", entity_id=order_id) as session:
        course = read_course(session, order_id)
        views = _views(session, _rows(session, order_id))
        audit.record(
            session,
            actor,
            "repeat.list",
            entity="order",
            entity_id=order_id,
            patient_id=course.patient_id,
            detail={"count": len(views)},
        )
        return views


def _next_protocol(course: CourseRow, data: RepeatDecisionInput) -> str | None:
    """The protocol of the next course as decided: checked against the protocol library."""
    chosen = data.next_protocol_id
    if data.decision == "stop":
        if chosen is not None:
            raise InvalidInput(
                "next_protocol_id: a decision to stop has no next protocol; leave it out.",
                field="next_protocol_id",
            )
        return None
    if chosen is None:
        if data.decision == "change protocol":
            raise InvalidInput(
                "next_protocol_id: name the protocol to change to.", field="next_protocol_id"
            )
        return course.protocol_id
    known = [p.id for p in knowledge().protocols.entries]
    if chosen not in known:
        raise InvalidInput(
            f"next_protocol_id: {chosen!r} is not a protocol of the library; the protocols are "
            f"{', '.join(known)}.",
            field="next_protocol_id",
        )
    return chosen


def record_decision(
    db: Database,
    actor: Actor,
    order_id: int,
    data: RepeatDecisionInput,
    *,
    clock: ClinicClock | None = None,
) -> RepeatDecisionView:
    """Record the physician's decision after the course (repeat, change protocol, stop) with
    the reason, the proposal and the outcome it was taken on; a second decision amends the
    current one (``amends_id``), never overwrites it."""
    clock = clock or clinic_clock()
    with action(db, actor, "repeat.decide", entity="order", entity_id=order_id) as session:
        course = read_course(session, order_id)
        next_protocol = _next_protocol(course, data)
        sessions = course_sessions(session, [order_id], clock)[order_id]
        if not sessions.given:
            raise Conflict(
                f"order_id: no session of order {order_id} has been given; a repeat decision "
                "follows a course.",
                field="order_id",
            )
        views = _views(session, _rows(session, order_id))
        current = _current(views)
        _check_amends(order_id, data.amends_id, current, views)
        proposal = proposal_in(session, course, clock)
        row = RepeatDecision(
            patient_id=course.patient_id,
            order_id=order_id,
            proposal=proposal.proposal,
            decision=data.decision,
            next_protocol_id=next_protocol,
            basis={"proposal": proposal.model_dump(mode="json")},
            reason=data.reason,
            decided_at=clock.now(),
            decided_by_id=actor.user_id,
            amends_id=data.amends_id,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "repeat.decide",
            entity="repeat_decision",
            entity_id=row.id,
            patient_id=course.patient_id,
            detail={
                "order_id": order_id,
                "proposal": proposal.proposal,
                "decision": data.decision,
                "next_protocol_id": next_protocol,
                "amends_id": data.amends_id,
                "reason": data.reason,
            },
        )
        return _views(session, [row])[0]


def _check_amends(
    order_id: int,
    amends_id: int | None,
    current: RepeatDecisionView | None,
    views: list[RepeatDecisionView],
) -> None:
    if amends_id is None:
        if current is not None:
            raise Conflict(
                f"amends_id: decision {current.id} is already recorded for this course; amend "
                "it (give amends_id) with the reason for the change.",
                field="amends_id",
            )
        return
    if not any(v.id == amends_id for v in views):
        raise NotFound(
            f"amends_id: no repeat decision {amends_id} of order {order_id}.", field="amends_id"
        )
    if current is None or current.id != amends_id:
        raise Conflict(
            f"amends_id: decision {amends_id} was already amended"
            + (f" by {current.id}; amend the current one." if current else "."),
            field="amends_id",
        )


def course_overview(
    db: Database, actor: Actor, order_id: int, *, clock: ClinicClock | None = None
) -> CourseOverview:
    """One course's outcome, follow-up schedule, repeat proposal and decisions, read in one
    transaction (physician, nurse; what ``ketapath outcomes show`` prints). A course with no
    session given yet has the outcome ``no sessions`` and no timepoints."""
    clock = clock or clinic_clock()
    today = clock.today()
    with action(db, actor, "outcome.read", entity="order", entity_id=order_id) as session:
        course = read_course(session, order_id)
        sessions = course_sessions(session, [order_id], clock)[order_id]
        computed = compute_outcome(session, course, sessions, today)
        views = _views(session, _rows(session, order_id))
        overview = CourseOverview(
            outcome=computed.view,
            follow_ups=follow_ups_in(session, course, sessions, today),
            decision=RepeatDecisionPage(
                proposal=proposal_in(session, course, clock, (sessions, computed)),
                current=_current(views),
                history=views,
            ),
        )
        audit.record(
            session,
            actor,
            "outcome.course",
            entity="order",
            entity_id=order_id,
            patient_id=course.patient_id,
            detail={
                "status": computed.view.status,
                "proposal": overview.decision.proposal.proposal,
                "decisions": len(views),
            },
        )
        return overview


def course_overviews(
    db: Database, actor: Actor, patient_id: int, *, clock: ClinicClock | None = None
) -> list[CourseOverview]:
    """Each of the patient's courses with a session given, newest first: its outcome, its
    follow-up schedule and its repeat proposal and decisions (what the patient page shows)."""
    clock = clock or clinic_clock()
    today = clock.today()
    with action(db, actor, "outcome.read", entity="patient", patient_id=patient_id) as session:
        load_patient(session, patient_id)
        courses = patient_courses(session, patient_id)
        given = course_sessions(session, [c.order_id for c in courses], clock)
        out = []
        for course in reversed(courses):
            sessions = given[course.order_id]
            if not sessions.given:
                continue
            computed = compute_outcome(session, course, sessions, today)
            views = _views(session, _rows(session, course.order_id))
            out.append(
                CourseOverview(
                    outcome=computed.view,
                    follow_ups=follow_ups_in(session, course, sessions, today),
                    decision=RepeatDecisionPage(
                        proposal=proposal_in(session, course, clock, (sessions, computed)),
                        current=_current(views),
                        history=views,
                    ),
                )
            )
        audit.record(
            session,
            actor,
            "outcome.patient",
            entity="patient",
            entity_id=patient_id,
            detail={"courses": [o.outcome.order_id for o in out]},
        )
        return out
