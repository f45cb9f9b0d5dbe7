from __future__ import annotations

import pytest

from ketapath.domain.vocabulary import is_icd10cm, resolve
from ketapath.knowledge.clinical import knowledge


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("G90.511", "crps-1"),  # CRPS I of the right upper limb
        ("G56.41", "crps-2"),  # causalgia beats the broader mononeuropathy code G56
        ("G56.22", "ulnar-neuropathy"),
        ("G56.01", "painful-neuropathy"),
        ("S34.109S", "sci-pain"),
        ("E11.42", "painful-neuropathy"),
        ("E11.9", "diabetes"),
        ("O09.90", "pregnancy"),
        ("M54.50", "low-back-pain"),
        ("M54.2", "spinal-pain"),
        ("g500", "trigeminal-neuralgia"),
    ],
)
def test_codes_resolve_by_longest_prefix(given: str, expected: str) -> None:
    result = resolve(given, knowledge())
    assert result.condition is not None
    assert result.condition.id == expected


def test_ids_names_and_synonyms_resolve() -> None:
    kb = knowledge()
    assert resolve("crps-2", kb).matched_by == "id"
    assert resolve("Fibromyalgia", kb).condition.id == "fibromyalgia"  # type: ignore[union-attr]
    assert resolve("causalgia", kb).condition.id == "crps-2"  # type: ignore[union-attr]


def test_a_wellformed_code_outside_the_vocabulary_is_unknown() -> None:
    result = resolve("Q99.9", knowledge())
    assert result.condition is None and result.matched_by == "unknown-code"


def test_text_that_is_neither_id_name_nor_code_is_unrecognised() -> None:
    assert resolve("crps type 3", knowledge()).matched_by == "unrecognised"


def test_icd10cm_shape() -> None:
    assert is_icd10cm("G90.511") and is_icd10cm("M797") and is_icd10cm("O09.90")
    assert is_icd10cm("U07.1")  # COVID-19 is in ICD-10-CM
    assert not is_icd10cm("crps-1") and not is_icd10cm("G9") and not is_icd10cm("9G0.1")
