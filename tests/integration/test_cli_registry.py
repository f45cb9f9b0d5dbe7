"""`ketapath registry synth` and `ketapath registry refresh` on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ketapath.cli import app
from ketapath.store.db import Database
from ketapath.store.models import Order, Patient, RegistryCourse


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"KETAPATH_TIMEZONE": "UTC"})
    return result.exit_code, result.output


def test_synth_writes_a_registry_to_an_empty_database_and_summarises_it(
    database: Database,
) -> None:
    code, output = run(
        "registry",
        "synth",
        "--patients",
        "25",
        "--seed",
        "4",
        "--end-date",
        "2026-06-30",
        "--database",
        database.url,
        "--json",
    )
    assert code == 0, output
    result = json.loads(output.strip().splitlines()[-1])
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 25
        orders = session.scalar(select(func.count()).select_from(Order))
        summarised = session.scalar(select(func.count()).select_from(RegistryCourse))
    assert result["rows"]["patients"] == 25 and result["rows"]["orders"] == orders == summarised
    assert result["observations"] > 1000
    # a database that holds patients is refused, and nothing is added
    code, output = run("registry", "synth", "--patients", "5", "--database", database.url)
    assert code == 1 and "already holds patients" in output
    code, output = run(
        "registry", "synth", "--patients", "5", "--database", database.url, "--force", "--json"
    )
    assert code == 0, output
    code, output = run("registry", "refresh", "--database", database.url, "--json")
    assert code == 0 and json.loads(output)["patients"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patients", "0"], "--patients"),
        (["--patients", "2000000"], "--patients"),
        (["--centres", "0"], "--centres"),
        (["--end-date", "yesterday"], "--end-date"),
    ],
)
def test_synth_refuses_options_out_of_range(tmp_path: Path, args: list[str], message: str) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    code, output = run("registry", "synth", *args, "--database", url)
    assert code == 2 and message in output
    assert not (tmp_path / "x.sqlite3").exists()
