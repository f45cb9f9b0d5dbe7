"""The pk commands: simulate, compare-protocols, target, pk-models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ketapath.cli import pk as pk_cli

PATIENT_ARGS = ["--weight-kg", "70", "--age", "40", "--sex", "female", "--height-cm", "165"]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    pk_cli.register(app)
    return app


def _run(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_simulate_prints_json_with_the_named_series(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "simulate",
        "--model",
        "otto-fanta",
        *PATIENT_ARGS,
        "--infusion",
        "0:240:24.5",
        "--bolus",
        "0:10",
        "--times",
        "0,60,240,300",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["times_min"] == [0, 60, 240, 300]
    for key in ("plasma_mg_per_l", "effect_site_mg_per_l", "norketamine_mg_per_l", "analgesia"):
        assert len(data[key]) == 4
    assert data["plasma_mg_per_l"][1] > 0


def test_simulate_without_a_metabolite_model_leaves_norketamine_out(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "simulate",
        "--model",
        "domino",
        *PATIENT_ARGS,
        "--infusion",
        "0:60:20",
        "--step-min",
        "30",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert "norketamine_mg_per_l" not in data
    assert data["times_min"][:3] == [0, 30, 60]


def test_simulate_prints_a_table_by_default(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "simulate",
        "--model",
        "kamp",
        *PATIENT_ARGS,
        "--infusion",
        "0:60:20",
        "--times",
        "30,60",
    )
    assert code == 0, out
    assert "Cmax" in out and "plasma" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "marsh", "--infusion", "0:60:10"], "unknown PK model"),
        (["--model", "domino", "--infusion", "0:60"], "START_MIN:END_MIN:RATE_MG_PER_H"),
        (["--model", "domino", "--infusion", "0:60:10", "--times", "-5,10"], "negative"),
        (["--model", "domino", "--infusion", "60:0:10"], "end_min"),
        (["--model", "domino"], "--infusion"),
    ],
)
def test_simulate_refuses_bad_input_with_a_clear_message(
    app: typer.Typer, args: list[str], message: str
) -> None:
    code, out = _run(app, "simulate", *args, *PATIENT_ARGS)
    assert code == 2
    assert message in out


def test_simulate_reads_a_patient_file(app: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "patient.yaml"
    path.write_text("weight_kg: 82\nage_years: 51\nsex: male\nheight_cm: 180\n")  # minimal
    code, out = _run(
        app,
        "simulate",
        "--model",
        "hijazi",
        "--patient",
        str(path),
        "--infusion",
        "0:60:20",
        "--times",
        "60",
        "--json",
    )
    assert code == 0, out
    assert json.loads(out)["plasma_mg_per_l"][0] > 0


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_simulate_saves_a_plot(app: typer.Typer, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"plot{suffix}"
    code, out = _run(
        app,
        "simulate",
        "--model",
        "otto-fanta",
        *PATIENT_ARGS,
        "--infusion",
        "0:240:20",
        "--step-min",
        "10",
        "--plot",
        str(path),
    )
    assert code == 0, out
    assert path.stat().st_size > 1000


def test_compare_protocols_shows_each_regimen_side_by_side(
    app: typer.Typer, tmp_path: Path
) -> None:
    plot = tmp_path / "compare.png"
    code, out = _run(
        app,
        "compare-protocols",
        "--model",
        "domino",
        *PATIENT_ARGS,
        "--regimen",
        "short=0:120:40",
        "--regimen",
        "long=0:480:10+@0:1",
        "--threshold-ng-per-ml",
        "100",
        "--plot",
        str(plot),
        "--json",
    )
    assert code == 0, out
    rows = json.loads(out)["protocols"]
    assert [r["label"] for r in rows] == ["short", "long"]
    assert rows[0]["cmax_ng_per_ml"] > rows[1]["cmax_ng_per_ml"]
    assert plot.exists()


def test_target_prints_a_scheme_within_the_limits(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "target",
        "--model",
        "domino",
        *PATIENT_ARGS,
        "--target-ng-per-ml",
        "100",
        "--max-rate-mg-per-h",
        "60",
        "--max-bolus-mg",
        "10",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert all(s["rate_mg_per_h"] <= 60 for s in data["steps"])
    # rounded down to the pump's 0.01 mL/h at the default 1 mg/mL bag (pump.yaml)
    assert data["concentration_mg_per_ml"] == 1
    for step in data["steps"]:
        assert step["rate_ml_per_h"] == pytest.approx(step["rate_mg_per_h"] / 1)
        assert abs(step["rate_ml_per_h"] * 100 - round(step["rate_ml_per_h"] * 100)) < 1e-6


def test_target_rounds_to_the_pump_at_the_given_concentration(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "target",
        "--model",
        "domino",
        *PATIENT_ARGS,
        "--target-ng-per-ml",
        "100",
        "--max-rate-mg-per-h",
        "60",
        "--concentration-mg-per-ml",
        "10",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    for step in data["steps"]:
        # 0.01 mL/h at 10 mg/mL is 0.1 mg/h
        assert abs(step["rate_mg_per_h"] * 10 - round(step["rate_mg_per_h"] * 10)) < 1e-6
        assert step["rate_ml_per_h"] == pytest.approx(step["rate_mg_per_h"] / 10)
    code, out = _run(
        app,
        "target",
        "--model",
        "domino",
        *PATIENT_ARGS,
        "--target-ng-per-ml",
        "100",
        "--max-rate-mg-per-h",
        "60",
        "--concentration-mg-per-ml",
        "5",
    )
    assert code != 0 and "not a strength the drug library stocks" in out


def test_pk_models_lists_every_model_with_its_verification(app: typer.Typer) -> None:
    code, out = _run(app, "pk-models", "--json")
    assert code == 0
    ids = {row["id"] for row in json.loads(out)}
    assert {"domino", "clements", "hijazi", "kamp", "otto-fanta"} <= ids


def test_simulate_with_a_protocol_uses_the_clinical_planner(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "simulate",
        "--model",
        "domino",
        *PATIENT_ARGS,
        "--protocol",
        "crps-schwartzman-10day",
        "--step-min",
        "60",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["times_min"][-1] >= 9 * 1440
    assert max(data["plasma_mg_per_l"]) > 0


def test_compare_protocols_plans_each_protocol_for_the_patient(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "compare-protocols",
        "--model",
        "kamp",
        *PATIENT_ARGS,
        "--protocol",
        "crps-schwartzman-10day",
        "--protocol",
        "asra-initial",
        "--step-min",
        "5",
    )
    assert code == 0, out
    assert "crps-schwartzman-10day" in out and "asra-initial" in out


def test_an_unknown_protocol_is_a_clear_error(app: typer.Typer) -> None:
    code, out = _run(
        app, "simulate", "--model", "domino", *PATIENT_ARGS, "--protocol", "no-such-protocol"
    )
    assert code == 2
    assert "no-such-protocol" in out


def test_simulate_reads_the_example_patient_file(app: typer.Typer) -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "patient-crps.json"
    code, out = _run(
        app,
        "simulate",
        "--model",
        "kamp",
        "--patient",
        str(example),
        "--infusion",
        "0:60:20",
        "--times",
        "60",
        "--json",
    )
    assert code == 0, out
    assert json.loads(out)["plasma_mg_per_l"][0] > 0


def test_target_takes_its_limits_from_the_drug_library_setting(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "target",
        "--model",
        "kamp",
        *PATIENT_ARGS,
        "--target-ng-per-ml",
        "150",
        "--setting",
        "clinic",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    from ketapath.knowledge.library import default_library

    clinic = default_library().setting("clinic")
    soft_rate = clinic.rate_mg_per_kg_per_h.soft
    soft_bolus = clinic.bolus_mg_per_kg.soft
    assert soft_rate is not None and soft_bolus is not None
    assert all(s["rate_mg_per_h"] <= soft_rate * 70 + 1e-9 for s in data["steps"])
    assert data["bolus_mg"] <= soft_bolus * 70 + 1e-9


def test_target_refuses_a_rate_above_the_hard_limit(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "target",
        "--model",
        "kamp",
        *PATIENT_ARGS,
        "--target-ng-per-ml",
        "150",
        "--setting",
        "clinic",
        "--max-rate-mg-per-h",
        "500",
    )
    assert code == 2
    assert "hard limit" in out


def test_simulate_adds_population_centiles_for_a_model_with_variability(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "simulate",
        "--model",
        "otto-fanta",
        *PATIENT_ARGS,
        "--infusion",
        "0:240:24.5",
        "--step-min",
        "30",
        "--population",
        "200",
        "--seed",
        "3",
        "--json",
    )
    assert code == 0, out
    centiles = json.loads(out)["population"]["centiles"]
    low, mid, high = (centiles["plasma_mg_per_l"][q] for q in ("5", "50", "95"))
    assert all(a <= b <= c for a, b, c in zip(low, mid, high, strict=True))
    assert "norketamine_mg_per_l" in centiles


def test_simulate_refuses_a_population_for_a_model_without_variability(app: typer.Typer) -> None:
    code, out = _run(
        app,
        "simulate",
        "--model",
        "domino",
        *PATIENT_ARGS,
        "--infusion",
        "0:240:24.5",
        "--population",
        "50",
    )
    assert code == 2
    assert "between-subject variability" in out
