"""The controlled-drug ledger's rules as knowledge data (ledger_rules.yaml): complete, cited,
and refused in words when broken."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from ketapath.knowledge.base import KnowledgeError, cites_in, data_path
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.ledger import REPORT_IDS, ledger_rules, load_ledger_rules


def _raw() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(data_path("ledger_rules.yaml").read_text("utf-8"))
    return document


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "ledger_rules.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_the_packaged_file_loads_for_ketamine() -> None:
    rules = ledger_rules()
    assert rules.kind == "ledger_rules" and rules.version >= 1
    assert rules.drug == "ketamine"


def test_every_cite_resolves_to_a_bibliography_entry_with_a_locator() -> None:
    bib = bibliography()
    cites = cites_in(ledger_rules())
    assert len(cites) > 30
    assert sorted({c.ref for c in cites if c.ref not in bib}) == []
    assert all(c.at for c in cites)


def test_the_bibliography_holds_the_regulations_the_ledger_cites() -> None:
    bib = bibliography()
    for ref in (
        "cfr-21-1304-11",
        "cfr-21-1304-22",
        "cfr-21-1304-04",
        "cfr-21-1308-13",
        "cfr-21-1301-76",
        "uk-misuse-of-drugs-regulations-2001",
        "uk-si-2015-891",
    ):
        assert bib.get(ref).kind == "regulation", ref
        assert bib.get(ref).url.startswith("https://www."), ref
    assert bib.get("nice-ng46-2016").kind == "guideline"
    assert bib.get("ketapath-ledger-policy").kind == "local"


def test_ketamine_is_schedule_iii_in_the_us_and_schedule_2_in_the_uk() -> None:
    rules = ledger_rules()
    us, uk = rules.control("US"), rules.control("UK")
    assert us.schedule.startswith("Schedule III")
    assert us.source.cite[0].ref == "cfr-21-1308-13"
    assert uk.schedule.startswith("Schedule 2")
    refs = {c.ref for c in uk.source.cite}
    assert refs >= {"uk-misuse-of-drugs-regulations-2001", "uk-si-2015-891"}


def test_the_reconciliation_tolerance_is_the_decimal_005_mg() -> None:
    rules = ledger_rules()
    assert rules.reconciliation_tolerance_mg == Decimal("0.05")
    assert isinstance(rules.reconciliation_tolerance_mg, Decimal)
    assert rules.reconciles(Decimal("0.04")) and rules.reconciles(Decimal("-0.049"))
    assert not rules.reconciles(Decimal("0.05")) and not rules.reconciles(Decimal("-0.1"))


def test_the_clinic_numbers_are_cited_as_clinic_policy() -> None:
    rules = ledger_rules()
    assert (rules.near_expiry_days, rules.count_interval_days, rules.count_people) == (90, 7, 2)
    for source in (
        rules.reconciliation_tolerance_source,
        rules.near_expiry_source,
        rules.count_interval_source,
        rules.count_people_source,
        rules.waste_witness,
    ):
        assert source.cite[0].ref == "ketapath-ledger-policy"


def test_a_loss_is_reported_to_the_dea_within_one_business_day() -> None:
    loss = ledger_rules().loss_report
    assert loss.cite[0].ref == "cfr-21-1301-76" and loss.cite[0].at.startswith("(b)")
    assert "one business day" in loss.cite[0].at and "Form 106" in loss.cite[0].at


def test_each_report_lists_its_requirements_each_with_a_source() -> None:
    rules = ledger_rules()
    assert set(rules.reports) == set(REPORT_IDS)
    for report_id, report in rules.reports.items():
        assert report.id == report_id
        assert len(report.requirements) >= 5, report_id
        for requirement in report.requirements:
            assert requirement.source.cite, (report_id, requirement.id)
            assert all(c.at for c in requirement.source.cite), (report_id, requirement.id)


def test_the_reports_carry_the_regulations_paragraphs() -> None:
    reports = ledger_rules().reports
    inventory = reports["us_biennial_inventory"]
    assert inventory.jurisdiction == "US"
    assert inventory.requirement("every-two-years").source.cite[0].at == "(c)"
    assert inventory.requirement("opened-containers").source.cite[0].at == "(e)(3)(ii)"
    dispensing = reports["us_dispensing_records"]
    assert dispensing.requirement("dispensed").source.cite[0].ref == "cfr-21-1304-22"
    assert dispensing.requirement("two-years").source.cite[0].ref == "cfr-21-1304-04"
    register = reports["uk_register"]
    assert register.jurisdiction == "UK"
    assert register.requirement("no-alteration").source.cite[0].at == "regulation 20(c)"
    with pytest.raises(KeyError):
        register.requirement("no-such-requirement")


def test_no_text_says_seed() -> None:
    text = data_path("ledger_rules.yaml").read_text("utf-8").lower()
    body = "\n".join(line for line in text.splitlines() if "provenance" not in line)
    assert "seed" not in body


def test_a_requirement_without_a_source_is_refused_in_words(tmp_path: Path) -> None:
    raw = _raw()
    del raw["reports"]["uk_register"]["requirements"][0]["source"]
    expected = r"ledger_rules\.yaml: .*uk_register.*source: Field required"
    with pytest.raises(KnowledgeError, match=expected):
        load_ledger_rules(_write(tmp_path, raw))


def test_a_number_without_its_source_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    del raw["near_expiry_source"]
    with pytest.raises(KnowledgeError, match="near_expiry_source: Field required"):
        load_ledger_rules(_write(tmp_path, raw))


def test_a_negative_count_interval_is_refused_in_words(tmp_path: Path) -> None:
    raw = _raw()
    raw["count_interval_days"] = -7
    with pytest.raises(KnowledgeError, match="count_interval_days: Input should be greater than"):
        load_ledger_rules(_write(tmp_path, raw))


def test_a_count_by_one_person_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    raw["count_people"] = 1
    with pytest.raises(KnowledgeError, match="count_people"):
        load_ledger_rules(_write(tmp_path, raw))


@pytest.mark.parametrize("tolerance", ["0", "-0.05", "0.1", "NaN"])
def test_a_tolerance_out_of_range_is_refused(tmp_path: Path, tolerance: str) -> None:
    raw = _raw()
    raw["reconciliation_tolerance_mg"] = tolerance
    with pytest.raises(KnowledgeError, match="reconciliation_tolerance_mg"):
        load_ledger_rules(_write(tmp_path, raw))


def test_a_citation_not_in_the_bibliography_is_refused_in_words(tmp_path: Path) -> None:
    raw = _raw()
    raw["waste_witness"]["cite"][0]["ref"] = "no-such-regulation-1999"
    with pytest.raises(KnowledgeError, match="cites no-such-regulation-1999, not in bibliography"):
        load_ledger_rules(_write(tmp_path, raw))


def test_a_missing_report_or_jurisdiction_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    del raw["reports"]["uk_register"]
    with pytest.raises(KnowledgeError, match="reports lacks uk_register"):
        load_ledger_rules(_write(tmp_path, raw))
    raw = _raw()
    raw["controls"] = [c for c in raw["controls"] if c["jurisdiction"] == "US"]
    with pytest.raises(KnowledgeError, match="one entry for each of US and UK"):
        load_ledger_rules(_write(tmp_path, raw))


def test_a_report_filed_under_another_id_or_a_repeated_requirement_is_refused(
    tmp_path: Path,
) -> None:
    raw = _raw()
    raw["reports"]["uk_register"]["id"] = "us_biennial_inventory"
    with pytest.raises(KnowledgeError, match="filed under another id: uk_register"):
        load_ledger_rules(_write(tmp_path, raw))
    raw = _raw()
    requirements = raw["reports"]["uk_register"]["requirements"]
    requirements.append(dict(requirements[0]))
    with pytest.raises(KnowledgeError, match="requirements listed twice"):
        load_ledger_rules(_write(tmp_path, raw))


def test_a_file_that_is_not_yaml_is_refused_in_words(tmp_path: Path) -> None:
    path = tmp_path / "ledger_rules.yaml"
    path.write_text("kind: [unclosed", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="not valid YAML"):
        load_ledger_rules(path)
