from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from tests.conftest import base_patient
from typer.testing import CliRunner

from ketapath.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_screen_prints_a_decision_with_findings_and_sources_as_json(write_patient) -> None:
    path = write_patient(base_patient(comorbidities=["I20.0"]))
    result = invoke("screen", str(path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"] == "needs_override"
    assert data["purpose"] == ["pain_relief", "opioid_reduction"]
    assert data["indications"][0]["grade"] == "B"
    finding = next(f for f in data["findings"] if f["code"] == "contraindication:unstable-angina")
    assert {"code", "severity", "message", "rule", "citations", "citation"} <= finding.keys()
    assert finding["severity"] == "soft"
    assert finding["citation"].startswith("ASRA/AAPM/ASA consensus 2018, Table 5")


def test_screen_reads_yaml_and_prints_text(write_patient) -> None:
    result = invoke("screen", str(write_patient(base_patient(), ".yaml")))
    assert result.exit_code == 0
    assert "ELIGIBLE" in result.stdout and "Grade B" in result.stdout


def test_screen_names_the_invalid_field_and_exits_2(write_patient) -> None:
    result = invoke("screen", str(write_patient(base_patient(weight_kg="heavy"))), "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    error = json.loads(result.stderr)
    assert error["field"] == "weight_kg"
    assert "weight_kg" in error["message"]


def test_protocols_list_and_show() -> None:
    listed = invoke("protocols", "list", "--json")
    assert listed.exit_code == 0
    assert "dose-ladder" in {p["id"] for p in json.loads(listed.stdout)}
    shown = invoke("protocols", "show", "crps-schwartzman-10day")
    assert shown.exit_code == 0 and "25 mg/h" in shown.stdout
    missing = invoke("protocols", "show", "nope")
    assert missing.exit_code == 2 and "unknown protocol" in missing.stderr


def test_plan_prints_the_course_as_json() -> None:
    result = invoke(
        "plan",
        "crps-schwartzman-10day",
        "--weight-kg",
        "70",
        "--concentration-mg-per-ml",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    step = data["sessions"][0]["steps"][0]
    assert (step["rate_mg_per_h"], step["rate_ml_per_h"]) == (24.5, 12.25)
    assert data["course_total_mg"] == 980
    assert data["dosing_weight_kg"] == 70 and data["weight_basis"] == "actual"


def test_plan_from_a_patient_file(write_patient) -> None:
    path = write_patient(base_patient(weight_kg=80))
    data = json.loads(invoke("plan", "sci-amr-7day", "--patient", str(path), "--json").stdout)
    assert data["actual_weight_kg"] == 80
    assert data["sessions"][0]["steps"][0]["rate_mg_per_h"] == 16


def test_plan_over_a_hard_limit_is_refused_with_nothing_produced() -> None:
    result = invoke(
        "plan",
        "dose-ladder",
        "--weight-kg",
        "70",
        "--ladder-steps",
        "3",
        "--ladder-ceiling",
        "3",
        "--json",
    )
    assert result.exit_code == 3
    assert result.stdout == ""
    error = json.loads(result.stderr)
    assert error["error"] == "hard_limit"
    assert any(f["measure"]["limit"] == 2 and "Table 6" in f["citation"] for f in error["findings"])


def test_plan_over_a_soft_limit_exits_4_until_overridden() -> None:
    refused = invoke("plan", "mixed-kang-3session", "--weight-kg", "70", "--json")
    assert refused.exit_code == 4
    assert json.loads(refused.stdout)["status"] == "needs_override"
    assert "--override-by" in refused.stderr
    accepted = invoke(
        "plan",
        "mixed-kang-3session",
        "--weight-kg",
        "70",
        "--override-by",
        "Dr Smith",
        "--reason",
        "tolerated 40 mg/h in 2025",
        "--json",
    )
    assert accepted.exit_code == 0
    data = json.loads(accepted.stdout)
    assert data["override"]["physician"] == "Dr Smith"
    assert data["override"]["reason"] == "tolerated 40 mg/h in 2025"
    assert data["status"] == "ready"


def test_plan_refuses_a_strength_the_library_does_not_stock_with_exit_2_and_the_list() -> None:
    # issue 8: this printed "status: ready" at 26,666 mL/h
    text = invoke("plan", "asra-initial", "--weight-kg", "70", "--concentration-mg-per-ml", "0.001")
    assert text.exit_code == 2 and text.stdout == ""
    assert "not a strength the drug library stocks" in text.stderr
    assert "1, 2, 10 mg/mL" in text.stderr
    as_json = invoke(
        "plan", "asra-initial", "--weight-kg", "70", "--concentration-mg-per-ml", "0.001", "--json"
    )
    assert as_json.exit_code == 2
    assert json.loads(as_json.stderr)["field"] == "concentration_mg_per_ml"


def test_plan_text_shows_the_pump_the_library_and_each_steps_volume_to_be_infused() -> None:
    result = invoke("plan", "asra-initial", "--weight-kg", "70")
    assert result.exit_code == 0, result.output
    assert "pump Volumetric infusion pump (IV line)" in result.stdout
    assert "drug library ketapath default drug library, version 0" in result.stdout
    assert "VTBI 80 mL" in result.stdout and "volume to be infused 80 mL" in result.stdout
    data = json.loads(invoke("plan", "asra-initial", "--weight-kg", "70", "--json").stdout)
    assert data["sessions"][0]["steps"][0]["volume_ml"] == pytest.approx(80)
    assert data["library"]["version"] == 0 and len(data["library"]["digest"]) == 64
    assert data["pump_id"] == "volumetric-iv"


def test_plan_against_a_library_file(tmp_path) -> None:
    from ketapath.knowledge.library import default_library, library_yaml

    text = library_yaml(default_library()).replace("version: 0", "version: 7", 1)
    path = tmp_path / "library.yaml"
    path.write_text(text)
    data = json.loads(
        invoke("plan", "asra-initial", "--weight-kg", "70", "--library", str(path), "--json").stdout
    )
    assert data["library"]["version"] == 7
    path.write_text("kind: clinic_drug_library\nversion: 1\n")
    broken = invoke("plan", "asra-initial", "--weight-kg", "70", "--library", str(path))
    assert broken.exit_code == 2 and "name" in broken.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "asra-initial"],
        ["plan", "asra-initial", "--weight-kg", "70", "--setting", "moon"],
        ["plan", "asra-initial", "--weight-kg", "-70"],
        ["plan", "asra-initial", "--weight-kg", "70", "--weight-basis", "ideal"],
        ["plan", "nope", "--weight-kg", "70"],
        ["plan", "dose-ladder", "--weight-kg", "70", "--ladder-steps", "a,b"],
    ],
)
def test_plan_input_errors_exit_2_with_a_message(args) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error:")


def test_demo_walks_the_case_through_screening_and_planning() -> None:
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    assert "NEEDS_OVERRIDE" in result.stdout
    assert "carbamazepine" in result.stdout
    assert "80 mg" in result.stdout and "refused" in result.stdout


def test_knowledge_check_reports_every_file() -> None:
    result = invoke("knowledge", "check")
    assert result.exit_code == 0
    assert "protocols: version" in result.stdout
    assert "instruments: 9 instruments" in result.stdout
    assert "pk_models:" in result.stdout
    assert "pk_input_bounds:" in result.stdout
    assert "ledger_rules: version" in result.stdout and "3 reports" in result.stdout
    assert "outcome_rules: version" in result.stdout and "4 safety checks" in result.stdout
    assert "evidence: version 1, 27 studies, 6 recommendations" in result.stdout
    assert "safe_harbor: version" in result.stdout and "18 identifiers" in result.stdout
    assert "registry_rules: version" in result.stdout and "2 regression covariates" in result.stdout


def test_the_installed_console_script_runs() -> None:
    exe = shutil.which("ketapath") or str(
        __import__("pathlib").Path(sys.executable).parent / "ketapath"
    )
    done = subprocess.run(
        [exe, "plan", "asra-initial", "--weight-kg", "70", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["protocol_id"] == "asra-initial"


def test_plan_accepts_sex_as_m_or_f_for_ideal_weight() -> None:
    result = invoke(
        "plan",
        "crps-schwartzman-10day",
        "--weight-kg",
        "120",
        "--height-cm",
        "180",
        "--sex",
        "M",
        "--weight-basis",
        "ideal",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert abs(json.loads(result.stdout)["dosing_weight_kg"] - 74.99) < 0.01
