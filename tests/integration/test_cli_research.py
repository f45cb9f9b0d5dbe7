"""`ketapath research export` on both databases: a zip of CSV or Parquet for a named
researcher or physician, audited; refused without one, for other roles, or with a bad format
or file name."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from click.testing import Result
from sqlalchemy import select
from tests.integration.research_clinic import TYPED, build_clinic
from typer.testing import CliRunner

from ketapath.cli import research as research_cli
from ketapath.interop import research as files
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry

SECRET = "cli-research-secret-key"


def run(database: Database, *args: str, user: str = "") -> Result:
    app = typer.Typer()
    research_cli.register(app)
    env = {"KETAPATH_DATABASE_URL": database.url, "KETAPATH_USER": user}
    env["KETAPATH_SECRET_KEY"] = SECRET
    return CliRunner().invoke(app, list(args), env=env)


def test_a_researcher_writes_the_parquet_export_and_it_is_audited(
    database: Database, tmp_path: Path
) -> None:
    clinic = build_clinic(database)
    out = tmp_path / "export.zip"
    result = run(
        database, "research", "export", "--format", "parquet", "--out", str(out),
        "--user", clinic.staff["researcher"].username,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "research export (parquet" in result.output and "patients 3" in result.output
    tables = files.read_archive(out.read_bytes())
    assert len(tables["patients"]) == 3 and len(tables["sessions"]) == 4
    text = out.read_bytes().decode("latin-1")
    assert "Quarrington" not in text and not [t for t in TYPED if t in text]
    with database.read_only() as session:
        (row,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "research.export")
        ).all()
    assert row.username == clinic.staff["researcher"].username
    assert row.detail["format"] == "parquet" and row.detail["tables"]["patients"] == 3


def test_csv_is_the_default_and_a_physician_may_export(database: Database, tmp_path: Path) -> None:
    clinic = build_clinic(database)
    out = tmp_path / "export.zip"
    physician = clinic.staff["physician"].username
    result = run(database, "research", "export", "--out", str(out), user=physician)
    assert result.exit_code == 0, result.output
    assert "patients.csv" in out.read_bytes().decode("latin-1")


def test_refusals_name_what_is_wrong_and_write_nothing(database: Database, tmp_path: Path) -> None:
    clinic = build_clinic(database)
    out = tmp_path / "export.zip"
    no_user = run(database, "research", "export", "--out", str(out))
    assert no_user.exit_code == 2 and "--user" in no_user.output
    nurse = clinic.staff["nurse"].username
    denied = run(database, "research", "export", "--out", str(out), user=nurse)
    assert denied.exit_code == 2 and "Not allowed" in denied.output
    researcher = clinic.staff["researcher"].username
    args = ("research", "export", "--out", str(out))
    bad = run(database, *args, "--format", "xlsx", user=researcher)
    assert bad.exit_code == 2 and "--format" in bad.output
    csv_name = str(tmp_path / "x.csv")
    wrong_name = run(database, "research", "export", "--out", csv_name, user=researcher)
    assert wrong_name.exit_code == 2 and ".zip" in wrong_name.output
    assert not out.exists()
    assert not list(tmp_path.glob("*.part"))  # no partial file left beside --out


def test_a_failed_export_leaves_neither_the_file_nor_a_part_of_it(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zip is written beside --out and renamed into place only once whole and audited:
    an export that fails on the way (here its audit) leaves an existing --out as it was."""
    from ketapath.services import audit

    clinic = build_clinic(database)
    out = tmp_path / "export.zip"
    out.write_bytes(b"last week's export")

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(audit, "record", broken)
    researcher = clinic.staff["researcher"].username
    result = run(database, "research", "export", "--out", str(out), user=researcher)
    assert result.exit_code == 1, result.output
    assert out.read_bytes() == b"last week's export"
    assert not list(tmp_path.glob("*.part"))
