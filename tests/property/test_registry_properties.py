"""Properties of the registry's calculators over generated input: bands, Wilson intervals,
rates, the Kaplan-Meier curve and the cumulative dose."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ketapath.domain.registry import (
    UNKNOWN_BAND,
    band_index,
    band_labels,
    band_of,
    cumulative_doses,
    rate,
    wilson_interval,
)
from ketapath.domain.registry_survival import kaplan_meier
from ketapath.knowledge.base import Cite, Source
from ketapath.knowledge.registry import Bands

edges = st.lists(
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), min_size=1, max_size=8, unique=True
).map(sorted)
values = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)
SOURCE = Source(cite=(Cite(ref="ketapath-registry-policy"),))


@given(edges, values, values)
def test_a_larger_value_is_never_in_a_lower_band(cuts: list[float], a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert 0 <= band_index(low, cuts) <= band_index(high, cuts) <= len(cuts)


@given(edges, values)
def test_every_value_has_exactly_one_band_with_its_lower_edge_included(
    cuts: list[float], value: float
) -> None:
    bands = Bands(edges=tuple(cuts), unit="mg/kg", source=SOURCE)
    label = band_of(value, bands)
    assert label in band_labels(bands) and label != UNKNOWN_BAND
    index = band_index(value, cuts)
    if index > 0:
        assert value >= cuts[index - 1]
    if index < len(cuts):
        assert value < cuts[index]


@settings(deadline=None)
@given(
    st.integers(min_value=1, max_value=5000).flatmap(
        lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
    )
)
def test_the_wilson_interval_holds_the_observed_rate_inside_zero_and_one(
    kn: tuple[int, int],
) -> None:
    k, n = kn
    low, high = wilson_interval(k, n)
    assert 0 <= low <= k / n <= high <= 1
    z = 1.959963984540054
    centre = (k / n + z * z / (2 * n)) / (1 + z * z / n)
    assert math.isclose((low + high) / 2, centre, abs_tol=1e-9) or low == 0 or high == 1


@settings(deadline=None)
@given(st.lists(st.sampled_from([True, False, None]), max_size=200))
def test_a_rate_never_counts_unknown_and_never_divides_by_zero(statuses: list[bool | None]) -> None:
    r = rate(statuses)
    assert r.n + r.unknown == len(statuses)
    assert r.events == sum(1 for s in statuses if s is True)
    if r.n == 0:
        assert r.proportion is None and r.low is None and r.high is None
    else:
        assert r.low is not None and r.high is not None and r.proportion is not None
        assert r.low <= r.proportion <= r.high


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.booleans()), min_size=1, max_size=60
    )
)
def test_the_curve_never_rises_and_stays_finite(table: list[tuple[int, bool]]) -> None:
    points, median = kaplan_meier([t for t, _ in table], [e for _, e in table])
    survivals = [p.survival for p in points]
    assert all(0 <= s <= 1 for s in survivals)
    assert all(a >= b for a, b in itertools.pairwise(survivals))
    for p in points:
        for bound in (p.low, p.high):
            assert bound is None or (math.isfinite(bound) and 0 <= bound <= 1)
    if median.days is None:
        assert median.reason
    else:
        assert math.isfinite(median.days)


@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.floats(min_value=0, max_value=100)), st.booleans()),
        max_size=6,
    )
)
def test_the_cumulative_dose_grows_and_is_unknown_after_an_unknown_course(
    courses: list[tuple[float | None, bool]],
) -> None:
    items = [
        (
            i + 1,
            1,
            date(2024, 1, 1) + timedelta(days=30 * i),
            "complete" if given else "not given",
            dose if given else None,
        )
        for i, (dose, given) in enumerate(courses)
    ]
    cumulative = cumulative_doses(items)
    running: float | None = 0.0
    for order_id, _, _, status, dose in items:
        if status != "not given":
            running = None if running is None or dose is None else running + dose
        got = cumulative[order_id]
        assert (got is None) == (running is None)
        if running is not None and got is not None:
            assert math.isclose(got, running, rel_tol=1e-9, abs_tol=1e-9)
