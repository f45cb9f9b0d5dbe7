"""Properties of the signing checks: an order is stale exactly when a dosing fact changed, and
the mood screen raises its findings exactly at the published cut-points."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from ketapath.domain.instruments import score
from ketapath.domain.mood import RecordedScore, mood_findings
from ketapath.domain.signing import changed_facts, dosing_facts

weights = st.floats(min_value=20, max_value=300, allow_nan=False).map(lambda w: round(w, 1))
heights = st.none() | st.floats(min_value=120, max_value=220).map(lambda h: round(h, 1))
sexes = st.sampled_from(["female", "male"])
bases = st.sampled_from(["actual", "ideal", "adjusted"])


@settings(max_examples=200, deadline=None)
@given(weights, heights, sexes, weights, heights, sexes, bases)
def test_an_order_is_stale_exactly_when_a_fact_its_dose_depends_on_changed(
    w1: float,
    h1: float | None,
    s1: str,
    w2: float,
    h2: float | None,
    s2: str,
    basis: str,
) -> None:
    changes = changed_facts(dosing_facts(w1, h1, s1, basis), dosing_facts(w2, h2, s2, basis))
    dose_depends_on_height_and_sex = basis != "actual"
    expected = w1 != w2 or (dose_depends_on_height_and_sex and (h1 != h2 or s1 != s2))
    assert bool(changes) == expected
    assert all("the record now says" in c.text for c in changes)


answers = st.integers(min_value=0, max_value=3)


@settings(max_examples=150, deadline=None)
@given(st.lists(answers, min_size=9, max_size=9))
def test_phq9_findings_follow_item_9_and_the_severe_cut_point(items: list[int]) -> None:
    scored = score("phq9", {f"q{i}": v for i, v in enumerate(items, start=1)})
    found = {f.code for f in mood_findings([RecordedScore(scored, date(2026, 1, 1))])}
    assert ("mood:phq9-item9" in found) == (items[8] >= 1)
    assert ("mood:severe-depression" in found) == (sum(items) >= 20)


@settings(max_examples=100, deadline=None)
@given(st.lists(answers, min_size=7, max_size=7))
def test_gad7_findings_follow_the_severe_cut_point(items: list[int]) -> None:
    scored = score("gad7", {f"q{i}": v for i, v in enumerate(items, start=1)})
    found = {f.code for f in mood_findings([RecordedScore(scored, date(2026, 1, 1))])}
    assert found == ({"mood:severe-anxiety"} if sum(items) >= 15 else set())
