"""`ketapath score`: reading answers, printing results, and failing clearly on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ketapath.cli import instruments as cli


@pytest.fixture
def app() -> typer.Typer:
    # the area registers itself on any Typer app; a second command keeps `score` a subcommand
    application = typer.Typer()
    cli.register(application)

    @application.command("noop")
    def _noop() -> None:
        """Placeholder."""

    return application


runner = CliRunner()


def run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["score", *args])
    return result.exit_code, result.stdout, result.stderr


def test_list_names_every_instrument(app: typer.Typer) -> None:
    code, out, _ = run(app, "--list")
    assert code == 0
    for instrument_id in ("nrs", "bpi-sf", "phq9", "gad7"):
        assert instrument_id in out


def test_list_as_json_gives_each_instrument_with_its_readable_citation(app: typer.Typer) -> None:
    code, out, _ = run(app, "--list", "--json")
    assert code == 0
    listed = {i["id"]: i for i in json.loads(out)}
    assert listed["phq9"]["citation"].startswith("Kroenke et al. 2001")
    assert "seed" not in out.lower()


def test_scoring_with_key_value_answers_prints_total_and_band(app: typer.Typer) -> None:
    code, out, _ = run(app, "phq9", "--answers", "q1=1,q2=2,q3=3,q4=0,q5=1,q6=2,q7=1,q8=0,q9=0")
    assert code == 0
    assert "Total: 10" in out and "moderate" in out
    assert "Kroenke" in out


def test_json_output_is_machine_readable(app: typer.Typer) -> None:
    code, out, _ = run(app, "gad7", "--answers", "q1=3,q2=3,q3=2,q4=2,q5=1,q6=1,q7=0", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["instrument_id"] == "gad7"
    assert data["total"] == 12
    assert data["band"] == "moderate"
    assert data["subscales"]["total"]["range"] == [0, 21]


def test_answers_can_be_a_json_object_string(app: typer.Typer) -> None:
    code, out, _ = run(app, "nrs", "--answers", '{"pain": 7}', "--json")
    assert code == 0
    assert json.loads(out)["band"] == "severe"


def test_answers_can_be_read_from_a_json_file(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"worst": 8, "least": 3, "average": 5, "now": 6}))
    code, out, _ = run(app, "bpi-sf", "--answers", f"@{path}", "--json")
    assert code == 0
    assert json.loads(out)["subscales"]["severity"]["value"] == (8 + 3 + 5 + 6) / 4


def test_an_empty_value_means_unanswered(app: typer.Typer) -> None:
    code, out, _ = run(app, "phq9", "-a", "q1=1,q2=1,q3=1,q4=1,q5=1,q6=1,q7=1,q8=,q9=0", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["prorated"] is True
    assert data["items_missing"] == ["q8"]


def test_items_shows_ids_and_ranges(app: typer.Typer) -> None:
    code, out, _ = run(app, "bpi-sf", "--items")
    assert code == 0
    assert "worst" in out and "[0-10]" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("phq9", "--answers", "q1=4"), "0 to 3"),
        (("phq9", "--answers", "q10=1"), "unknown item 'q10'"),
        (("phq-99", "--answers", "q1=1"), "unknown instrument"),
        (("phq9", "--answers", "q1"), "not item=answer"),
        (("phq9", "--answers", "q1=1,q1=2"), "given twice"),
        (("phq9", "--answers", "{bad json"), "not valid JSON"),
        (("phq9", "--answers", "[1, 2]"), "not item=answer"),
        (("phq9", "--answers", '{"q1": [1]}'), "must be a number"),
        (("phq9", "--answers", "@/nonexistent/answers.json"), "cannot read answers file"),
        (("phq9",), "--answers"),
        ((), "name an instrument"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(
    app: typer.Typer, args: tuple[str, ...], fragment: str
) -> None:
    code, out, err = run(app, *args)
    assert code == cli.EXIT_BAD_INPUT
    assert fragment in err
    assert "Traceback" not in out + err


def test_dn4_takes_yes_and_no_answers(app: typer.Typer) -> None:
    answers = (
        "burning=yes,painful_cold=no,electric_shocks=yes,tingling=yes,pins_and_needles=yes,"
        "numbness=no,itching=no,hypoaesthesia_touch=no,hypoaesthesia_pinprick=no,brushing=no"
    )
    code, out, _ = run(app, "dn4", "--answers", answers)
    assert code == 0
    assert "Total: 4" in out and "positive screen" in out


def test_dass21_prints_each_subscale_with_its_band(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "dass.json"
    path.write_text(json.dumps({f"q{n}": 1 for n in range(1, 22)}))
    code, out, _ = run(app, "dass21", "--answers", f"@{path}")
    assert code == 0
    assert "Depression: 14" in out and "Stress: 14 (range 0-42), normal" in out


def test_a_partly_answered_form_says_it_is_not_fully_scorable(app: typer.Typer) -> None:
    code, out, _ = run(app, "gad7", "--answers", "q1=1,q2=1")
    assert code == 0
    assert "not scored" in out and "Not fully scorable" in out


def test_a_json_number_too_long_to_read_is_a_format_error(app: typer.Typer) -> None:
    code, _, err = run(app, "nrs", "--answers", '{"pain": ' + "1" * 5000 + "}")
    assert code == cli.EXIT_BAD_INPUT
    assert "not usable JSON" in err


def test_a_scale_where_higher_is_better_says_so(app: typer.Typer) -> None:
    code, out, _ = run(app, "pseq", "--answers", ",".join(f"q{n}=4" for n in range(1, 11)))
    assert code == 0
    assert "Total: 40" in out and "higher is better" in out


def test_the_ketapath_command_line_has_the_score_command() -> None:
    from ketapath.cli import app as ketapath_app

    result = runner.invoke(ketapath_app, ["score", "nrs", "--answers", "pain=5"])
    assert result.exit_code == 0
    assert "moderate" in result.stdout
