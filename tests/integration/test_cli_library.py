"""`ketapath library ...` on both databases: show, export, check, load (approved by a
pharmacist or an administrator), history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from ketapath.cli import library as library_cli
from ketapath.knowledge.library import default_library, library_yaml
from ketapath.services.permissions import Actor
from ketapath.store.db import Database


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    library_cli.register(app)
    return app


def run(cli: typer.Typer, url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"KETAPATH_DATABASE_URL": url})


def library_file(tmp_path: Path, version: int) -> Path:
    path = tmp_path / f"library-{version}.yaml"
    text = library_yaml(default_library()).replace("version: 0", f"version: {version}", 1)
    path.write_text(text.replace("name: ketapath default drug library", "name: Our clinic"))
    return path


def test_show_default_lists_pumps_limits_and_what_each_follows(
    cli: typer.Typer, database: Database
) -> None:
    result = run(cli, database.url, "library", "show", "--default")
    assert result.exit_code == 0, result.output
    assert "Volumetric infusion pump (IV line)" in result.output
    assert "rate 1 / 2 mg/kg/h" in result.output and "follows: The consensus" in result.output
    assert "midazolam (iv): dose 5 / 7.5 mg" in result.output
    assert "seed" not in result.output.lower()


def test_the_outcome_table_shows_every_protocol_in_its_own_setting(
    cli: typer.Typer, database: Database
) -> None:
    result = run(cli, database.url, "library", "show", "--default", "--markdown")
    assert result.exit_code == 0, result.output
    assert "| `asra-initial` | clinic | ready | ready | ready | ready | ready | ready |" in (
        result.output
    )
    assert "REFUSED" not in result.output


def test_check_validates_a_file_without_storing_it(
    cli: typer.Typer, database: Database, tmp_path: Path
) -> None:
    result = run(cli, database.url, "library", "check", str(library_file(tmp_path, 1)), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["version"] == 1 and data["outcomes"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(library_file(tmp_path, 1).read_text().replace("hard: 0.35", "hard: -1", 1))
    refused = run(cli, database.url, "library", "check", str(broken))
    assert refused.exit_code == 2 and "bolus_mg_per_kg.hard" in refused.output
    shown = run(cli, database.url, "library", "show")
    assert shown.exit_code == 0 and "version 0" in shown.output


def test_load_needs_a_pharmacist_or_admin_and_then_becomes_the_active_library(
    cli: typer.Typer, database: Database, users: dict[str, Actor], tmp_path: Path
) -> None:
    path = str(library_file(tmp_path, 1))
    base = ["library", "load", path, "--reason", "our pumps"]
    nurse = run(cli, database.url, *base, "--approved-by", "nurse")
    assert nurse.exit_code == 2 and "library.manage" in nurse.output
    nobody = run(cli, database.url, *base, "--approved-by", "nobody")
    assert nobody.exit_code == 2 and "no active user" in nobody.output
    loaded = run(cli, database.url, *base, "--approved-by", "pharmacist")
    assert loaded.exit_code == 0, loaded.output
    assert "version 1 approved by pharmacist" in loaded.output
    again = run(cli, database.url, *base, "--approved-by", "pharmacist")
    assert again.exit_code == 2 and "at least 2" in again.output
    shown = run(cli, database.url, "library", "show")
    assert "'Our clinic', version 1 (active; approved by pharmacist)" in shown.output
    history = run(cli, database.url, "library", "history")
    assert (
        "version 1: Our clinic  (active)" in history.output and "why: our pumps" in history.output
    )
    exported = run(cli, database.url, "library", "export")
    assert (
        exported.output.startswith("kind: clinic_drug_library") and "version: 1" in exported.output
    )
