"""The registry's analysis rules as knowledge data (registry_rules.yaml): complete, cited, and
refused in words when malformed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ketapath.knowledge.base import KnowledgeError, cites_in, data_path
from ketapath.knowledge.registry import load_registry_rules, registry_rules


def _document() -> dict[str, Any]:
    text = data_path("registry_rules.yaml").read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "registry_rules.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_the_packaged_rules_load_and_cite_their_methods() -> None:
    rules = registry_rules()
    assert rules.kind == "registry_rules" and rules.version >= 1
    refs = {c.ref for c in cites_in(rules)}
    assert {
        "kaplan-1958-product-limit",
        "wilson-1927-interval",
        "cox-1972-regression",
        "peduzzi-1995-cox-epv",
        "peduzzi-1996-logistic-epv",
        "lifelines-software",
        "ketapath-registry-policy",
    } <= refs


def test_the_regression_needs_ten_events_per_covariate_as_peduzzi_found() -> None:
    regression = registry_rules().regression
    assert regression.min_events_per_variable == 10
    assert "peduzzi-1995-cox-epv" in {c.ref for c in regression.source.cite}
    assert regression.covariates == ("dose_mg_per_kg", "infusion_hours")


def test_the_cumulative_bands_meet_the_safety_check_doses_of_the_outcome_rules() -> None:
    from ketapath.knowledge.outcomes import outcome_rules

    triggers = {c.above_mg_per_kg for c in outcome_rules().safety.checks if c.above_mg_per_kg}
    assert triggers == {10, 20}
    assert triggers <= set(registry_rules().bands.cumulative_dose_mg_per_kg.edges)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["bands"]["dose_mg_per_kg"].update(edges=[5, 2]), "increasing"),
        (lambda d: d.update(confidence_level=1.5), "confidence_level"),
        (lambda d: d["regression"].update(covariates=["weight_kg"]), "covariates"),
        (
            lambda d: d["responder"]["source"]["cite"].append({"ref": "no-such-work-1999"}),
            "no-such-work-1999",
        ),
    ],
)
def test_a_malformed_file_is_refused_naming_what_is_wrong(
    tmp_path: Path, change: Any, message: str
) -> None:
    document = _document()
    change(document)
    with pytest.raises(KnowledgeError, match=message):
        load_registry_rules(_write(tmp_path, document))
