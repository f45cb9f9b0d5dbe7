"""Properties of the order calculator that must hold for every input (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ketapath.domain.errors import HardLimitExceeded, InvalidInput
from ketapath.domain.orders import Course
from ketapath.domain.planning import DosingInputs, PlanOptions, plan, status
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.library import default_library

KB = knowledge()
LIBRARY = default_library()
PROTOCOL_IDS = [p.id for p in KB.protocols.entries]
SLACK = 1 + 1e-9
SLOW_AND_FILTERED = [HealthCheck.too_slow, HealthCheck.filter_too_much]

weights = st.floats(min_value=0.5, max_value=400, allow_nan=False)
# Mostly stocked strengths (1, 2, 10 mg/mL), also unstocked ones and none (the pump's default).
stocked = st.sampled_from([None, 1, 2, 10])
unstocked = st.sampled_from([0.5, 5, 50, 100]) | st.floats(
    min_value=0.0001, max_value=1000, allow_nan=False
)
concentrations = st.one_of(stocked, stocked, stocked, unstocked)
medicine_lists = st.none() | st.lists(
    st.sampled_from(["diazepam 5 mg", "oxycodone", "lorazepam", "pregabalin", "clonazepam"]),
    max_size=3,
).map(tuple)
settings_ = st.sampled_from(["clinic", "ward", "icu"])
bases = st.sampled_from(["actual", "ideal", "adjusted"])
ladders = st.lists(
    st.floats(min_value=0.01, max_value=10, allow_nan=False), min_size=1, max_size=6
).map(lambda xs: tuple(sorted(xs)))


@st.composite
def requests(draw):
    protocol_id = draw(st.sampled_from(PROTOCOL_IDS))
    options = PlanOptions(
        setting=draw(settings_),
        weight_basis=draw(bases),
        concentration_mg_per_ml=draw(concentrations),
        ladder_steps_mg_per_kg_per_h=draw(ladders) if protocol_id == "dose-ladder" else None,
        ladder_ceiling_mg_per_kg_per_h=draw(st.floats(min_value=0.05, max_value=10))
        if protocol_id == "dose-ladder"
        else None,
        override_by=draw(st.sampled_from([None, "Dr Override"])),
        override_reason="property test",
    )
    dosing = DosingInputs(
        draw(weights),
        draw(st.floats(min_value=100, max_value=220)),
        draw(st.sampled_from(["male", "female"])),
        medicines=draw(medicine_lists),
    )
    return protocol_id, dosing, options


def build(protocol_id, dosing, options) -> Course | None:
    if options.override_by is None:
        options = PlanOptions(**{**options.__dict__, "override_reason": None})
    try:
        return plan(protocol_id, dosing, options, library=LIBRARY)
    except (HardLimitExceeded, InvalidInput):
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_AND_FILTERED)
@given(requests())
def test_no_input_yields_an_order_over_a_hard_limit(request) -> None:
    course = build(*request)
    assume(course is not None)
    limits = LIBRARY.setting(course.setting)
    w = course.dosing_weight_kg
    for session in course.sessions:
        assert session.bolus_mg / w <= limits.bolus_mg_per_kg.hard * SLACK
        assert session.total_mg / w <= limits.session_total_mg_per_kg.hard * SLACK
        for step in session.steps:
            assert step.rate_mg_per_h <= limits.rate_mg_per_h.hard * SLACK
            assert step.rate_mg_per_h / w <= limits.rate_mg_per_kg_per_h.hard * SLACK
    assert course.course_total_mg / w <= limits.course_total_mg_per_kg.hard * SLACK
    assert not [f for f in course.findings if f.severity == "hard"]


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_AND_FILTERED)
@given(requests())
def test_no_order_passes_an_adjunct_hard_limit(request) -> None:
    course = build(*request)
    assume(course is not None)
    limits = LIBRARY.setting(course.setting)
    by_drug: dict[tuple[str, str], list] = {}
    for a in course.adjuncts:
        by_drug.setdefault((a.drug, a.route), []).append(a)
    for (drug, route), orders in by_drug.items():
        entry = limits.adjunct(drug, route)
        if entry is None or orders[0].unit != entry.dose_unit:
            assert "adjunct:no-limit" in {f.code for f in course.findings}
            continue
        for a in orders:
            assert (a.dose_max if a.dose_max is not None else a.dose) <= entry.dose.hard * SLACK
        assert sum(a.session_total for a in orders) <= entry.session.hard * SLACK


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_AND_FILTERED)
@given(requests())
def test_no_order_runs_outside_its_pumps_range_or_at_a_strength_not_stocked(request) -> None:
    course = build(*request)
    assume(course is not None)
    pump = LIBRARY.pump_for(course.route, course.setting)
    assert pump is not None and pump.id == course.pump_id
    assert course.concentration_mg_per_ml in pump.concentrations_mg_per_ml
    for session in course.sessions:
        for step in session.steps:
            assert pump.min_rate_ml_per_h <= step.rate_ml_per_h <= pump.max_rate_ml_per_h
            expected = step.rate_ml_per_h * step.duration_min / 60
            assert math.isclose(step.volume_ml, expected, rel_tol=1e-6, abs_tol=1e-5)


@settings(max_examples=200, deadline=None)
@given(weight=st.floats(min_value=0.5, max_value=400), concentration=unstocked)
def test_a_strength_the_pump_does_not_stock_is_always_refused(weight, concentration) -> None:
    assume(concentration not in (1, 2, 10))
    for protocol_id in ("asra-initial", "inpatient-sc-anzca"):
        try:
            plan(
                protocol_id,
                DosingInputs(weight),
                PlanOptions(concentration_mg_per_ml=concentration),
                library=LIBRARY,
            )
        except InvalidInput as refused:
            assert refused.field == "concentration_mg_per_ml"
        else:
            raise AssertionError(f"{concentration} mg/mL was accepted")


@settings(max_examples=200, deadline=None)
@given(weight=st.floats(min_value=45, max_value=120), medicines=medicine_lists)
def test_the_guideline_starting_dose_never_needs_an_override_from_45_to_120_kg_in_clinic(
    weight, medicines
) -> None:
    course = plan("asra-initial", DosingInputs(weight, medicines=medicines), library=LIBRARY)
    assert course.setting == "clinic"
    assert status(course) == "ready"
    assert not [f for f in course.findings if f.severity in ("hard", "soft")]
    assert course.sessions[0].total_mg >= 80 * (1 - 1e-9)


@settings(max_examples=200, deadline=None)
@given(
    weight=st.floats(min_value=40, max_value=200),
    setting=settings_,
    fraction=st.floats(min_value=0, max_value=1),
)
def test_no_rate_inside_the_consensus_range_is_hard_refused_in_its_setting(
    weight, setting, fraction
) -> None:
    top = 7.0 if setting == "icu" else 2.0
    rate = 0.5 + fraction * (top - 0.5)
    course = plan(
        "dose-ladder",
        DosingInputs(weight, medicines=()),
        PlanOptions(
            setting=setting,
            ladder_steps_mg_per_kg_per_h=(rate,),
            ladder_ceiling_mg_per_kg_per_h=rate,
        ),
        library=LIBRARY,
    )
    assert not [f for f in course.findings if f.severity == "hard"]


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_AND_FILTERED)
@given(requests())
def test_mg_per_h_is_always_ml_per_h_times_the_concentration(request) -> None:
    course = build(*request)
    assume(course is not None)
    pump = LIBRARY.pump_for(course.route, course.setting)
    assert pump is not None
    resolution = pump.rate_resolution_ml_per_h
    for session in course.sessions:
        for step in session.steps:
            assert step.rate_mg_per_h == step.rate_ml_per_h * course.concentration_mg_per_ml
            assert step.rate_ml_per_h > 0
            ticks = step.rate_ml_per_h / resolution
            assert math.isclose(ticks, round(ticks), abs_tol=1e-6)


@settings(max_examples=200, deadline=None, suppress_health_check=SLOW_AND_FILTERED)
@given(requests())
def test_session_and_course_totals_add_up_from_the_orders(request) -> None:
    course = build(*request)
    assume(course is not None)
    for session in course.sessions:
        delivered = session.bolus_mg + sum(
            s.rate_mg_per_h * (s.end_min - s.start_min) / 60 for s in session.steps
        )
        assert math.isclose(session.total_mg, delivered, rel_tol=1e-6, abs_tol=1e-5)
        ends = [s.start_min for s in session.steps[1:]]
        assert ends == [s.end_min for s in session.steps[:-1]]
    assert math.isclose(
        course.course_total_mg, sum(s.total_mg for s in course.sessions), rel_tol=1e-9, abs_tol=1e-5
    )


@settings(max_examples=200, deadline=None, suppress_health_check=SLOW_AND_FILTERED)
@given(requests())
def test_a_course_is_ready_only_when_every_soft_finding_is_overridden(request) -> None:
    course = build(*request)
    assume(course is not None)
    soft = {f.code for f in course.findings if f.severity == "soft"}
    if soft and course.override is None:
        assert status(course) == "needs_override"
    else:
        assert status(course) == "ready"
        if soft:
            assert set(course.override.codes) == soft
            assert course.override.physician and course.override.reason


@settings(max_examples=200, deadline=None, suppress_health_check=SLOW_AND_FILTERED)
@given(st.sampled_from(PROTOCOL_IDS), weights, concentrations)
def test_the_pump_never_runs_faster_than_prescribed_or_capped(protocol_id, weight, conc) -> None:
    course = build(protocol_id, DosingInputs(weight), PlanOptions(concentration_mg_per_ml=conc))
    assume(course is not None)
    caps = KB.protocol(protocol_id).caps
    for session in course.sessions:
        for step in session.steps:
            if caps and caps.max_rate_mg_per_h:
                assert step.rate_mg_per_h <= caps.max_rate_mg_per_h * SLACK
            if caps and caps.max_rate_mg_per_kg_per_h:
                assert step.rate_mg_per_kg_per_h <= caps.max_rate_mg_per_kg_per_h * SLACK
