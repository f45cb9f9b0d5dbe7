"""`ketapath sessions worklist|show` on both databases, acting for a named clinician."""

from __future__ import annotations

import json

import typer
from click.testing import Result
from tests.integration.conftest import scheduled_session
from typer.testing import CliRunner

from ketapath.cli import sessions as sessions_cli
from ketapath.services.clock import clinic_clock
from ketapath.services.permissions import Actor
from ketapath.store.db import Database


def run(database: Database, *args: str, user: str = "") -> Result:
    app = typer.Typer()
    sessions_cli.register(app)
    env = {"KETAPATH_DATABASE_URL": database.url, "KETAPATH_USER": user}
    return CliRunner().invoke(app, list(args), env=env)


def test_the_worklist_lists_today_s_sessions_for_a_named_nurse(
    database: Database, users: dict[str, Actor]
) -> None:
    session_id = scheduled_session(database, users, clinic_clock(), chair="Bay 4")
    result = run(database, "sessions", "worklist", "--json", user="nurse")
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(result.output)
    assert listed["id"] == session_id and listed["chair"] == "Bay 4"
    text = run(database, "sessions", "worklist", "--user", "pharmacist")
    assert "Bay 4" in text.output and "scheduled" in text.output


def test_show_replays_one_session_and_refuses_without_a_clinician(
    database: Database, users: dict[str, Actor]
) -> None:
    session_id = scheduled_session(database, users, clinic_clock())
    result = run(database, "sessions", "show", str(session_id), user="physician")
    assert result.exit_code == 0, result.output
    assert "State: scheduled" in result.output and "check_in" in result.output
    assert run(database, "sessions", "show", str(session_id)).exit_code == 2
    denied = run(database, "sessions", "show", str(session_id), user="admin")
    assert denied.exit_code == 2 and "Not allowed" in denied.output
    missing = run(database, "sessions", "show", "99999", user="nurse")
    assert missing.exit_code == 2 and "no session" in missing.output
