"""The outcome definitions under generated diaries: the 35-day area is numpy's trapezoid on a
complete series and 34 x c for a constant one, relief never outlasts follow-up, a responder
at a threshold responds at every lower one, and no result is ever NaN or infinite."""

from __future__ import annotations

import math
from datetime import date, timedelta
from fractions import Fraction
from random import Random

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ketapath.domain.outcomes import (
    change_from_baseline,
    opioid_change,
    pain_auc,
    relief_duration,
    responder,
)

START = date(2024, 3, 1)
scores = st.integers(min_value=0, max_value=10)
maybe_scores = st.none() | scores
thresholds = st.floats(min_value=0.01, max_value=100, allow_nan=False, allow_infinity=False)


def _finite(*values: float | None) -> bool:
    return all(v is None or math.isfinite(v) for v in values)


@st.composite
def diaries(draw: st.DrawFn, max_day: int = 60) -> dict[date, int]:
    """A diary with gaps: a subset of days 0..max_day after START."""
    days = draw(st.sets(st.integers(min_value=0, max_value=max_day), max_size=max_day + 1))
    return {START + timedelta(days=k): draw(scores) for k in sorted(days)}


@given(st.lists(scores, min_size=35, max_size=35))
def test_the_area_of_a_complete_series_is_numpys_trapezoid(values: list[int]) -> None:
    daily = {START + timedelta(days=k + 1): v for k, v in enumerate(values)}
    result = pain_auc(daily, START)
    assert result.status == "complete" and result.auc is not None
    assert math.isclose(result.auc, float(np.trapezoid(values)), abs_tol=1e-9)
    assert result.mean_daily_pain is not None
    assert math.isclose(result.mean_daily_pain, float(np.mean(values)), abs_tol=1e-9)


@given(scores)
def test_the_area_of_a_constant_series_is_34_times_it(c: int) -> None:
    daily = {START + timedelta(days=k): c for k in range(1, 36)}
    assert pain_auc(daily, START).auc == 34 * c


@given(diaries())
def test_the_area_is_given_exactly_when_both_ends_are_recorded(daily: dict[date, int]) -> None:
    result = pain_auc(daily, START)
    ends = START + timedelta(days=1) in daily and START + timedelta(days=35) in daily
    assert (result.auc is not None) == ends
    assert _finite(result.auc, result.mean_daily_pain)
    if result.auc is not None:
        window = [daily[d] for d in daily if result.first_day <= d <= result.last_day]
        # interpolation stays between the recorded extremes
        assert 34 * min(window) <= result.auc <= 34 * max(window)
    else:
        assert result.missing


@given(
    diaries(max_day=120),
    scores,
    st.integers(min_value=0, max_value=120),
    st.integers(min_value=0, max_value=5),
)
def test_relief_never_outlasts_follow_up(
    daily: dict[date, int], baseline: int, follow_up: int, margin: int
) -> None:
    end = START + timedelta(days=follow_up)
    relief = relief_duration(baseline, daily, START, end, margin)
    if relief.days is not None:
        assert 0 <= relief.days <= follow_up
    assert relief.event == (relief.status == "ended")
    if relief.status == "ended":
        assert relief.event_date is not None and relief.event_date <= end
        assert daily[relief.event_date] >= baseline - margin


@given(maybe_scores, maybe_scores, thresholds, thresholds)
def test_a_responder_at_a_threshold_responds_at_every_lower_one(
    baseline: int | None, value: int | None, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    at_high = responder(baseline, value, high)
    at_low = responder(baseline, value, low)
    if at_high.status == "responder":
        assert at_low.status == "responder"
    assert (at_high.status == "unknown") == (at_low.status == "unknown")
    if baseline is None or value is None or baseline == 0:
        assert at_high.status == "unknown"
    assert _finite(at_high.reduction_percent, at_low.reduction_percent)


@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
)
def test_change_from_baseline_is_never_nan_or_infinite(baseline: float, value: float) -> None:
    change = change_from_baseline(baseline, value)
    assert _finite(change.absolute, change.percent)
    if baseline == 0:
        assert change.percent is None and "baseline is 0" in change.percent_undefined
    assert (change.percent is None) == bool(change.percent_undefined)


@given(
    st.none() | st.floats(min_value=0, max_value=1e5, allow_nan=False),
    st.none() | st.floats(min_value=0, max_value=1e5, allow_nan=False),
    st.booleans(),
    st.booleans(),
)
def test_an_opioid_change_is_known_only_from_two_complete_totals(
    baseline: float | None, current: float | None, first: bool, second: bool
) -> None:
    change = opioid_change(baseline, current, (first, second))
    known = first and second and baseline is not None and current is not None
    assert (change.change_mg is not None) == known
    assert _finite(change.change_mg, change.percent)


# ------------------------------------------------------------------ cumulative dose, ladder

doses = st.lists(
    st.tuples(
        st.fractions(min_value=0, max_value=5000, max_denominator=10**6),
        st.floats(min_value=20, max_value=300, allow_nan=False, allow_infinity=False),
    ),
    max_size=40,
)


@given(doses, st.randoms(use_true_random=False))
def test_the_cumulative_dose_is_exact_order_free_and_additive(
    sessions: list[tuple[Fraction, float]], shuffle: Random
) -> None:
    from ketapath.domain.outcomes import cumulative_mg_per_kg

    total = cumulative_mg_per_kg(sessions)
    assert total is not None and total >= 0
    shuffled = list(sessions)
    shuffle.shuffle(shuffled)
    assert cumulative_mg_per_kg(shuffled) == total
    half = len(sessions) // 2
    first, second = cumulative_mg_per_kg(sessions[:half]), cumulative_mg_per_kg(sessions[half:])
    assert first is not None and second is not None and first + second == total
    assert math.isfinite(float(total))


@given(
    st.lists(st.sampled_from([0.1, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0]), min_size=1),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.none() | st.floats(min_value=0, max_value=3, allow_nan=False),
)
def test_the_ladder_s_next_rung_is_the_lowest_step_above_what_was_given(
    steps: list[float], ceiling: float, given_rate: float | None
) -> None:
    from ketapath.domain.outcomes import ladder_next_step

    rung = ladder_next_step(steps, ceiling, given_rate)
    if given_rate is None:
        assert rung is None
        return
    above = [s for s in steps if given_rate < s <= ceiling]
    if rung is None:
        assert not above
    else:
        assert rung in steps and given_rate < rung <= ceiling and rung == min(above)
