"""After the infusion on the command line (registered by `ketapath.cli`; docs/outcomes.md).

- ``outcomes show ORDER_ID [--json]``: a course's outcome (pain against baseline, responder at
  30% and 50% with the score it is judged at, duration of relief, 35-day pain area, PGIC,
  function, sleep, opioids, tolerance, what is not known yet), its follow-up timepoints, and
  ketapath's repeat proposal with the physician's decisions; the same computation as the
  course's Outcome card and ``GET /api/v1/courses/{order_id}/outcome``.
- ``outcomes follow-ups [--status due|overdue] [--json]``: the clinic's follow-ups due today
  and overdue (both without ``--status``), as on the ``/follow-ups`` page.

Both act for a physician or a nurse named with ``--user`` (or ``KETAPATH_USER``): the audit log
records who read. "Today" is the clinic's (``KETAPATH_TIMEZONE``). What is not known yet says
so, never 0. The database and the services are imported inside the commands, so that the
command line starts fast. Exit codes: 0 done; 1 no database; 2 invalid input or refused (the
message names the field).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ketapath.cli.output import EXIT_INVALID, emit_json, fail
from ketapath.cli.sessions import USER_ENV, _acting, _database

if TYPE_CHECKING:
    from ketapath.services.clock import ClinicClock
    from ketapath.services.outcome_views import (
        CourseFollowUps,
        CourseOutcomeView,
        CourseOverview,
        FollowUpList,
        RepeatDecisionPage,
        RepeatDecisionView,
        ResponderView,
        ScoreChangeView,
    )

STATUSES = ("due", "overdue")
NOT_YET = "not yet recorded"

outcomes_app = typer.Typer(
    help="After the infusion: a course's outcome and repeat decision, the follow-ups due.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(outcomes_app, name="outcomes")


def _call(call: Any, as_json: bool) -> Any:
    """A service call on the clinic's database, its refusals as one line."""
    from ketapath.services.errors import ServiceError

    try:
        return call()
    except typer.Exit:
        raise
    except ServiceError as error:
        option = {"order_id": "ORDER_ID", "status": "--status"}.get(error.field or "", "")
        fail(error.message, code=EXIT_INVALID, as_json=as_json, field=option or error.field or "")
    except Exception as error:  # no database, or no schema: say so in one line
        fail(
            f"cannot read the outcomes from the database ({type(error).__name__}); run "
            "`ketapath db upgrade` first",
            code=1,
            as_json=as_json,
            kind="database",
        )


@outcomes_app.command("show")
def show_command(
    order_id: Annotated[
        int, typer.Argument(min=1, max=2**31 - 1, help="The course's (signed order's) id.")
    ],
    user: Annotated[
        str | None, typer.Option("--user", help=f"Acting physician or nurse (or {USER_ENV}).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """A course's outcome, its follow-up timepoints, the repeat proposal and the decisions."""
    from ketapath.services import outcome_decisions
    from ketapath.services.clock import clinic_clock

    clock = clinic_clock()
    db = _database()
    actor = _call(lambda: _acting(db, user, as_json), as_json)
    overview = _call(
        lambda: outcome_decisions.course_overview(db, actor, order_id, clock=clock), as_json
    )
    if as_json:
        emit_json(overview.model_dump(mode="json"))
        return
    typer.echo("\n".join(overview_lines(overview, clock)))


@outcomes_app.command("follow-ups")
def follow_ups_command(
    status: Annotated[
        str | None,
        typer.Option("--status", help="due (today, in the window) or overdue; default both."),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help=f"Acting physician or nurse (or {USER_ENV}).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The clinic's follow-ups due today and overdue, the longest overdue first."""
    if status is not None and status not in STATUSES:
        fail(f"--status: due or overdue (not {status!r})", as_json=as_json, field="--status")
    from ketapath.services import outcomes
    from ketapath.services.clock import clinic_clock

    clock = clinic_clock()
    db = _database()
    actor = _call(lambda: _acting(db, user, as_json), as_json)
    chosen: Literal["due", "overdue"] | None = (
        "due" if status == "due" else "overdue" if status == "overdue" else None
    )
    listed = _call(lambda: outcomes.follow_ups(db, actor, chosen, clock=clock), as_json)
    if as_json:
        emit_json(listed.model_dump(mode="json"))
        return
    typer.echo("\n".join(follow_up_lines(listed)))


# ------------------------------------------------------------------ the lines


def _num(value: float | None, digits: int = 1) -> str:
    """A number without trailing zeros (12.5, 80, -62.5)."""
    if value is None:
        return NOT_YET
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return "0" if text in ("-0", "") else text


def overview_lines(overview: CourseOverview, clock: ClinicClock) -> list[str]:
    """A course's outcome, follow-up and decision as readable lines."""
    o = overview.outcome
    return [
        *_outcome_lines(o),
        "",
        *_follow_up_table(overview.follow_ups),
        "",
        *_decision_lines(overview.decision, clock),
    ]


def _outcome_lines(o: CourseOutcomeView) -> list[str]:
    lines = [
        f"Course: order {o.order_id} (patient {o.patient_id}), {o.protocol_name or o.protocol_id}",
        f"Outcome: {o.status} (the clinic's today: {o.today.isoformat()})",
    ]
    if not o.sessions:
        lines.append("Sessions given: none yet")
    else:
        per_kg = (
            f" ({_num(o.delivered_mg_per_kg, 2)} mg/kg of {_num(o.dosing_weight_kg)} kg)"
            if o.delivered_mg_per_kg is not None
            else ""
        )
        last = o.last_session_day.isoformat() if o.last_session_day else NOT_YET
        lines.append(
            f"Sessions given: {len(o.sessions)} (last {last}), {_num(o.delivered_mg)} mg "
            f"delivered{per_kg}, from the charts; {o.sessions_to_come} still to come"
        )
    lines += [
        f"Pain (NRS): {_pain(o)}",
        _responder(o.responder_30, o),
        _responder(o.responder_50, o),
        f"Duration of relief: {_relief(o)}",
        f"Pain area, days 1-{o.pain_auc.window_days}: "
        + (f"{_num(o.pain_auc.auc)} pain score-days" if o.pain_auc.auc is not None else "not given")
        + f": {o.pain_auc.explanation}",
        f"PGIC: {_pgic(o)}",
        f"Function: {_score_change(o.function)}",
        f"Sleep: {_score_change(o.sleep)}",
        f"Opioids (mg OME/day): {_opioids(o)}",
        f"Tolerated: {_tolerated(o)}",
    ]
    if o.missing:
        lines.append("Not known yet (never counted as 0):")
        lines += [f"  - {m}" for m in o.missing]
    lines += [f"  [{f.severity}] {f.message}" for f in o.findings]
    return lines


def _pain(o: CourseOutcomeView) -> str:
    pain = o.pain
    base = (
        f"{pain.baseline.value} at baseline ({pain.baseline.administered_at.date().isoformat()})"
        if pain.baseline
        else f"baseline {NOT_YET}"
    )
    if pain.compared is None:
        return f"{base}; after the course {NOT_YET}: {pain.reason}"
    at = pain.compared.label + (
        f" {pain.compared.timepoint_days} days" if pain.compared.timepoint_days else ""
    )
    later = f"{pain.compared.value} at {at} ({pain.compared.administered_at.date().isoformat()})"
    if pain.change is None:
        return f"{base} -> {later}: {pain.reason}"
    change = pain.change
    percent = (
        f", {_num(change.percent)}%"
        if change.percent is not None
        else f"; {change.percent_undefined}"
    )
    return f"{base} -> {later}: {_num(change.absolute)} points{percent}"


def _responder(r: ResponderView, o: CourseOutcomeView) -> str:
    compared = o.pain.compared
    where = ""
    if compared is not None:
        days = f" score, {compared.timepoint_days} days" if compared.timepoint_days else " score"
        where = f" (judged at the latest {compared.label}{days})"
    if r.status == "unknown" and (o.pain.baseline is None or compared is None):
        shown = f"{NOT_YET} ({r.reason})"
    else:
        shown = f"{r.status}: {r.reason}"
    return f"Responder at {_num(r.threshold_percent, 0)}%: {shown}{where}"


def _relief(o: CourseOutcomeView) -> str:
    relief = o.relief
    if relief.status == "censored" and relief.days is not None:
        days = f"{relief.days} days so far (censored)"
    elif relief.status == "ended" and relief.days is not None:
        days = f"{relief.days} days (ended)"
    elif relief.status == "never began":
        days = "none (never began)"
    elif relief.status == "no data":
        days = NOT_YET
    else:
        days = f"unknown ({relief.status})"
    return f"{days}: {relief.explanation}"


def _pgic(o: CourseOutcomeView) -> str:
    pgic = o.pgic
    if pgic.category is None:
        return f"{NOT_YET} (not asked at a follow-up yet)"
    at = f", at {pgic.timepoint_days} days" if pgic.timepoint_days else ""
    return f"{pgic.label} ({pgic.category}{at}): {pgic.status}"


def _score_change(m: ScoreChangeView) -> str:
    if m.change is None:
        return f"{NOT_YET}: {m.reason}"
    better = (
        f" ({_num(m.improvement_percent)}% better)" if m.improvement_percent is not None else ""
    )
    return f"{m.measure}: {_num(m.change.baseline)} -> {_num(m.change.value)}{better}"


def _opioids(o: CourseOutcomeView) -> str:
    op = o.opioids
    if op.status != "complete":
        return f"unknown: {op.reason}"
    percent = f", {_num(op.percent)}%" if op.percent is not None else ""
    return (
        f"{_num(op.baseline_ome_mg)} -> {_num(op.current_ome_mg)} "
        f"({_num(op.change_mg)} mg{percent})"
    )


def _tolerated(o: CourseOutcomeView) -> str:
    words = "unknown" if o.tolerated is None else "yes" if o.tolerated else "no"
    return f"{words}: {o.tolerance}"


def _follow_up_table(fu: CourseFollowUps) -> list[str]:
    source = "the protocol" if fu.schedule_from == "protocol" else "the outcome rules"
    if not fu.timepoints:
        return ["Follow-up: none yet (no session of the course has been given)"]
    last = fu.last_session_day.isoformat() if fu.last_session_day else NOT_YET
    lines = [f"Follow-up (from the last session given, {last}; timepoints from {source}):"]
    for t in fu.timepoints:
        recorded = f"; recorded {', '.join(i.upper() for i in t.recorded)}" if t.recorded else ""
        lines.append(
            f"  {t.label:<10} due {t.due_on.isoformat()} (window {t.due_from.isoformat()} to "
            f"{t.due_until.isoformat()}): {t.status}{recorded}"
        )
    lines += [f"  [{f.severity}] {f.message}" for f in fu.findings]
    return lines


def _decision_lines(page: RepeatDecisionPage, clock: ClinicClock) -> list[str]:
    p = page.proposal
    step = (
        f" (the dose ladder's next step, {_num(p.next_step_mg_per_kg_per_h, 3)} mg/kg/h)"
        if p.next_step_mg_per_kg_per_h
        else ""
    )
    lines = [f"ketapath proposes: {p.proposal}{step}; the physician decides."]
    lines += [f"  - {r}" for r in (*p.reasons, *p.goals_to_judge)]
    current = page.current
    if current is None:
        lines.append(f"Decision: {NOT_YET}")
    else:
        lines.append(f"Decision: {_decision(current, clock)}")
    earlier = [d for d in page.history if current is None or d.id != current.id]
    if earlier:
        lines.append("Earlier decisions (amended):")
        lines += [f"  - {_decision(d, clock)}" for d in earlier]
    return lines


def _decision(d: RepeatDecisionView, clock: ClinicClock) -> str:
    protocol = f" ({d.next_protocol_id})" if d.next_protocol_id else ""
    when = f"{clock.local(d.decided_at):%Y-%m-%d %H:%M %Z}".strip()
    words = f"{d.decision}{protocol}, by {d.decided_by or 'not recorded'} on {when}: “{d.reason}”"
    if not d.agrees_with_proposal:
        words += f" (ketapath had proposed {d.proposal})"
    return words


def follow_up_lines(listed: FollowUpList) -> list[str]:
    """The clinic's follow-ups due and overdue as readable lines."""
    which = {"due": "due", "overdue": "overdue", "all": "due or overdue"}[listed.status]
    if not listed.items:
        return [f"No follow-ups {which} on {listed.today.isoformat()} (the clinic's today)."]
    overdue = sum(1 for i in listed.items if i.status == "overdue")
    due = len(listed.items) - overdue
    lines = [
        f"Follow-ups on {listed.today.isoformat()} (the clinic's today): {overdue} overdue, "
        f"{due} due"
    ]
    for i in listed.items:
        late = (
            f", {i.days_overdue} day{'s' if i.days_overdue != 1 else ''} overdue"
            if i.status == "overdue"
            else ""
        )
        lines.append(
            f"  {i.status:<8} {i.label:<10} due {i.due_on.isoformat()} (window to "
            f"{i.due_until.isoformat()}{late})  {i.patient_name or 'not recorded'} (patient "
            f"{i.patient_id}), order {i.order_id} ({i.protocol_id}), last session "
            f"{i.last_session_day.isoformat()}"
        )
    return lines
