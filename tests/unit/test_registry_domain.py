"""The registry's numbers, against values computed here by hand: the Kaplan-Meier
product-limit on a small table with censoring, Wilson's interval by its formula, responder
rates counted, the bands, the cumulative dose, and a regression that says when the data are
too few (and recovers a known effect when they are not)."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from ketapath.domain.errors import InvalidInput
from ketapath.domain.outcomes import relief_duration, responder
from ketapath.domain.registry import (
    RegistryCourse,
    adverse_events_by_cumulative_dose,
    band_labels,
    band_of,
    course_outcomes,
    cumulative_doses,
    rate,
    responder_table,
    wilson_interval,
)
from ketapath.domain.registry_survival import (
    NOT_REACHED,
    kaplan_meier,
    relief_curves,
    relief_regression,
)
from ketapath.knowledge.registry import registry_rules

Z95 = 1.959963984540054


def course(order_id: int, **changes: object) -> RegistryCourse:
    """A complete course; tests change one thing at a time."""
    base = RegistryCourse(
        order_id=order_id,
        patient_id=order_id,
        protocol_id="crps-schwartzman-10day",
        indication="crps-1",
        first_session_on=date(2025, 1, 1),
        last_session_on=date(2025, 1, 10),
        status="complete",
        weight_kg=70.0,
        delivered_mg=980.0,
        dose_mg_per_kg=14.0,
        infusion_hours=40.0,
        adjuncts="clonidine + midazolam",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- Kaplan-Meier


def product_limit(table: list[tuple[float, bool]]) -> dict[float, float]:
    """S(t) at each event time, by the product-limit formula, written out here."""
    times = sorted({t for t, ended in table if ended})
    survival, out = 1.0, {}
    for t in times:
        at_risk = sum(1 for u, _ in table if u >= t)
        ended = sum(1 for u, e in table if u == t and e)
        survival *= 1 - ended / at_risk
        out[t] = survival
    return out


TABLE = [
    (3, True),
    (5, True),
    (5, False),
    (8, True),
    (8, True),
    (10, False),
    (12, True),
    (15, False),
]


def test_the_curve_is_the_product_limit_estimate_with_censoring() -> None:
    points, median = kaplan_meier([t for t, _ in TABLE], [e for _, e in TABLE])
    expected = product_limit(TABLE)
    # by hand: 7/8; x 6/7 = 0.75; at 8, 5 at risk (the one censored at 5 has left): x 3/5 =
    # 0.45; at 12, 2 at risk: x 1/2 = 0.225
    assert expected == pytest.approx({3: 7 / 8, 5: 0.75, 8: 0.45, 12: 0.225})
    by_day = {p.days: p for p in points}
    for day, survival in expected.items():
        assert by_day[day].survival == pytest.approx(survival)
    assert by_day[8].at_risk == 5 and by_day[8].ended == 2
    assert by_day[5].censored == 1 and by_day[15].censored == 1
    # the median is the first time the curve is at or below one half
    assert median.days == 8
    assert median.low is not None and median.low <= 8
    # the upper band stays above one half to the last time: no upper bound, and it says so
    assert median.high is None and "upper bound" in median.reason


def test_the_pointwise_interval_is_the_exponential_greenwood_one() -> None:
    points, _ = kaplan_meier([t for t, _ in TABLE], [e for _, e in TABLE])
    point = next(p for p in points if p.days == 5)
    # Greenwood: sum d / (n (n - d)) over event times up to t; exponential ("log-log") form
    greenwood = 1 / (8 * 7) + 1 / (7 * 6)
    s = 0.75
    spread = Z95 * math.sqrt(greenwood) / math.log(s)
    low, high = s ** math.exp(-spread), s ** math.exp(spread)
    assert point.low == pytest.approx(min(low, high), rel=1e-6)
    assert point.high == pytest.approx(max(low, high), rel=1e-6)


def test_a_median_never_reached_is_none_with_the_reason_never_infinity() -> None:
    points, median = kaplan_meier([10, 20, 30, 40], [True, False, False, False])
    assert median.days is None and median.reason == NOT_REACHED
    assert all(math.isfinite(p.survival) for p in points)
    json.dumps([vars(p) for p in points], allow_nan=False)  # no NaN or infinity anywhere


def test_a_curve_needs_durations() -> None:
    with pytest.raises(InvalidInput):
        kaplan_meier([], [])
    with pytest.raises(InvalidInput):
        kaplan_meier([float("nan")], [True])


def test_curves_take_the_courses_in_which_relief_began_and_count_the_others() -> None:
    courses = [
        course(i + 1, relief_status="ended" if e else "censored", relief_days=t, relief_event=e)
        for i, (t, e) in enumerate(TABLE)
    ]
    courses += [course(50, relief_status="never began", relief_days=0)]
    courses += [course(51, relief_status="no data"), course(52, status="in progress")]
    (curve,) = relief_curves(courses, None)
    assert (curve.courses, curve.ended, curve.censored) == (10, 5, 3)
    assert (curve.never_began, curve.no_data) == (1, 1)
    assert curve.median.days == 8


# ---------------------------------------------------------------------------- rates


def wilson_by_formula(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (1, 1), (3, 10), (7, 10), (0, 25), (50, 100), (9000, 17000)]
)
def test_the_wilson_interval_is_the_score_interval_as_scipy_gives_it(k: int, n: int) -> None:
    from scipy.stats import binomtest

    low, high = wilson_interval(k, n)
    expected = wilson_by_formula(k, n)
    assert low == pytest.approx(max(0.0, expected[0]), abs=1e-9)
    assert high == pytest.approx(min(1.0, expected[1]), abs=1e-9)
    scipy = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == pytest.approx((scipy.low, scipy.high), abs=1e-12)


def test_a_rate_counts_unknown_apart_and_has_no_interval_without_courses() -> None:
    counted = rate([True, False, None, True])
    assert (counted.n, counted.events, counted.unknown) == (3, 2, 1)
    assert counted.proportion == pytest.approx(2 / 3)
    empty = rate([None, None])
    assert (empty.n, empty.unknown, empty.proportion, empty.low) == (0, 2, None, None)


def test_responder_rates_by_group_are_counted_from_the_statuses() -> None:
    statuses = [
        ("crps-schwartzman-10day", "responder", "responder"),
        ("crps-schwartzman-10day", "responder", "non-responder"),
        ("crps-schwartzman-10day", "non-responder", "non-responder"),
        ("crps-schwartzman-10day", "unknown", "unknown"),
        ("asra-initial", "non-responder", "non-responder"),
    ]
    courses = [
        course(i, protocol_id=p, responder_30=r30, responder_50=r50)
        for i, (p, r30, r50) in enumerate(statuses, start=1)
    ]
    courses.append(course(99, status="in progress", responder_30="responder"))
    rows = {row.group: row for row in responder_table(courses, "protocol")}
    ten = rows["crps-schwartzman-10day"]
    assert (ten.courses, ten.at_30.n, ten.at_30.events, ten.at_30.unknown) == (4, 3, 2, 1)
    assert ten.at_50.events == 1
    assert (ten.at_30.low, ten.at_30.high) == pytest.approx(wilson_by_formula(2, 3))
    assert rows["asra-initial"].at_30.proportion == 0.0


# ---------------------------------------------------------------------------- bands


def test_bands_include_their_lower_edge_and_unknown_is_never_the_lowest() -> None:
    bands = registry_rules().bands.dose_mg_per_kg
    labels = band_labels(bands)
    assert labels[0] == "under 1 mg/kg" and labels[-1] == "20 mg/kg or more"
    assert band_of(0.99, bands) == "under 1 mg/kg"
    assert band_of(1.0, bands) == "1-2 mg/kg"
    assert band_of(20.0, bands) == "20 mg/kg or more"
    assert band_of(None, bands) == "unknown"


def test_the_cumulative_dose_is_unknown_from_a_course_of_unknown_dose_on() -> None:
    cumulative = cumulative_doses(
        [
            (3, 7, date(2025, 1, 1), "complete", 3.0),
            (1, 7, date(2024, 1, 1), "complete", 4.0),
            (5, 7, date(2024, 3, 1), "not given", None),
            (2, 7, date(2024, 6, 1), "complete", None),
            (4, 8, date(2024, 2, 1), "complete", 12.5),
        ]
    )
    assert cumulative == {1: 4.0, 5: 4.0, 2: None, 3: None, 4: 12.5}


def test_adverse_events_are_rated_by_cumulative_band() -> None:
    rows = [
        course(1, cumulative_mg_per_kg=3.0, side_effects=1),
        course(2, cumulative_mg_per_kg=3.0),
        course(3, cumulative_mg_per_kg=15.0, troublesome_side_effects=1, side_effects=1),
    ]
    bands = {row.band: row for row in adverse_events_by_cumulative_dose(rows)}
    assert bands["under 5 mg/kg"].courses == 2
    assert bands["under 5 mg/kg"].rates["any"].events == 1
    assert bands["10-20 mg/kg"].rates["troublesome"].proportion == 1.0


# ---------------------------------------------------------------------------- outcomes


def test_a_course_outcome_uses_the_outcome_definitions_unchanged() -> None:
    last = date(2025, 3, 10)
    diary = {last + timedelta(days=d): p for d, p in {1: 2, 2: 2, 3: 3, 5: 6, 6: 7}.items()}
    outcome = course_outcomes(7, {28: 5, 14: 3}, diary, last)
    assert outcome.follow_up_days == 14 and outcome.follow_up_nrs == 3
    assert outcome.responder_30 == responder(7, 3, 30).status == "responder"
    relief = relief_duration(7, diary, last, last + timedelta(days=182))
    assert (outcome.relief_status, outcome.relief_days) == (relief.status, relief.days)
    assert outcome.relief_status == "ended" and outcome.relief_days == 5
    assert outcome.auc is None and outcome.auc_status == "incomplete"


def test_without_a_session_given_every_outcome_is_unknown() -> None:
    outcome = course_outcomes(7, {7: 2}, {}, None)
    assert outcome.relief_status == "no data" and outcome.relief_days is None


# ---------------------------------------------------------------------------- regression


def simulated(n: int, beta_dose: float, beta_hours: float, seed: int) -> list[RegistryCourse]:
    """Courses whose relief is Weibull with proportional hazards, censored at random."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        dose, hours = rng.uniform(0.5, 30), rng.uniform(2, 100)
        u = 1 - rng.random()
        days = 30 * (-math.log(u) / math.exp(beta_dose * dose + beta_hours * hours)) ** (1 / 1.3)
        censor = rng.uniform(20, 200)
        ended = days <= censor
        out.append(
            course(
                i + 1,
                dose_mg_per_kg=dose,
                infusion_hours=hours,
                relief_status="ended" if ended else "censored",
                relief_days=max(1, round(min(days, censor))),
                relief_event=ended,
            )
        )
    return out


def test_with_fewer_than_ten_events_per_covariate_the_data_are_too_few() -> None:
    few = simulated(30, -0.04, -0.008, seed=3)[:15]
    result = relief_regression(few)
    assert result.status == "too few data"
    assert result.coefficients == ()
    assert result.message.startswith("Too few data")
    assert "20" in result.message and str(result.events) in result.message
    assert [f.code for f in result.findings] == ["registry:too-few-events"]


def test_the_regression_recovers_a_known_effect_within_its_interval() -> None:
    result = relief_regression(simulated(1500, -0.05, -0.01, seed=11))
    assert result.status == "fitted"
    effects = {c.covariate: c for c in result.coefficients}
    for name, beta in (("dose_mg_per_kg", -0.05), ("infusion_hours", -0.01)):
        c = effects[name]
        assert c.low is not None and c.high is not None
        assert c.low <= math.exp(beta) <= c.high, (name, c)
    json.dumps([vars(c) for c in result.coefficients], allow_nan=False)


def test_a_covariate_that_does_not_vary_is_not_fitted_and_says_why() -> None:
    same = [replace(c, infusion_hours=40.0) for c in simulated(200, -0.04, 0.0, seed=5)]
    result = relief_regression(same)
    assert result.status == "not fitted"
    assert "infusion hours does not vary" in result.message
    assert [f.code for f in result.findings] == ["registry:fit-failed"]


def test_exposure_groups_are_auc_bands_low_to_high_and_not_computed_last() -> None:
    from ketapath.domain.registry import NOT_COMPUTED, grouped

    courses = [
        course(1, exposure_auc=None),
        course(2, exposure_auc=25.0, exposure_status="computed"),
        course(3, exposure_auc=0.4, exposure_status="computed"),
        course(4, exposure_auc=3.0, exposure_status="computed"),
        course(5),  # never stored: not computed, never the lowest band
    ]
    groups = grouped(courses, "exposure")
    labels = [label for label, _ in groups]
    bands = registry_rules().bands.exposure_auc_mg_h_per_l
    assert labels == [
        band_of(0.4, bands),
        band_of(3.0, bands),
        band_of(25.0, bands),
        NOT_COMPUTED,
    ]
    assert labels[0] == "under 1 mg.h/L"
    assert [c.order_id for c in groups[-1][1]] == [1, 5]
