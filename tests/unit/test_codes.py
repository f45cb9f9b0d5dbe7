"""Checks on the code systems in the conditions vocabulary (knowledge/data/conditions.yaml).

Shape checks catch transcription slips; the regression checks pin corrections made against
the WHO ICD-11 MMS 2024-01 and 2019-04 tables (see the vocabulary's description for the
sources), and every ICD-10-CM code is checked against the CDC tabular list.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketapath.domain.vocabulary import is_icd10cm
from ketapath.knowledge.clinical import Condition, knowledge

# ICD-11 MMS stem codes: 4 characters (digit or letter, letter, digit, digit-or-letter),
# optionally a dot and one or two more characters, e.g. 8A80, MG30.5, 8D8A.00.
_ICD11_STEM = re.compile(r"^[0-9A-HJ-NP-Z][A-HJ-NP-Z][0-9][0-9A-HJ-NP-Z](\.[0-9A-HJ-NP-Z]{1,2})?$")

# Verhoeff tables, used for the SNOMED CT identifier check digit.
_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def _verhoeff_valid(digits: str) -> bool:
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _D[check][_P[position % 8][int(char)]]
    return check == 0


def _is_snomed_concept_id(sctid: str) -> bool:
    """6-18 digits, no leading zero, concept partition (00 or 10), valid Verhoeff digit."""
    return (
        re.fullmatch(r"[1-9][0-9]{5,17}", sctid) is not None
        and sctid[-3:-1] in {"00", "10"}
        and _verhoeff_valid(sctid)
    )


def _coded_conditions() -> list[Condition]:
    return [c for c in knowledge().conditions.entries if _icd11_codes(c) or c.snomed_ct]


def _icd11_codes(condition: Condition) -> list[str]:
    return [*condition.icd11, *condition.icd11_earlier, *condition.icd11_broader]


# A two-character ICD-11 entry stands for a whole chapter's codes (chapter 18, pregnancy, is
# JA00-JB6Z); the entry's codes_note must say so.
_ICD11_CHAPTER_PREFIX = re.compile(r"^[0-9A-HJ-NP-Z][A-HJ-NP-Z]$")


def test_every_icd11_code_has_the_shape_of_an_mms_stem_code_or_a_chapter_prefix() -> None:
    bad = [(c.id, code) for c in knowledge().conditions.entries for code in _icd11_codes(c)]
    bad = [
        (cid, code)
        for cid, code in bad
        if not (_ICD11_STEM.match(code) or _ICD11_CHAPTER_PREFIX.match(code))
    ]
    assert bad == []


def test_every_icd10cm_code_has_the_shape_of_a_code_or_is_a_chapter_letter() -> None:
    bad = [
        (c.id, code)
        for c in knowledge().conditions.entries
        for code in c.icd10cm
        if not (is_icd10cm(code) or (len(code) == 1 and code in c.codes_note))
    ]
    assert bad == []


def test_a_chapter_prefix_is_explained_in_the_codes_note() -> None:
    for c in knowledge().conditions.entries:
        for code in c.icd11:
            if _ICD11_CHAPTER_PREFIX.match(code):
                assert "chapter" in c.codes_note and code in c.codes_note, (c.id, code)


def test_every_snomed_ct_id_is_a_concept_id_with_a_valid_check_digit() -> None:
    bad = [(c.id, s) for c in knowledge().conditions.entries for s in c.snomed_ct]
    bad = [(cid, s) for cid, s in bad if not _is_snomed_concept_id(s)]
    assert bad == []


@pytest.mark.parametrize("condition", _coded_conditions(), ids=lambda c: c.id)
def test_every_icd11_or_snomed_code_names_its_source_in_codes_note(condition: Condition) -> None:
    for code in [*_icd11_codes(condition), *condition.snomed_ct]:
        assert code in condition.codes_note, f"{condition.id}: {code} not explained in codes_note"


@pytest.mark.slow
def test_every_icd10cm_code_exists_in_the_cdc_tabular_list() -> None:
    # The CDC/NCHS ICD-10-CM tabular list, April 2026 release, bundled by simple-icd-10-cm
    # (pinned in pyproject.toml). A one-letter entry is a chapter (O: pregnancy).
    import simple_icd_10_cm as cm

    missing = [
        (c.id, code)
        for c in knowledge().conditions.entries
        for code in c.icd10cm
        if len(code) > 1 and not cm.is_valid_item(code)
    ]
    assert missing == []
    chapters = [
        code for c in knowledge().conditions.entries for code in c.icd10cm if len(code) == 1
    ]
    assert chapters == ["O"]
    assert (
        cm.get_description("O09.90")
        == "Supervision of high risk pregnancy, unspecified, unspecified trimester"
    )


def test_no_code_is_listed_by_two_conditions() -> None:
    # A bare code must resolve to one entry; ICD-11 categories that contain several entries
    # are listed as icd11_broader (shown, never matched).
    seen: dict[tuple[str, str], str] = {}
    clashes = []
    for c in knowledge().conditions.entries:
        codes = [("icd10cm", x) for x in c.icd10cm]
        codes += [("icd11", x) for x in (*c.icd11, *c.icd11_earlier)]
        for system, code in codes:
            norm = (system, code.replace(".", ""))
            if norm in seen and seen[norm] != c.id:
                clashes.append((code, seen[norm], c.id))
            seen[norm] = c.id
    assert clashes == []


def test_every_indication_and_contraindication_condition_has_icd10cm_and_icd11_codes() -> None:
    kb = knowledge()
    ids = {cid for ev in kb.indications.entries for cid in ev.conditions}
    ids |= {cid for ci in kb.contraindications.entries for cid in ci.conditions}
    for cid in sorted(ids):
        c = kb.condition(cid)
        assert c.icd10cm or "ICD-10-CM has no code" in c.codes_note, cid
        assert c.icd11 or c.icd11_broader or c.icd11_earlier, cid


@given(st.from_regex(r"[1-9][0-9]{5,16}", fullmatch=True), st.integers(0, 9))
def test_changing_one_digit_of_a_valid_snomed_id_breaks_the_check(body: str, wrong: int) -> None:
    # Build a valid identifier, then alter its check digit: Verhoeff must reject it.
    good = next(body + d for d in "0123456789" if _verhoeff_valid(body + d))
    altered = good[:-1] + str(wrong)
    assert _verhoeff_valid(altered) == (altered == good)


def test_central_and_peripheral_neuropathic_pain_are_not_swapped() -> None:
    # WHO ICD-11 MMS 2024-01 (and 2019-04): MG30.50 chronic central, MG30.51 chronic peripheral
    # neuropathic pain; spinal cord injury pain and ulnar neuropathy sit inside them.
    kb = knowledge()
    assert kb.condition("central-pain").icd11 == ["MG30.50"]
    assert kb.condition("sci-pain").icd11_broader == ["MG30.50"]
    assert "MG30.51" in kb.condition("painful-neuropathy").icd11
    assert kb.condition("ulnar-neuropathy").icd11_broader == ["MG30.51"]


def test_crps_has_its_2024_code_and_its_2019_codes_not_horner_syndrome() -> None:
    # WHO ICD-11 MMS 2024-01: MG30.04 CRPS (no type subcodes). MMS 2019-04: 8D8A.0 CRPS,
    # .00 type I, .01 type II; 8D8A.1 is Horner syndrome in both releases.
    kb = knowledge()
    assert kb.condition("crps").icd11 == ["MG30.04"]
    assert kb.condition("crps").icd11_earlier == ["8D8A.0"]
    assert kb.condition("crps-1").icd11_earlier == ["8D8A.00"]
    assert kb.condition("crps-2").icd11_earlier == ["8D8A.01"]
    codes = [x for c in kb.conditions.entries for x in _icd11_codes(c)]
    assert "8D8A.1" not in codes
