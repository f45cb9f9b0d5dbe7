"""Every command answers bad input with one clear line and a non-zero exit, never a traceback.

Hypothesis feeds the commands malformed files (binary, empty, huge, deeply nested, wrong
types, folders, missing) and absurd numbers (0, negative, 1e308, nan, inf, 5e-324, text)
for every option that takes one. The commands run in process (typer's CliRunner), so that
hundreds of cases take seconds; ``test_cli_startup.py`` runs the real entry point.

What must hold for every case:
- no traceback, and no internal error (exit 70 would mean an exception no command expected);
- a refusal (exit 1-4) says why in exactly one ``error:`` line on stderr, and prints nothing
  on stdout; with ``--json`` the refusal is one strict JSON object with a ``message``;
- with ``--json``, whatever is printed is strict JSON (no NaN or Infinity).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import base_patient
from typer.main import get_command
from typer.testing import CliRunner

from ketapath.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _command_built_once() -> Iterator[None]:
    """typer builds the click command tree on every invoke (~18 ms, nine tenths of a case);
    the tree does not change between cases, so it is built once for this module."""
    command = get_command(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda _app: command)
        yield


ABSURD_NUMBERS = [
    "0",
    "-1",
    "-0.0",
    "1e308",
    "-1e308",
    "1e999",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "5e-324",
    "1e-300",
    "abc",
    "",
    " ",
    "1,5",
    "0x10",
    "99999999999999999999999",
]
numbers = st.sampled_from(ABSURD_NUMBERS) | st.floats(allow_nan=True).map(repr)
plausible = st.sampled_from(["72", "45", "168", "25", "10", "1"])
any_number = numbers | plausible


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def check_answer(args: list[str]) -> Any:
    """Run the command and check the rules above; return the result."""
    result = runner.invoke(app, args)
    shown = f"ketapath {' '.join(args)!r}\nexit {result.exit_code}\n{result.output}"
    assert result.exit_code != 70, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.output, shown
    as_json = "--json" in args
    if result.exit_code == 0:
        if as_json and result.stdout.strip():
            _strict_json(result.stdout)
        return result
    assert result.exit_code in (1, 2, 3, 4), shown
    if as_json:
        body = _strict_json(result.stderr)
        assert body["message"], shown
        assert "\n" not in body["message"], shown
        if result.exit_code != 4:  # needs_override prints the plan and asks for a reason
            assert result.stdout == "", shown
    else:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, shown
        assert len(errors[0]) > len("error: ") + 5, shown
        if result.exit_code != 4:
            assert result.stdout == "", shown
    return result


# -- malformed files --------------------------------------------------------------------


def _bad_files(folder: Path) -> dict[str, Path]:
    files = {
        "binary": b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 50,
        "empty": b"",
        "whitespace": b"   \n\t",
        "list": b"[1, 2, 3]",
        "string": b'"a patient"',
        "number": b"42",
        "null": b"null",
        "deep": b"[" * 100_000,
        "bigint": b'{"weight_kg": ' + b"9" * 5000 + b"}",
        "nan-weight": b'{"sex": "female", "age_years": 40, "weight_kg": NaN}',
        "inf-weight": b'{"sex": "female", "age_years": 40, "weight_kg": Infinity}',
        "tiny-weight": b'{"sex": "female", "age_years": 40, "weight_kg": 5e-324}',
        "huge-dose": json.dumps(
            base_patient(
                medications=[
                    {"name": "morphine", "dose": 1e308, "unit": "mg", "frequency": "twice daily"}
                ]
            )
        ).encode(),
        "bad-unit": json.dumps(
            base_patient(medications=[{"name": "morphine", "dose": 10, "unit": "furlongs/"}])
        ).encode(),
        "wrong-types": json.dumps(
            base_patient(diagnoses={"a": 1}, medications="morphine", weight_kg=[70])
        ).encode(),
        "huge": b'{"note": "' + b"x" * 1_100_000 + b'"}',
        "latin1": '{"name": "Zoë", "sex": "female"}'.encode("latin-1"),
        "yaml-bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b]\nweight_kg: *c\nsex: female\nage_years: 40\n",
    }
    paths = {}
    for name, content in files.items():
        suffix = ".yaml" if name == "yaml-bomb" else ".json"
        path = folder / f"{name}{suffix}"
        path.write_bytes(content)
        paths[name] = path
    paths["folder"] = folder
    paths["missing"] = folder / "missing.json"
    return paths


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _bad_files(tmp_path_factory.mktemp("bad-files"))


@pytest.mark.parametrize(
    "command",
    [
        ["screen", "{file}"],
        ["screen", "{file}", "--json"],
        ["plan", "asra-initial", "--patient", "{file}"],
        ["plan", "asra-initial", "--patient", "{file}", "--json"],
        ["opioids", "{file}"],
        ["opioids", "{file}", "--json"],
        ["simulate", "--model", "kamp", "--patient", "{file}", "--infusion", "0:60:10"],
        ["simulate", "--model", "kamp", "--patient", "{file}", "--protocol", "asra-initial"],
        ["simulate", "--model", "kamp", "--patient", "{file}", "--infusion", "0:60:1", "--json"],
        ["target", "--model", "kamp", "--patient", "{file}", "--target-ng-per-ml", "9", "--json"],
        ["score", "phq9", "--answers", "@{file}", "--json"],
        ["sessions", "replay", "{file}"],
        ["sessions", "replay", "{file}", "--json"],
    ],
)
def test_every_command_refuses_a_malformed_file_in_one_line(
    command: list[str], bad_files: dict[str, Path]
) -> None:
    for name, path in bad_files.items():
        args = [a.replace("{file}", str(path)) for a in command]
        result = check_answer(args)
        # A readable patient with an absurd number is refused by the commands that use that
        # number (screening uses no weight or dose); every other file by every command.
        uses = {"tiny-weight": ("plan", "simulate"), "huge-dose": ("opioids",)}
        if name not in uses or command[0] in uses[name]:
            assert result.exit_code == 2, f"{name}: {args}: {result.output}"


# -- absurd numbers ----------------------------------------------------------------------

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    model=st.sampled_from(["kamp", "domino", "otto-fanta", "nope", ""]),
    weight=any_number,
    age=any_number,
    height=any_number,
    sex=st.sampled_from(["female", "male", "x", "F"]),
    start=any_number,
    end=any_number,
    rate=any_number,
    bolus=any_number,
    grid=st.sampled_from(["times", "step", "none"]),
    grid_value=any_number,
    population=st.sampled_from([None, "0", "-1", "1000000000000", "abc"]),
    as_json=st.booleans(),
)
def test_simulate_never_crashes_on_absurd_numbers(
    model: str,
    weight: str,
    age: str,
    height: str,
    sex: str,
    start: str,
    end: str,
    rate: str,
    bolus: str,
    grid: str,
    grid_value: str,
    population: str | None,
    as_json: bool,
) -> None:
    args = ["simulate", "--model", model, "--weight-kg", weight, "--age", age]
    args += ["--height-cm", height, "--sex", sex, "--infusion", f"{start}:{end}:{rate}"]
    args += ["--bolus", f"{start}:{bolus}"]
    if grid == "times":
        args += ["--times", f"0,{grid_value}"]
    elif grid == "step":
        args += ["--step-min", grid_value, "--until-min", end]
    if population is not None:
        args += ["--population", population, "--seed", "1"]
    check_answer(args + (["--json"] if as_json else []))


@FUZZ
@given(
    weight=any_number,
    target=any_number,
    duration=any_number,
    interval=any_number,
    rate=any_number,
    bolus=any_number,
    concentration=any_number,
    setting=st.sampled_from([None, "clinic", "icu", "moon"]),
    as_json=st.booleans(),
)
def test_target_never_crashes_on_absurd_numbers(
    weight: str,
    target: str,
    duration: str,
    interval: str,
    rate: str,
    bolus: str,
    concentration: str,
    setting: str | None,
    as_json: bool,
) -> None:
    args = ["target", "--model", "domino", "--weight-kg", weight, "--target-ng-per-ml", target]
    args += ["--duration-min", duration, "--interval-min", interval]
    args += ["--max-rate-mg-per-h", rate, "--max-bolus-mg", bolus]
    args += ["--concentration-mg-per-ml", concentration]
    if setting is not None:
        args += ["--setting", setting]
    check_answer(args + (["--json"] if as_json else []))


@FUZZ
@given(
    protocols=st.lists(st.sampled_from(["asra-initial", "nope", "dose-ladder"]), max_size=2),
    regimen=st.tuples(any_number, any_number, any_number),
    weight=any_number,
    threshold=any_number,
    step=any_number,
    as_json=st.booleans(),
)
def test_compare_protocols_never_crashes_on_absurd_numbers(
    protocols: list[str],
    regimen: tuple[str, str, str],
    weight: str,
    threshold: str,
    step: str,
    as_json: bool,
) -> None:
    args = ["compare-protocols", "--model", "domino", "--weight-kg", weight]
    for p in protocols:
        args += ["--protocol", p]
    args += ["--regimen", "x=" + ":".join(regimen), "--threshold-ng-per-ml", threshold]
    args += ["--step-min", step]
    check_answer(args + (["--json"] if as_json else []))


@FUZZ
@given(
    protocol=st.sampled_from(["asra-initial", "dose-ladder", "crps-schwartzman-10day", "nope"]),
    weight=any_number,
    height=any_number,
    age=any_number,
    sex=st.sampled_from(["female", "m", "other"]),
    concentration=any_number,
    steps=st.lists(any_number, max_size=3).map(",".join),
    ceiling=any_number,
    setting=st.sampled_from(["clinic", "icu", "CLINIC", "moon"]),
    basis=st.sampled_from(["actual", "ideal", "adjusted", "heavy"]),
    as_json=st.booleans(),
)
def test_plan_never_crashes_on_absurd_numbers(
    protocol: str,
    weight: str,
    height: str,
    age: str,
    sex: str,
    concentration: str,
    steps: str,
    ceiling: str,
    setting: str,
    basis: str,
    as_json: bool,
) -> None:
    args = ["plan", protocol, "--weight-kg", weight, "--height-cm", height, "--age", age]
    args += ["--sex", sex, "--concentration-mg-per-ml", concentration, "--setting", setting]
    args += ["--weight-basis", basis]
    if protocol == "dose-ladder":
        args += ["--ladder-steps", steps, "--ladder-ceiling", ceiling]
    check_answer(args + (["--json"] if as_json else []))


@FUZZ
@given(
    opioid=st.sampled_from(["morphine", "fentanyl", "nope", ""]),
    route=st.sampled_from(["oral", "transdermal", "rectal"]),
    dose=any_number,
    unit=st.sampled_from(["mg", "mcg", "mcg/h", "kg", "furlongs", "mg/"]),
    step=any_number,
    every=st.sampled_from(["1", "7", "0", "-3", "99999999", "1e3", "abc"]),
    start=st.sampled_from(["2025-03-03", "9999-12-31", "0001-01-01", "yesterday", ""]),
    round_to=any_number,
    floor=any_number,
    of_current=st.booleans(),
    as_json=st.booleans(),
)
def test_opioid_taper_never_crashes_on_absurd_numbers(
    opioid: str,
    route: str,
    dose: str,
    unit: str,
    step: str,
    every: str,
    start: str,
    round_to: str,
    floor: str,
    of_current: bool,
    as_json: bool,
) -> None:
    args = ["opioid-taper", "--opioid", opioid, "--route", route, "--daily-dose", dose]
    args += ["--unit", unit, "--step-percent", step, "--every-days", every, "--start", start]
    args += ["--round-to", round_to, "--floor", floor]
    if of_current:
        args.append("--of-current")
    check_answer(args + (["--json"] if as_json else []))


@FUZZ
@given(
    convert_to=st.sampled_from(["morphine", "methadone", "nope"]),
    route=st.sampled_from(["oral", "iv", "moon"]),
    reduce=any_number,
    table=st.sampled_from([None, "cdc-2022", "nope"]),
    as_json=st.booleans(),
)
def test_opioids_conversion_never_crashes_on_absurd_numbers(
    convert_to: str,
    route: str,
    reduce: str,
    table: str | None,
    as_json: bool,
    write_patient: Any,
) -> None:
    path = write_patient(base_patient())
    args = ["opioids", str(path), "--convert-to", convert_to, "--route", route]
    args += ["--reduce-percent", reduce]
    if table is not None:
        args += ["--table", table]
    check_answer(args + (["--json"] if as_json else []))


answers = st.dictionaries(
    st.sampled_from(["q1", "q2", "q3", "q9", "nope", ""]),
    any_number | st.sampled_from(["yes", "no", "true", ""]),
    max_size=4,
)


@FUZZ
@given(
    instrument=st.sampled_from(["phq9", "nrs", "bpi-sf", "dn4", "nope"]),
    given_answers=answers,
    form=st.sampled_from(["pairs", "json"]),
    as_json=st.booleans(),
)
def test_score_never_crashes_on_absurd_answers(
    instrument: str, given_answers: dict[str, str], form: str, as_json: bool
) -> None:
    if form == "pairs":
        text = ",".join(f"{k}={v}" for k, v in given_answers.items())
    else:
        text = json.dumps(given_answers)
    args = ["score", instrument, "--answers", text]
    check_answer(args + (["--json"] if as_json else []))


def test_warnings_about_the_patient_file_go_into_the_json_not_beside_it(
    write_patient: Any,
) -> None:
    path = write_patient(base_patient(favourite_colour="blue"))
    args = ["simulate", "--model", "kamp", "--patient", str(path), "--infusion", "0:60:10"]
    result = check_answer([*args, "--json"])
    assert result.exit_code == 0 and result.stderr == ""
    assert any("favourite_colour" in w for w in _strict_json(result.stdout)["warnings"])
    refused = check_answer([*args, "--times", "-5", "--json"])
    assert any("favourite_colour" in w for w in _strict_json(refused.stderr)["warnings"])
    text = check_answer(args)
    assert "warning: " in text.stderr and "favourite_colour" in text.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "crps-schwartzman-10day", "--weight-kg", "68", "--setting", "icu", "--json"],
        ["plan", "asra-initial", "--weight-kg", "25"],
        [
            "opioid-taper",
            *("--opioid", "morphine", "--route", "oral", "--daily-dose", "60", "--unit", "mg"),
            *("--step-percent", "50", "--every-days", "7", "--json"),
        ],
    ],
)
def test_a_plan_that_needs_an_override_prints_it_and_says_so_in_one_line(
    args: list[str],
) -> None:
    result = check_answer(args)
    assert result.exit_code == 4
    assert result.stdout  # the plan, to be read before the override is given


@pytest.mark.parametrize(
    "args",
    [
        ["protocols", "show", "nope"],
        ["protocols", "show", "nope", "--json"],
        ["plan", "nope", "--weight-kg", "70"],
        ["simulate", "--model", "nope", "--weight-kg", "70", "--infusion", "0:60:10"],
        ["simulate", "--model", "kamp", "--weight-kg", "70", "--protocol", "nope"],
        ["target", "--model", "kamp", "--weight-kg", "70", "--target-ng-per-ml", "100"],
        ["score", "nope", "--answers", "q1=1"],
        ["opioids", "--table", "nope", "docs/examples/patient-crps.json"],
        ["simulate", "--weight-kg", "70", "--json"],
        ["nope"],
        ["screen", "--no-such-option", "x"],
        [
            "simulate",
            "--model",
            "kamp",
            "--weight-kg",
            "70",
            "--infusion",
            "0:60:10",
            "--json",
            "--population",
            "2",
        ],
    ],
)
def test_unknown_ids_and_missing_options_are_named_in_one_line(args: list[str]) -> None:
    assert check_answer(args).exit_code != 0
