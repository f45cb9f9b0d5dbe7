"""Properties of the order calculator that must hold for every input (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ketapath.domain.errors import HardLimitExceeded, InvalidInput
from ketapath.domain.planning import DosingInputs, PlanOptions, plan, status
from ketapath.knowledge.clinical import knowledge

KB = knowledge()
PROTOCOL_IDS = [p.id for p in KB.protocols.entries]
SLACK = 1 + 1e-9

weights = st.floats(min_value=0.5, max_value=400, allow_nan=False)
concentrations = st.sampled_from([0.5, 1, 2, 5, 10, 50, 100]) | st.floats(
    min_value=0.01, max_value=100, allow_nan=False
)
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
    )
    return protocol_id, dosing, options


def build(protocol_id, dosing, options):
    if options.override_by is None:
        options = PlanOptions(**{**options.__dict__, "override_reason": None})
    try:
        return plan(protocol_id, dosing, options)
    except (HardLimitExceeded, InvalidInput):
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_no_input_yields_an_order_over_a_hard_limit(request) -> None:
    course = build(*request)
    assume(course is not None)
    limits = KB.limits(course.setting)
    w = course.dosing_weight_kg
    for session in course.sessions:
        assert session.bolus_mg / w <= limits.bolus_mg_per_kg.hard * SLACK
        assert session.total_mg / w <= limits.session_total_mg_per_kg.hard * SLACK
        for step in session.steps:
            assert step.rate_mg_per_h <= limits.rate_mg_per_h.hard * SLACK
            assert step.rate_mg_per_h / w <= limits.rate_mg_per_kg_per_h.hard * SLACK
    assert course.course_total_mg / w <= limits.course_total_mg_per_kg.hard * SLACK


@settings(max_examples=300, deadline=None)
@given(requests())
def test_mg_per_h_is_always_ml_per_h_times_the_concentration(request) -> None:
    course = build(*request)
    assume(course is not None)
    resolution = KB.pump_settings.rate_resolution_ml_per_h
    for session in course.sessions:
        for step in session.steps:
            assert step.rate_mg_per_h == step.rate_ml_per_h * course.concentration_mg_per_ml
            assert step.rate_ml_per_h > 0
            ticks = step.rate_ml_per_h / resolution
            assert math.isclose(ticks, round(ticks), abs_tol=1e-6)


@settings(max_examples=200, deadline=None)
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


@settings(max_examples=200, deadline=None)
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


@settings(max_examples=200, deadline=None)
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
