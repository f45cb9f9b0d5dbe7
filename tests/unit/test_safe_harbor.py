"""The Safe Harbor rules as knowledge data (safe_harbor.yaml): the 18 identifiers of 45 CFR
164.514(b)(2)(i), each mapped to what ketapath does with it and cited; the age and ZIP rules;
refused in words when broken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ketapath.knowledge.base import KnowledgeError, cites_in, data_path
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.safe_harbor import LETTERS, load_safe_harbor, safe_harbor

# The 17 three-digit ZCTAs of the HHS guidance's table (2000 Census), as the guidance lists
# them; written out here so that a change to the file that drops one fails.
HHS_2000_CENSUS = {
    "036", "059", "063", "102", "203", "556", "692", "790", "821",
    "823", "830", "831", "878", "879", "884", "890", "893",
}  # fmt: skip


def _raw() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(data_path("safe_harbor.yaml").read_text("utf-8"))
    return document


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "safe_harbor.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_the_file_maps_all_18_identifiers_once_each_to_what_ketapath_does() -> None:
    rules = safe_harbor()
    assert [i.letter for i in sorted(rules.identifiers, key=lambda i: i.letter)] == list(LETTERS)
    assert {i.handling for i in rules.identifiers} <= {"removed", "not_collected", "transformed"}
    # the three the rule lets through in a changed form
    assert {i.letter for i in rules.identifiers if i.handling == "transformed"} == {"B", "C", "R"}
    assert rules.identifier("A").handling == "removed"
    assert rules.identifier("H").handling == "removed"


def test_every_identifier_cites_its_paragraph_of_the_regulation() -> None:
    for item in safe_harbor().identifiers:
        refs = {(c.ref, c.at) for c in item.source.cite}
        assert any(
            ref == "cfr-45-164-514" and at.startswith(f"(b)(2)(i)({item.letter})")
            for ref, at in refs
        ), item.letter


def test_every_cite_resolves_and_the_regulation_and_guidance_are_in_the_bibliography() -> None:
    bib = bibliography()
    cites = cites_in(safe_harbor())
    assert sorted({c.ref for c in cites if c.ref not in bib}) == []
    assert bib.get("cfr-45-164-514").kind == "regulation"
    assert bib.get("hhs-ocr-2012-deidentification").kind == "guideline"
    assert bib.get("ketapath-research-export").kind == "local"


def test_ages_are_pooled_from_90_as_90_or_older() -> None:
    age = safe_harbor().age
    assert (age.pooled_from_years, age.label) == (90, "90 or older")


def test_the_hhs_list_is_the_guidance_s_17_and_says_it_was_verified() -> None:
    zip_rule = safe_harbor().zip
    hhs = next(g for g in zip_rule.restricted if g.id == "hhs-2000-census")
    assert set(hhs.prefixes) == HHS_2000_CENSUS and hhs.verified
    assert {c.ref for c in hhs.source.cite} == {"hhs-ocr-2012-deidentification"}
    assert zip_rule.restricted_prefixes >= HHS_2000_CENSUS
    assert (zip_rule.keep_digits, zip_rule.population_threshold, zip_rule.replacement) == (
        3,
        20000,
        "000",
    )


def test_prefixes_outside_the_hhs_table_are_marked_unverified_and_local() -> None:
    others = [g for g in safe_harbor().zip.restricted if g.id != "hhs-2000-census"]
    for group in others:
        assert not group.verified
        assert not set(group.prefixes) & HHS_2000_CENSUS
        assert {c.ref for c in group.source.cite} == {"ketapath-research-export"}


def test_a_missing_identifier_is_refused_naming_the_letter(tmp_path: Path) -> None:
    raw = _raw()
    raw["identifiers"] = [i for i in raw["identifiers"] if i["letter"] != "H"]
    with pytest.raises(KnowledgeError, match="missing: H"):
        load_safe_harbor(_write(tmp_path, raw))


def test_a_prefix_that_is_not_three_digits_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    raw["zip"]["restricted"][0]["prefixes"].append("12")
    with pytest.raises(KnowledgeError, match="not three-digit ZIP prefixes: 12"):
        load_safe_harbor(_write(tmp_path, raw))


def test_an_identifier_without_a_source_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    del raw["identifiers"][0]["source"]
    with pytest.raises(KnowledgeError, match=r"identifiers\[0 id=names\]\.source: Field required"):
        load_safe_harbor(_write(tmp_path, raw))
