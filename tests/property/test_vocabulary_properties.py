"""Properties of the diagnosis resolver: written variants of every name resolve to the same
condition; random text never crashes it and never resolves to a condition whose words it does
not contain; negated or uncertain text never resolves."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ketapath.domain.vocabulary import explain, is_icd10cm, is_icd11, key, resolve, words
from ketapath.knowledge.clinical import knowledge

KB = knowledge()
TERMS = [(t, c.id) for c in KB.conditions.entries for t in (c.name, *c.synonyms, *c.abbreviations)]
CONTRAINDICATED = {cid for ci in KB.contraindications.entries for cid in ci.conditions}
GATING_TERMS = [(t, cid) for t, cid in TERMS if cid in CONTRAINDICATED]


@st.composite
def written_variant(draw: st.DrawFn) -> tuple[str, str]:
    """A term as a clinician might type it: any case, spacing, hyphens, stray punctuation."""
    term, condition = draw(st.sampled_from(TERMS))
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in term)
    parts = cased.split(" ")
    seps = st.sampled_from([" ", "  ", "\t", "-", " - ", "_", ", ", ". "])
    joined = parts[0] + "".join(draw(seps) + p for p in parts[1:])
    before = draw(st.sampled_from(["", " ", "  ", "\t", "("]))
    after = draw(st.sampled_from(["", " ", ".", ",", ";", ")", " \n"]))
    return before + joined + after, condition


@given(written_variant())
@settings(max_examples=400)
def test_case_spacing_hyphen_and_punctuation_variants_resolve_to_the_same_condition(
    variant: tuple[str, str],
) -> None:
    text, condition = variant
    resolution = resolve(text, KB)
    assert resolution.condition is not None, explain(resolution, KB)
    assert resolution.condition.id == condition


@given(st.text(max_size=120))
@settings(max_examples=400)
def test_random_text_never_crashes_and_never_resolves_without_the_words_of_its_condition(
    text: str,
) -> None:
    resolution = resolve(text, KB)
    assert isinstance(explain(resolution, KB), str) and explain(resolution, KB)
    condition = resolution.condition
    if condition is None:
        return
    if resolution.matched_by in ("icd10cm", "icd11"):
        assert is_icd10cm(text) or is_icd11(text)
        return
    spaceless = "".join(words(text))
    assert any(key(term) in spaceless for term in condition.terms), (text, condition.id)


WORDY = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz   -,()/?"), min_size=0, max_size=40
)


@given(st.sampled_from(GATING_TERMS), WORDY, WORDY)
@settings(max_examples=400)
def test_text_around_a_contraindication_resolves_only_to_that_condition_or_to_nothing(
    pair: tuple[str, str], left: str, right: str
) -> None:
    # Surrounding words may be qualifiers ("history of", "left") or anything else: the text
    # may resolve to the contraindication whose words it contains, to a longer name that
    # contains them, or stay unresolved; it is never silently taken as something unrelated.
    term, _condition = pair
    resolution = resolve(f"{left} {term} {right}", KB)
    if resolution.condition is not None:
        spaceless = "".join(words(f"{left} {term} {right}"))
        assert any(key(t) in spaceless for t in resolution.condition.terms)


@given(
    st.sampled_from(GATING_TERMS),
    st.sampled_from(
        [
            "no {}",
            "No history of {}",
            "denies {}",
            "{} -ve",
            "?{}",
            "{}?",
            "possible {}",
            "suspected {}",
            "rule out {}",
            "r/o {}",
            "query {}",
            "family history of {}",
            "{} in remission",
            "resolved {}",
        ]
    ),
)
@settings(max_examples=400)
def test_a_negated_or_uncertain_contraindication_never_resolves(
    pair: tuple[str, str], template: str
) -> None:
    term, _condition = pair
    resolution = resolve(template.format(term), KB)
    assert resolution.condition is None
    assert resolution.matched_by in ("negated", "uncertain", "other-person", "ended", "ambiguous")
