"""`ketapath exposure refresh` on both databases: it stores the summaries a read would, and
says what it did."""

from __future__ import annotations

import json

import typer
from tests.integration.conftest import clinic_noon
from tests.integration.test_services_exposure_summary import Nurse, _course, _rows
from typer.testing import CliRunner

from ketapath.cli import exposure as exposure_cli
from ketapath.services.permissions import Actor
from ketapath.store.db import Database


def run(database: Database, *args: str) -> object:
    app = typer.Typer()
    exposure_cli.register(app)
    return CliRunner().invoke(app, ["exposure", *args], env={"KETAPATH_DATABASE_URL": database.url})


def test_refresh_stores_every_stale_summary_and_reports_it(
    database: Database, users: dict[str, Actor]
) -> None:
    yesterday = clinic_noon(-1)  # charted yesterday: the command's clock is the real one
    order_id, (session_id, *_) = _course(database, users, yesterday)
    Nurse(database, users["nurse"], session_id, yesterday).given()
    result = run(database, "refresh", "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    report = json.loads(result.output)  # type: ignore[attr-defined]
    assert (report["sessions"], report["courses"], report["stored"]) == (1, 1, 2)
    assert len(_rows(database, f"session:{session_id}")) == 1
    assert len(_rows(database, f"course:{order_id}")) == 1
    words = run(database, "refresh")
    assert words.exit_code == 0  # type: ignore[attr-defined]
    assert "0 summary(ies) stored, 2 unchanged" in words.output  # type: ignore[attr-defined]


def test_refresh_of_a_database_without_the_schema_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = Database(f"sqlite:///{tmp_path / 'none.sqlite3'}")
    result = run(empty, "refresh")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert "ketapath db upgrade" in result.output  # type: ignore[attr-defined]
