"""The infusion day on the command line.

- ``sessions worklist [--date YYYY-MM-DD] [--chair CHAIR] [--json]``: a clinic date's sessions
  (default: the clinic's today), each with its state, rate, dose and open prompts.
- ``sessions show ID [--json]``: one session replayed now.
- ``sessions replay EVENTS_FILE [--at TIME] [--json]``: replay a chart log (JSON or YAML: a
  pump ``programme``, optionally the ``patient``'s sex and pregnancy status, the ``events``)
  and print the final state, the delivered dose (exact to 1e-9 mg), the prompts raised and
  the entries refused. Pure: no database.

The database commands act for a clinician, named with ``--user`` (or ``KETAPATH_USER``): the
audit log records who read the chart. Exit codes: 0 done; 1 no database; 2 invalid input
(the message names the field).
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ketapath.cli.output import EXIT_INVALID, emit_json, fail, read_text_file

if TYPE_CHECKING:
    from ketapath.domain.session_view import SessionView
    from ketapath.knowledge.sessions import SessionRulesFile
    from ketapath.services.permissions import Actor

sessions_app = typer.Typer(
    help="The infusion day: the worklist, a session's chart, replays of a chart log.",
    no_args_is_help=True,
)
USER_ENV = "KETAPATH_USER"


def register(app: typer.Typer) -> None:
    app.add_typer(sessions_app, name="sessions")


def _database() -> Any:
    from ketapath.config import get_settings
    from ketapath.store.db import Database

    get_settings.cache_clear()
    return Database(get_settings().database_url)


def _acting(db: Any, username: str | None, as_json: bool) -> Actor:
    from sqlalchemy import select

    from ketapath.services.permissions import Actor
    from ketapath.store.models import User

    name = (username or os.environ.get(USER_ENV, "")).strip()
    if not name:
        fail(
            f"--user: name the clinician the command acts for (or set {USER_ENV}); the audit "
            "log records who read the chart.",
            as_json=as_json,
            field="--user",
        )
    with db.read_only() as session:
        user = session.scalars(select(User).where(User.username == name)).first()
    if user is None or not user.active:
        fail(f"--user: no active user {name!r}.", as_json=as_json, field="--user")
    return Actor(user.id, user.username, user.role)


def _run(call: Any, as_json: bool) -> Any:
    """A service call on the clinic's database, its refusals as one line."""
    from ketapath.services.errors import ServiceError

    try:
        return call()
    except typer.Exit:
        raise
    except ServiceError as error:
        fail(error.message, code=EXIT_INVALID, as_json=as_json, field=error.field or "")
    except Exception as error:  # no database, or no schema: say so in one line
        fail(
            f"cannot read the sessions from the database ({type(error).__name__}); run "
            "`ketapath db upgrade` first",
            code=1,
            as_json=as_json,
            kind="database",
        )


def _parsed_date(text: str | None, as_json: bool) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"--date: {text!r} is not a date (YYYY-MM-DD)", as_json=as_json, field="--date")


@sessions_app.command("worklist")
def worklist(
    on: str | None = typer.Option(None, "--date", help="Clinic date, YYYY-MM-DD (default today)."),
    chair: str | None = typer.Option(None, "--chair", help="One chair only."),
    user: str | None = typer.Option(None, "--user", help=f"Acting clinician (or {USER_ENV})."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """The sessions of a clinic date, by chair, replayed now."""
    from ketapath.services import sessions

    day = _parsed_date(on, as_json)
    db = _database()
    actor = _run(lambda: _acting(db, user, as_json), as_json)
    listed = _run(lambda: sessions.worklist(db, actor, on=day, chair=chair), as_json)
    if as_json:
        emit_json([s.model_dump(mode="json") for s in listed])
        return
    if not listed:
        typer.echo("No sessions on that date.")
    for s in listed:
        rate = f"{s.running_rate_mg_per_h:g} mg/h" if s.running_rate_mg_per_h else "-"
        typer.echo(
            f"{s.chair:<12} #{s.id:<5} {s.patient_name:<24} {s.state:<13} {rate:<11} "
            f"{s.delivered_mg:.1f}/{s.ordered_mg or 0:g} mg  session {s.session_number} of "
            f"{s.sessions_in_course} ({s.protocol_id})"
        )
        for alert in s.alerts:
            typer.echo(f"{'':14}[{alert.severity}] {alert.message}  ({alert.id})")


@sessions_app.command("show")
def show(
    session_id: int = typer.Argument(..., min=1, max=2**31 - 1, help="The session's id."),
    user: str | None = typer.Option(None, "--user", help=f"Acting clinician (or {USER_ENV})."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """One session and its chart, replayed now."""
    from ketapath.services import sessions

    db = _database()
    actor = _run(lambda: _acting(db, user, as_json), as_json)
    detail = _run(lambda: sessions.get_session(db, actor, session_id), as_json)
    if as_json:
        emit_json(detail.model_dump(mode="json"))
        return
    typer.echo(
        f"Session {detail.id}: {detail.patient_name}, {detail.scheduled_on.isoformat()}, "
        f"{detail.chair}; session {detail.session_number} of {detail.sessions_in_course} of "
        f"{detail.protocol_name or detail.protocol_id} (order {detail.order_id}, "
        f"{detail.order_state})"
    )
    if detail.order_problem:
        typer.echo(f"  order: {detail.order_problem}")
    typer.echo(format_view(detail.chart))


@sessions_app.command("replay")
def replay_file(
    events_file: Path = typer.Argument(..., help="The chart log (JSON or YAML)."),
    at: str | None = typer.Option(None, "--at", help="Read the chart at this time (ISO 8601)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Replay a chart log against its pump programme: state, delivered dose, prompts.

    The file holds ``programme`` (as a check-in freezes it: concentration_mg_per_ml, steps
    with rate_ml_per_h, rate_mg_per_h, duration_min, volume_ml; total_mg,
    volume_to_be_infused_ml; bolus_mg ...), optionally ``patient`` (sex, pregnancy), and
    ``events``: each ``{entry: {kind, occurred_at, ...}, by_role, amends_seq, reason}``.
    """
    import dataclasses
    import json

    import yaml
    from pydantic import ValidationError

    from ketapath.domain.errors import DomainError
    from ketapath.domain.sessions import ProgrammeReplayRequest, replay_log
    from ketapath.services.validation import describe

    text = read_text_file(events_file, what="chart log")
    try:
        raw = json.loads(text) if events_file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        fail(f"{events_file}: not valid JSON/YAML ({error})", as_json=as_json, field="(file)")
    except RecursionError:
        fail(f"{events_file}: nested too deeply to be a chart log", as_json=as_json, field="(file)")
    if not isinstance(raw, dict):
        fail(
            f"{events_file}: a chart log is a mapping (programme, events)",
            as_json=as_json,
            field="(file)",
        )
    if at is not None:
        raw = {**raw, "at": at}
    try:
        request = ProgrammeReplayRequest.model_validate(raw)
        context = dataclasses.replace(request.context(), clinic_rules=_clinic_rules(as_json))
        view = replay_log(request, context)
    except ValidationError as error:
        problem = describe(error)
        fail(problem.message, as_json=as_json, field=problem.field or "")
    except DomainError as error:
        fail(error.message, as_json=as_json, field=error.field)
    if as_json:
        emit_json(view.model_dump(mode="json"))
        return
    typer.echo(format_view(view))


def format_view(view: SessionView) -> str:
    """A replayed chart as text: state, pump, dose, prompts, refusals, what is allowed."""
    lines = [f"State: {view.state} (at {_time(view.at)}); last entry {view.last_seq}"]
    if view.running_rate_mg_per_h is not None:
        lines.append(
            f"Pump: {view.running_rate_ml_per_h:g} mL/h = {view.running_rate_mg_per_h:g} mg/h "
            f"(step {view.running_step})"
        )
    dose = view.dose
    ordered = f" of {dose.ordered_mg:g} mg ordered" if dose.ordered_mg is not None else ""
    lines.append(
        f"Delivered: {dose.delivered_mg_exact} mg{ordered} (infusion {dose.infusion_mg:.6g} mg, "
        f"bolus {dose.bolus_mg:g} mg; {dose.running_minutes:.1f} min running, "
        f"{dose.paused_minutes:.1f} min paused)"
    )
    if view.next_observation_due is not None:
        lines.append(f"Next observations due: {_time(view.next_observation_due)}")
    for prompt in view.prompts:
        lines.append(f"  [{prompt.severity}] {prompt.message}  ({prompt.id}, {prompt.status})")
        for ack in prompt.acknowledgements:
            lines.append(
                f"      acknowledged by {ack.by} ({ack.role}) at {_time(ack.at)}: {ack.note}"
            )
        if prompt.status == "resolved" and prompt.resolution:
            lines.append(f"      resolved: {prompt.resolution}")
    padss = view.discharge.padss
    if padss is not None:
        total = "not scored yet" if padss.total is None else f"{padss.total} of {padss.maximum}"
        lines.append(f"{padss.name}: {total}")
    if view.state == "observation":
        lines.append("Discharge: " + ("ready" if view.discharge.ready else "not yet"))
        lines += [f"  - {b.message}" for b in view.discharge.blockers]
    for refusal in view.refusals:
        lines.append(f"Refused entry {refusal.seq} ({refusal.kind}): {refusal.message}")
    lines.append("Allowed now: " + ", ".join(view.allowed_actions))
    lines += [
        f"Held: {b.kind} ({b.reason})" + (" - a physician may" if b.physician_may else "")
        for b in view.blocked_actions
    ]
    return "\n".join(lines)


def _time(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _clinic_rules(as_json: bool) -> SessionRulesFile | None:
    """The session rules with the clinic's own vital-sign thresholds
    (``KETAPATH_VITAL_THRESHOLDS_FILE``), or None for the packaged ones; exit 2 naming a bad
    file."""
    from ketapath.config import get_settings
    from ketapath.knowledge.base import KnowledgeError
    from ketapath.knowledge.clinical import knowledge
    from ketapath.knowledge.sessions import load_clinic_thresholds, with_clinic_thresholds

    path = get_settings().vital_thresholds_file
    if not path:
        return None
    try:
        own = load_clinic_thresholds(Path(path))
    except KnowledgeError as error:
        fail(str(error), code=EXIT_INVALID, as_json=as_json, field="KETAPATH_VITAL_THRESHOLDS_FILE")
    return with_clinic_thresholds(knowledge().session_rules, own)


@sessions_app.command("thresholds")
def thresholds(
    file: Path | None = typer.Option(
        None, "--file", help="Check this thresholds file instead of the clinic's setting."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """The vital-sign alert thresholds the charts run (the clinic's own file, else the
    packaged clinic-policy defaults), each with its source; checks a file with --file."""
    from ketapath.config import get_settings
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.base import KnowledgeError
    from ketapath.knowledge.clinical import knowledge
    from ketapath.knowledge.sessions import load_clinic_thresholds, with_clinic_thresholds

    setting = get_settings().vital_thresholds_file
    path = file or (Path(setting) if setting else None)
    rules = knowledge().session_rules
    if path is not None:
        try:
            rules = with_clinic_thresholds(rules, load_clinic_thresholds(path))
        except KnowledgeError as error:
            where = "--file" if file else "KETAPATH_VITAL_THRESHOLDS_FILE"
            fail(str(error), code=EXIT_INVALID, as_json=as_json, field=where)
    origin = f"the clinic's file {path}" if path else "the packaged clinic-policy defaults"
    if as_json:
        emit_json(
            {
                "from": str(path) if path is not None else None,
                "vital_alerts": [
                    {
                        **a.model_dump(mode="json", exclude={"source"}),
                        "citation": citation_text(a.source),
                    }
                    for a in rules.vital_alerts
                ],
            }
        )
        return
    typer.echo(f"Vital-sign alert thresholds ({origin}):")
    for a in rules.vital_alerts:
        low = "" if a.low is None else f"below {a.low:g}"
        high = "" if a.high is None else f"above {a.high:g}"
        when = " or ".join(x for x in (low, high) if x)
        typer.echo(f"  {a.name} ({a.unit}): alerts {when}  [{citation_text(a.source)}]")
