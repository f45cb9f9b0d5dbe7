"""The infusion chart's rules as knowledge data (session_rules.yaml): complete, cited, honest."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from ketapath.knowledge.base import data_path
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.sessions import REQUIRED_EFFECTS, SessionRulesFile


def _raw() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(data_path("session_rules.yaml").read_text("utf-8"))
    return document


def test_the_side_effect_vocabulary_has_every_effect_the_chart_offers() -> None:
    rules = knowledge().session_rules
    assert {e.id for e in rules.entries} >= set(REQUIRED_EFFECTS)


def test_dissociative_and_amnestic_effects_stop_whatever_their_severity() -> None:
    rules = knowledge().session_rules
    for effect in ("dissociation", "amnesia"):
        entry = rules.effect(effect)
        assert entry.action == "stop" and entry.any_severity
        assert entry.source.cite[0].ref == "fpm-anzca-2016-ketamine"
        assert "section 5" in entry.source.cite[0].at


def test_other_effects_pause_for_an_hour_when_troublesome() -> None:
    rules = knowledge().session_rules
    pausing = [e for e in rules.entries if e.action == "pause"]
    assert {e.id for e in pausing} >= {"nausea-vomiting", "headache", "hallucination", "other"}
    assert not any(e.any_severity for e in pausing)
    assert rules.pause.minutes == 60
    assert rules.effect("other").needs_description


def test_vital_thresholds_are_cited_as_clinic_policy_not_as_evidence() -> None:
    for alert in knowledge().session_rules.vital_alerts:
        assert alert.source.cite[0].ref == "ketapath-clinic-policy", alert.id


def test_the_discharge_score_is_padss_out_of_10_with_9_to_go_home() -> None:
    padss = knowledge().session_rules.padss
    assert padss.maximum == 10
    assert padss.threshold == 9
    assert padss.vital_sign_item.two_points_within_percent == 20
    assert padss.vital_sign_item.one_point_within_percent == 40
    refs = {c.ref for c in padss.vital_sign_item.source.cite}
    assert "ketapath-session-rules" in refs  # the combining rule is ours, and says so


def test_the_dissociation_scale_has_no_cut_off_and_the_schema_refuses_one() -> None:
    scale = knowledge().session_rules.dissociation_scale
    assert scale.cut_off is None
    assert scale.items_of_full_scale == (1, 2, 6, 7, 15, 22)
    assert scale.total_maximum == 24
    raw = _raw()
    raw["dissociation_scale"]["cut_off"] = 8
    with pytest.raises(ValidationError):
        SessionRulesFile.model_validate(raw)


def test_rass_runs_from_minus_5_to_plus_4() -> None:
    scale = knowledge().session_rules.sedation_scale
    assert scale.label(0) == "Alert and calm"
    assert scale.label(-5) == "Unarousable"


def test_a_file_without_an_effect_of_the_vocabulary_is_refused() -> None:
    raw = _raw()
    raw["entries"] = [e for e in raw["entries"] if e["id"] != "amnesia"]
    with pytest.raises(ValidationError, match="amnesia"):
        SessionRulesFile.model_validate(raw)


def test_an_alert_with_low_above_high_is_refused() -> None:
    raw = _raw()
    raw["vital_alerts"][0]["low"] = 200
    with pytest.raises(ValidationError, match="low must be below high"):
        SessionRulesFile.model_validate(raw)


def test_every_chart_state_has_an_observation_interval() -> None:
    raw = _raw()
    del raw["observation_intervals"]["minutes"]["running"]
    with pytest.raises(ValidationError, match="running"):
        SessionRulesFile.model_validate(raw)
