"""Targeting, for any patient, target, limits and pump resolution: never above the target
(plasma), never above the rate or bolus limit, every rate and the bolus a whole number of
pump steps, and the rate steps contiguous from the start."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketapath.pk import Covariates, target_concentration

MODELS = st.sampled_from(["domino", "hijazi", "kamp", "otto-fanta"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model_id=MODELS,
    weight=st.floats(45, 140),
    age=st.floats(18, 85),
    target=st.floats(20, 200),
    max_rate=st.floats(1, 400),
    max_bolus=st.floats(0, 40),
    concentration=st.sampled_from([1.0, 2.0, 10.0]),
)
def test_a_pump_scheme_never_exceeds_target_or_limits(
    model_id: str,
    weight: float,
    age: float,
    target: float,
    max_rate: float,
    max_bolus: float,
    concentration: float,
) -> None:
    rate_step = 0.01 * concentration  # 0.01 mL/h at the bag concentration (pump.yaml)
    scheme = target_concentration(
        model_id,
        Covariates(weight_kg=weight, age_years=age, sex="female", height_cm=165),
        target_ng_per_ml=target,
        duration_min=90,
        max_rate_mg_per_h=max_rate,
        max_bolus_mg=max_bolus,
        rate_step_mg_per_h=rate_step,
        bolus_step_mg=0.1,
    )
    assert scheme.prediction.plasma_mg_per_l.max() * 1000 <= target * (1 + 1e-9)
    assert scheme.bolus_mg <= max_bolus + 1e-12
    assert abs(scheme.bolus_mg / 0.1 - round(scheme.bolus_mg / 0.1)) < 1e-6
    for step in scheme.steps:
        assert 0 < step.rate_mg_per_h <= max_rate + 1e-9
        assert abs(step.rate_mg_per_h / rate_step - round(step.rate_mg_per_h / rate_step)) < 1e-6
        assert step.end_min > step.start_min
    assert all(
        a.end_min <= b.start_min for a, b in zip(scheme.steps, scheme.steps[1:], strict=False)
    )
