"""The safety checks (safety_checks.yaml) and their rules (ketapath.domain.safety)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ketapath.domain import safety as rules
from ketapath.knowledge.base import KnowledgeError, data_path
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.safety import CHECK_IDS, load_safety_checks, safety_checks


def test_the_four_checks_load_and_every_rule_s_code_is_catalogued_with_the_same_source() -> None:
    checks = safety_checks()
    assert tuple(c.id for c in checks.entries) == CHECK_IDS
    for check in checks.entries:
        for rule in check.abnormal:
            entry = knowledge().finding_code(rule.code)
            assert entry.engine == "safety"
            assert entry.source is not None
            assert entry.source.cite == rule.source.cite, rule.code


def test_a_check_file_without_a_check_or_with_an_unknown_rule_field_is_refused(
    tmp_path: Path,
) -> None:
    raw = yaml.safe_load(data_path("safety_checks.yaml").read_text(encoding="utf-8"))
    short = {**raw, "entries": raw["entries"][:3]}
    path = tmp_path / "safety_checks.yaml"
    path.write_text(yaml.safe_dump(short), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="the checks must be"):
        load_safety_checks(path)
    raw["entries"][0]["abnormal"][0]["fields"] = ["bilirubin"]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="bilirubin"):
        load_safety_checks(path)


@pytest.mark.parametrize(
    ("check_id", "values", "abnormal"),
    [
        ("liver-enzymes", {"alt_u_per_l": 40, "alt_uln_u_per_l": 40}, False),
        ("liver-enzymes", {"ast_u_per_l": 41, "ast_uln_u_per_l": 40}, True),
        ("liver-enzymes", {"ggt_u_per_l": 300, "ggt_uln_u_per_l": 60}, False),
        ("cognition", {"moca_score": 26}, False),
        ("cognition", {"moca_score": 25}, True),
        ("cognition", {"observation": "slower to find words"}, False),
        (
            "misuse-screen",
            {
                "non_prescribed_ketamine": False,
                "craving": True,
                "asked_for_more": False,
                "other_substance_misuse": False,
            },
            True,
        ),
    ],
)
def test_abnormal_is_computed_by_the_rules(
    check_id: str, values: dict[str, object], abnormal: bool
) -> None:
    check = safety_checks().check(check_id)
    findings = rules.judge(check, rules.read_values(check, values))
    assert rules.is_abnormal(findings) is abnormal


def test_a_result_no_rule_can_judge_says_so_instead_of_calling_it_normal() -> None:
    check = safety_checks().check("cognition")
    values = {"other_instrument": "MMSE", "other_score": 27, "other_maximum": 30}
    (found,) = rules.judge(check, rules.read_values(check, values))
    assert found.code == "safety:not-judged" and found.severity == "info"


def test_a_yes_no_answer_must_be_a_boolean_not_a_number() -> None:
    check = safety_checks().check("urinary-symptoms")
    values = dict.fromkeys((f.id for f in check.fields if f.required), False)
    values["dysuria"] = 1  # type: ignore[assignment]
    with pytest.raises(rules.SafetyValueError) as caught:
        rules.read_values(check, values)
    assert caught.value.field == "dysuria"
