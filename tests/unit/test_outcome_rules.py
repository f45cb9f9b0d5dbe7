"""The outcome rules as knowledge data (outcome_rules.yaml): complete, cited, and refused in
words when broken."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ketapath.knowledge.base import KnowledgeError, cites_in, data_path
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.outcomes import SAFETY_CHECK_IDS, load_outcome_rules, outcome_rules


def _raw() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(data_path("outcome_rules.yaml").read_text("utf-8"))
    return document


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "outcome_rules.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_the_packaged_file_loads_with_the_issues_defaults() -> None:
    rules = outcome_rules()
    assert [t.offset_days for t in rules.follow_up.timepoints] == [7, 14, 28, 56, 84, 182]
    assert rules.follow_up.timepoints[-1].label == "6 months"
    assert rules.responder.percents == (30, 50)
    assert rules.relief.margin_nrs == 1 and rules.relief.onset_threshold_percent == 30
    assert rules.pain_auc.days == 35
    assert rules.pgic.responder_categories == (1, 2)
    assert rules.follow_up_instruments.repeated == ("nrs", "bpi-sf", "pseq")
    assert tuple(c.id for c in rules.safety.checks) == SAFETY_CHECK_IDS


def test_every_cite_resolves_and_has_a_locator() -> None:
    bib = bibliography()
    cites = cites_in(outcome_rules())
    assert len(cites) > 30
    assert all(c.ref in bib and c.at for c in cites)
    assert bib.get("ketapath-outcome-policy").kind == "local"


def test_published_numbers_cite_their_publications_and_local_ones_the_clinic() -> None:
    rules = outcome_rules()
    assert {c.ref for c in rules.responder.source.cite} >= {"dworkin-2008-immpact"}
    assert {c.ref for c in rules.pain_auc.days_source.cite} >= {"pickering-2020-ketamine-magnesium"}
    assert {c.ref for c in rules.pgic.source.cite} >= {"farrar-2001-pgic"}
    assert [c.ref for c in rules.relief.margin_source.cite] == ["ketapath-outcome-policy"]
    for check in rules.safety.checks:
        assert [c.ref for c in check.numbers_source.cite] == ["ketapath-outcome-policy"]
        assert any(c.ref == "cohen-2018-ketamine-consensus" for c in check.source.cite)


def _drop_margin_source(d: dict[str, Any]) -> None:
    del d["relief"]["margin_source"]


def _unknown_instrument(d: dict[str, Any]) -> None:
    d["follow_up_instruments"]["repeated"].append("no-such-scale")


def _unknown_reference(d: dict[str, Any]) -> None:
    d["pain_auc"]["days_source"]["cite"][0]["ref"] = "nobody-2099"


def _unordered_timepoints(d: dict[str, Any]) -> None:
    d["follow_up"]["timepoints"].reverse()


def _onset_not_a_threshold(d: dict[str, Any]) -> None:
    d["relief"]["onset_threshold_percent"] = 40


def _missing_check(d: dict[str, Any]) -> None:
    d["safety"]["checks"].pop()


def _negative_interval(d: dict[str, Any]) -> None:
    d["safety"]["checks"][0]["interval_days"] = -5


def _no_change_improved(d: dict[str, Any]) -> None:
    d["pgic"]["responder_categories"] = [1, 2, 4]


def _extra_field(d: dict[str, Any]) -> None:
    d["pain_auc"]["extrapolate"] = True


@pytest.mark.parametrize(
    ("breaks", "words"),
    [
        (_drop_margin_source, "margin_source"),
        (_unknown_instrument, "no-such-scale is not in instruments.yaml"),
        (_unknown_reference, "nobody-2099"),
        (_unordered_timepoints, "increasing order"),
        (_onset_not_a_threshold, "responder thresholds"),
        (_missing_check, "once each"),
        (_negative_interval, "interval_days"),
        (_no_change_improved, "no change"),
        (_extra_field, "extrapolate"),
    ],
)
def test_a_broken_file_is_refused_in_words(
    tmp_path: Path, breaks: Callable[[dict[str, Any]], None], words: str
) -> None:
    document = _raw()
    breaks(document)
    with pytest.raises(KnowledgeError) as error:
        load_outcome_rules(_write(tmp_path, document))
    assert "outcome_rules.yaml" in str(error.value) and words in str(error.value)


def test_a_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outcome_rules.yaml"
    path.write_text("kind: [unclosed", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="not valid YAML"):
        load_outcome_rules(path)


def test_the_safety_checks_due_are_the_safety_checks_recorded() -> None:
    """One id per check across the two files: when a check is due (outcome_rules.yaml) and
    what it records and when it is abnormal (safety_checks.yaml)."""
    from ketapath.knowledge.outcomes import outcome_rules
    from ketapath.knowledge.safety import safety_checks

    due = {check.id for check in outcome_rules().safety.checks}
    recorded = {check.id for check in safety_checks().entries}
    assert due == recorded
