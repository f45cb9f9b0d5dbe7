"""`ketapath sessions replay`: a chart log replayed with no database."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from ketapath.cli import sessions as sessions_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "session-log.yaml"


def cli() -> typer.Typer:
    app = typer.Typer()
    sessions_cli.register(app)
    return app


def test_the_example_log_replays_to_a_stop_for_dissociation_with_its_exact_dose() -> None:
    result = CliRunner().invoke(cli(), ["sessions", "replay", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "State: stopped" in result.output
    assert "Delivered: 22.026666667 mg of 36.4 mg ordered" in result.output
    assert "Dissociation reported at 10:20: stop the infusion." in result.output
    assert "acknowledged by nurse (nurse)" in result.output
    assert "seed" not in result.output.lower()


def test_the_replay_prints_strict_json_with_prompts_and_refusals() -> None:
    result = CliRunner().invoke(cli(), ["sessions", "replay", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["dose"]["delivered_mg_exact"] == "22.026666667"
    assert {p["code"] for p in view["prompts"]} >= {
        "session:pause-for-side-effect",
        "session:call-physician",
        "session:stop-infusion",
    }
    assert view["refusals"] == []


def test_reading_the_log_later_shows_what_was_due(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli(), ["sessions", "replay", str(EXAMPLE), "--at", "2026-12-01T12:00:00+00:00", "--json"]
    )
    assert json.loads(result.output)["at"] == "2026-12-01T12:00:00Z"


def test_a_log_that_does_not_fit_the_schema_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps({"programme": {}, "events": []}))
    result = CliRunner().invoke(cli(), ["sessions", "replay", str(path)])
    assert result.exit_code == 2
    assert "programme" in result.output and "Traceback" not in result.output


def test_a_binary_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "log.yaml"
    path.write_bytes(b"\x89PNG\x00\xff" * 10)
    result = CliRunner().invoke(cli(), ["sessions", "replay", str(path)])
    assert result.exit_code == 2 and "not a text file" in result.output
