"""Properties of the opioid plan that must hold for every input (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ketapath.domain.errors import InvalidInput
from ketapath.domain.frequency import parse_frequency
from ketapath.domain.opioids import (
    TaperRequest,
    convert_to_single_opioid,
    oral_morphine_equivalents,
    taper_plan,
)
from ketapath.domain.patient import Medication
from ketapath.knowledge.clinical import knowledge

TABLE = knowledge().conversion_table("cdc-2022")
# Warm up once (units registry, the vocabulary's name index) so no example pays for it.
oral_morphine_equivalents(
    [
        Medication(name="Zomorph", dose=1, unit="tablet", route="oral"),
        Medication(name="codeine", dose=1, unit="mg", frequency="od", route="oral"),
        Medication(name="fentanyl", dose=1, unit="mcg/h", route="transdermal"),
    ]
)
FACTORS = [f for f in TABLE.factors]
TARGETS = [f for f in TABLE.factors if f.convert_to == "allowed"]
doses = st.floats(min_value=0.01, max_value=2000, allow_nan=False, allow_infinity=False)
frequencies = st.sampled_from(["od", "bd", "tds", "qds", "q4h", "every 12 hours", "nocte"])


def medicine(factor, dose: float, frequency: str) -> Medication:
    unit = "mcg/h" if factor.route == "transdermal" else "mg"
    return Medication(
        name=factor.opioid, dose=dose, unit=unit, frequency=frequency, route=factor.route
    )


@given(st.sampled_from(FACTORS), doses, frequencies, st.floats(min_value=0.1, max_value=10))
def test_ome_is_linear_in_the_dose(factor, dose, frequency, k) -> None:
    one = oral_morphine_equivalents([medicine(factor, dose, frequency)]).total_ome_mg_per_day
    scaled = oral_morphine_equivalents([medicine(factor, dose * k, frequency)])
    assert scaled.total_ome_mg_per_day == pytest.approx(one * k, rel=1e-9)


@given(st.lists(st.tuples(st.sampled_from(FACTORS), doses, frequencies), min_size=1, max_size=6))
def test_ome_is_additive_over_medicines(items) -> None:
    meds = [medicine(f, d, q) for f, d, q in items]
    together = oral_morphine_equivalents(meds)
    apart = sum(oral_morphine_equivalents([m]).total_ome_mg_per_day for m in meds)
    assert together.complete
    assert together.total_ome_mg_per_day == pytest.approx(apart, rel=1e-9)
    assert together.total_ome_mg_per_day == pytest.approx(
        sum(line.ome_mg_per_day or 0 for line in together.lines), rel=1e-12
    )


@given(
    st.lists(st.tuples(st.sampled_from(FACTORS), doses, frequencies), max_size=4),
    st.sampled_from(["prn", "sometimes", ""]),
)
def test_a_medicine_without_a_daily_dose_is_never_counted_as_zero(items, frequency) -> None:
    meds = [medicine(f, d, q) for f, d, q in items]
    meds.append(Medication(name="morphine", dose=10, unit="mg", frequency=frequency, route="po"))
    result = oral_morphine_equivalents(meds)
    assert not result.complete
    assert result.lines[-1].ome_mg_per_day is None


@given(
    st.floats(min_value=0.1, max_value=5000),
    st.sampled_from(TARGETS),
    st.floats(min_value=0, max_value=99.9),
)
def test_conversion_round_trips_to_the_reduced_total(ome, target, reduce) -> None:
    c = convert_to_single_opioid(ome, target.opioid, target.route, reduce)
    back = c.daily_dose * target.factor
    assert back == pytest.approx(ome * (1 - reduce / 100), rel=1e-9)
    assert c.daily_dose >= 0
    if target.route == "oral":
        med = Medication(
            name=target.opioid, dose=c.daily_dose, unit="mg", frequency="od", route="oral"
        )
        again = oral_morphine_equivalents([med]).total_ome_mg_per_day
        assert again == pytest.approx(c.reduced_ome_mg_per_day, rel=1e-9)


@st.composite
def taper_requests(draw):
    start = draw(st.floats(min_value=0.5, max_value=1000))
    round_to = draw(st.none() | st.sampled_from([0.5, 1, 2.5, 5, 10]))
    assume(round_to is None or round_to <= start)
    basis = draw(st.sampled_from(["original", "current"]))
    floor = draw(st.sampled_from([0.0, 0.0, start * 0.25, start * 0.5]))
    if basis == "current" and round_to is None and floor == 0:
        floor = start * 0.1
    return TaperRequest(
        opioid_id="morphine",
        route="oral",
        start_daily_dose=start,
        unit="mg",
        step_percent=draw(st.floats(min_value=1, max_value=100)),
        every_days=draw(st.integers(min_value=1, max_value=60)),
        start_date=date(2025, 1, 1),
        round_to=round_to,
        floor=floor,
        basis=basis,
    )


@settings(max_examples=300, deadline=None)
@given(taper_requests())
def test_a_taper_never_rises_never_goes_negative_and_ends_at_the_floor(request) -> None:
    try:
        plan = taper_plan(request)
    except InvalidInput as exc:  # only a plan longer than the step limit may be refused
        assert exc.field == "step_percent"
        return
    doses = [s.daily_dose for s in plan.steps]
    assert doses, "a plan has at least one step"
    assert all(d >= 0 for d in doses)
    assert all(d >= request.floor - 1e-9 for d in doses)
    previous = [request.start_daily_dose, *doses[:-1]]
    assert all(d <= p + 1e-9 for d, p in zip(doses, previous, strict=True))
    assert doses[-1] == pytest.approx(request.floor, abs=1e-9)
    assert all(d > request.floor for d in doses[:-1])
    dates = [s.date for s in plan.steps]
    assert dates == [
        request.start_date + timedelta(days=i * request.every_days) for i in range(len(dates))
    ]


@settings(max_examples=200, deadline=None)
@given(taper_requests())
def test_rounding_never_exceeds_the_unrounded_plan(request) -> None:
    assume(request.round_to is not None)
    try:
        rounded = taper_plan(request)
    except InvalidInput:
        return
    unrounded_request = TaperRequest(
        **{**request.__dict__, "round_to": None, "floor": request.floor or 1e-6}
    )
    try:
        exact = taper_plan(unrounded_request)
    except InvalidInput:
        return
    for step, ref in zip(rounded.steps, exact.steps, strict=False):
        assert step.daily_dose <= ref.daily_dose + 1e-9
        assert step.daily_dose >= max(ref.daily_dose - request.round_to, request.floor) - 1e-9


@given(st.integers(min_value=1, max_value=48))
def test_every_n_hours_is_24_over_n_doses_a_day(n) -> None:
    for text in (f"every {n} hours", f"q{n}h", f"{n} hourly"):
        assert parse_frequency(text).doses_per_day == pytest.approx(24 / n)


# ------------------------------------------------------------------ medicine vocabulary

VOCAB = knowledge().medicines
OPIOIDS = set(knowledge().opioid_ids)
COMBINATIONS = [
    (p, s)
    for p in VOCAB.products
    if p.is_combination and any(i in OPIOIDS for i in p.ingredients)
    for s in p.strengths
    if s.unit == "mg"
]
unknown_names = st.text(alphabet="bdfghjkqvwxz", min_size=4, max_size=10)


@settings(deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(FACTORS), doses, frequencies), max_size=4),
    st.sampled_from(["prn", "", "when needed"]) | unknown_names,
)
def test_ome_is_never_zero_when_some_opioid_is_not_converted(items, trouble) -> None:
    meds = [medicine(f, d, q) for f, d, q in items]
    if trouble in ("prn", "", "when needed"):
        meds.append(Medication(name="oxycodone", dose=0, unit="mg", frequency=trouble))
    else:
        meds.append(Medication(name=trouble, dose=1, unit="tablet", frequency="od"))
    result = oral_morphine_equivalents(meds)
    assert not result.complete
    assert result.total_ome_mg_per_day is None or result.total_ome_mg_per_day > 0
    assert result.not_converted


@settings(deadline=None)
@given(
    st.sampled_from(COMBINATIONS),
    st.integers(min_value=1, max_value=4),
    frequencies,
)
def test_a_combination_products_ome_is_the_sum_over_its_ingredients(combo, count, frequency):
    product, strength = combo
    name = f"{product.names[0]} {strength.text}" if len(product.strengths) > 1 else product.names[0]
    whole = oral_morphine_equivalents(
        [Medication(name=name, dose=count, unit="tablets", frequency=frequency, route="oral")]
    )
    parts = oral_morphine_equivalents(
        [
            Medication(
                name=ingredient,
                dose=count * amount,
                unit="mg",
                frequency=frequency,
                route="oral",
            )
            for ingredient, amount in zip(product.ingredients, strength.amounts, strict=True)
        ]
    )
    assert whole.complete == parts.complete
    if parts.total_ome_mg_per_day is None:
        assert whole.total_ome_mg_per_day is None
    else:
        assert whole.total_ome_mg_per_day == pytest.approx(parts.total_ome_mg_per_day, rel=1e-9)


@settings(deadline=None)
@given(unknown_names, st.sampled_from(["tablets", "mg", "patch", "mL", "capsules"]))
def test_an_unknown_medicine_never_counts_as_zero(name, unit) -> None:
    result = oral_morphine_equivalents(
        [Medication(name=name, dose=2, unit=unit, frequency="bd", route="oral")]
    )
    assert result.total_ome_mg_per_day is None
    assert result.unrecognised == (name,) and not result.complete
    assert any("not recognised: check by hand" in f.message for f in result.findings)
