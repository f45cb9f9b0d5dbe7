"""`ketapath diary remind` on both databases, against a local SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import typer
from click.testing import Result
from tests.integration.conftest import signed_order
from tests.integration.smtp_sink import Inbox, smtp_server
from typer.testing import CliRunner

from ketapath.cli import diary as diary_cli
from ketapath.config import Settings
from ketapath.services import diary
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import DiaryLink


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with smtp_server() as received:
        yield received


def run(database: Database, env: dict[str, str], *args: str) -> Result:
    app = typer.Typer()
    diary_cli.register(app)
    return CliRunner().invoke(
        app, ["diary", *args], env={"KETAPATH_DATABASE_URL": database.url, **env}
    )


def test_remind_e_mails_each_link_without_an_entry_today_once(
    database: Database, users: dict[str, Actor], inbox: Inbox
) -> None:
    mail = {
        "KETAPATH_SMTP_HOST": "127.0.0.1",
        "KETAPATH_SMTP_PORT": str(inbox.port),
        "KETAPATH_SMTP_FROM": "clinic@clinic.example",
        "KETAPATH_SMTP_STARTTLS": "false",
    }
    settings = Settings(
        secret_key="cli-diary-secret-key",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,
        smtp_from="clinic@clinic.example",
        smtp_starttls=False,
    )
    order_id = signed_order(database, users)
    diary.create_link(
        database, users["nurse"], order_id, send_to="patient@example.org", settings=settings
    )
    inbox.messages.clear()
    # the link's own e-mail went today: the first reminder is tomorrow's; make it due now
    with database.transaction() as session:
        for link in session.query(DiaryLink):
            link.last_sent_at = None
    first = run(database, mail, "remind", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"sent": 1, "skipped": 0, "problems": []}
    assert inbox.messages[0]["To"] == "patient@example.org"
    again = run(database, mail, "remind")
    assert again.exit_code == 0 and "0 reminder(s) sent" in again.output


def test_remind_without_mail_settings_says_so(database: Database) -> None:
    result = run(database, {"KETAPATH_SMTP_HOST": ""}, "remind")
    assert result.exit_code == 2 and "no mail settings" in result.output
