"""A clinic's own vital-sign alert thresholds (KETAPATH_VITAL_THRESHOLDS_FILE): validated,
cited, replacing the packaged clinic-policy defaults vital by vital, run by the chart, checked
at server start and shown by `ketapath sessions thresholds`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tests.conftest import ChartLog, baseline_vitals
from typer.testing import CliRunner

from ketapath.cli import app
from ketapath.config import Settings
from ketapath.knowledge.base import KnowledgeError
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.sessions import load_clinic_thresholds, with_clinic_thresholds
from ketapath.services import sessions

OWN = """\
kind: vital_thresholds
version: 1
description: Our clinic alerts earlier on oxygen saturation.
vital_alerts:
  - id: spo2
    name: SpO2
    unit: "%"
    low: 94
    source:
      cite:
        - {ref: ketapath-clinic-policy, at: "our thresholds, 2026"}
"""


def write(tmp_path: Path, text: str, name: str = "thresholds.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_clinics_threshold_replaces_that_vital_only(tmp_path: Path) -> None:
    packaged = knowledge().session_rules
    rules = with_clinic_thresholds(packaged, load_clinic_thresholds(write(tmp_path, OWN)))
    spo2 = rules.alert("spo2")
    assert spo2 is not None and spo2.low == 94
    assert rules.alert("heart_rate") == packaged.alert("heart_rate")
    assert len(rules.vital_alerts) == len(packaged.vital_alerts)
    assert packaged.alert("spo2").low != 94  # type: ignore[union-attr]  # the package unchanged


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("low: 94", "low: 94\n    high: 90"), "low must be below high"),
        (("ref: ketapath-clinic-policy", "ref: nobody-2099"), "nobody-2099, not in"),
        (("id: spo2", "id: temperature"), "vital_alerts.0.id"),
        (("kind: vital_thresholds", "kind: drug_library"), "kind"),
        (("low: 94", "low: .nan"), "vital_alerts.0.low"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, change: tuple[str, str], words: str
) -> None:
    path = write(tmp_path, OWN.replace(*change))
    with pytest.raises(KnowledgeError) as caught:
        load_clinic_thresholds(path)
    assert str(path) in str(caught.value) and words in str(caught.value)


def test_the_chart_alerts_at_the_clinics_threshold(tmp_path: Path) -> None:
    own = with_clinic_thresholds(
        knowledge().session_rules, load_clinic_thresholds(write(tmp_path, OWN))
    )
    packaged = ChartLog()
    packaged.running()
    view = packaged.add("vitals", 20, **baseline_vitals(spo2=93))
    assert not [p for p in view.prompts if p.code == "session:vital-alert"]
    clinic = ChartLog()
    clinic.context = dataclasses.replace(clinic.context, clinic_rules=own)
    clinic.running()
    view = clinic.add("vitals", 20, **baseline_vitals(spo2=93))
    (alert,) = [p for p in view.prompts if p.code == "session:vital-alert"]
    assert "our thresholds, 2026" in alert.citation


def test_the_server_stops_at_start_on_a_bad_file_and_runs_the_clinics_rules(
    tmp_path: Path,
) -> None:
    bad = Settings(vital_thresholds_file=str(write(tmp_path, "kind: nonsense", "bad.yaml")))
    with pytest.raises(KnowledgeError, match=r"bad\.yaml"):
        sessions.configure_rules(bad)
    good = Settings(vital_thresholds_file=str(write(tmp_path, OWN)))
    try:
        sessions.configure_rules(good)
        assert sessions.session_rules().alert("spo2").low == 94  # type: ignore[union-attr]
    finally:
        sessions.configure_rules(Settings(vital_thresholds_file=""))
    assert sessions.session_rules() is knowledge().session_rules


def test_the_command_shows_the_thresholds_in_force_and_checks_a_file(tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["sessions", "thresholds"])
    assert shown.exit_code == 0 and "packaged clinic-policy defaults" in shown.output
    assert "(SpO2) (%): alerts below 92" in shown.output and "seed" not in shown.output
    checked = runner.invoke(app, ["sessions", "thresholds", "--file", str(write(tmp_path, OWN))])
    assert checked.exit_code == 0 and "SpO2 (%): alerts below 94" in checked.output
    bad = write(tmp_path, OWN.replace("low: 94", "low: 94\n    high: 90"), "bad.yaml")
    refused = runner.invoke(app, ["sessions", "thresholds", "--file", str(bad), "--json"])
    assert refused.exit_code == 2 and "low must be below high" in refused.output
    assert "Traceback" not in refused.output


def test_a_folder_or_a_missing_file_is_refused_in_words(tmp_path: Path) -> None:
    runner = CliRunner()
    for given in (tmp_path, tmp_path / "missing.yaml"):
        refused = runner.invoke(app, ["sessions", "thresholds", "--file", str(given)])
        assert refused.exit_code == 2, refused.output
        assert str(given) in refused.output and "internal error" not in refused.output
