"""Checks on the code systems in the conditions vocabulary (knowledge/data/conditions.yaml).

Shape checks catch transcription slips; the regression checks pin corrections made against
the WHO ICD-11 MMS 2019-04 table (see the vocabulary's description for the source).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    return [c for c in knowledge().conditions.entries if c.icd11 or c.snomed_ct]


def test_every_icd11_code_has_the_shape_of_an_mms_stem_code() -> None:
    bad = [(c.id, code) for c in knowledge().conditions.entries for code in c.icd11]
    bad = [(cid, code) for cid, code in bad if not _ICD11_STEM.match(code)]
    assert bad == []


def test_every_snomed_ct_id_is_a_concept_id_with_a_valid_check_digit() -> None:
    bad = [(c.id, s) for c in knowledge().conditions.entries for s in c.snomed_ct]
    bad = [(cid, s) for cid, s in bad if not _is_snomed_concept_id(s)]
    assert bad == []


@pytest.mark.parametrize("condition", _coded_conditions(), ids=lambda c: c.id)
def test_every_icd11_or_snomed_code_names_its_source_in_codes_note(condition: Condition) -> None:
    for code in [*condition.icd11, *condition.snomed_ct]:
        assert code in condition.codes_note, f"{condition.id}: {code} not explained in codes_note"


@given(st.from_regex(r"[1-9][0-9]{5,16}", fullmatch=True), st.integers(0, 9))
def test_changing_one_digit_of_a_valid_snomed_id_breaks_the_check(body: str, wrong: int) -> None:
    # Build a valid identifier, then alter its check digit: Verhoeff must reject it.
    good = next(body + d for d in "0123456789" if _verhoeff_valid(body + d))
    altered = good[:-1] + str(wrong)
    assert _verhoeff_valid(altered) == (altered == good)


def test_central_and_peripheral_neuropathic_pain_are_not_swapped() -> None:
    # WHO ICD-11 MMS 2019-04: MG30.50 chronic central, MG30.51 chronic peripheral neuropathic pain.
    kb = knowledge()
    for central in ("sci-pain", "central-pain"):
        assert kb.condition(central).icd11 == ["MG30.50"]
    for peripheral in ("painful-neuropathy", "ulnar-neuropathy"):
        assert kb.condition(peripheral).icd11 == ["MG30.51"]


def test_crps_types_use_the_crps_subcategories_not_horner_syndrome() -> None:
    # WHO ICD-11 MMS 2019-04: 8D8A.0 CRPS (parent), .00 type I, .01 type II; 8D8A.1 is Horner.
    kb = knowledge()
    assert kb.condition("crps-1").icd11 == ["8D8A.00"]
    assert kb.condition("crps-2").icd11 == ["8D8A.01"]
