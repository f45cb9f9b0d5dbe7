"""Targeting: reach and hold a concentration within the drug-library limits."""

from __future__ import annotations

import pytest

from ketapath.pk import Covariates, PkInputError, target_concentration

PATIENT = Covariates(weight_kg=80, age_years=50)


@pytest.mark.parametrize("model_id", ["domino", "hijazi", "kamp", "otto-fanta", "perez-ruixo"])
@pytest.mark.parametrize("target", [50.0, 100.0, 150.0])
def test_a_plasma_target_is_reached_held_and_never_exceeded(model_id: str, target: float) -> None:
    scheme = target_concentration(
        model_id,
        PATIENT,
        target_ng_per_ml=target,
        duration_min=240,
        max_rate_mg_per_h=500,
        max_bolus_mg=100,
    )
    plasma_ng = scheme.prediction.plasma_mg_per_l * 1000
    assert plasma_ng.max() <= target * (1 + 1e-9)
    assert scheme.time_to_target_min is not None and scheme.time_to_target_min <= 30
    assert plasma_ng[-1] == pytest.approx(target, rel=2e-2)
    assert all(s.rate_mg_per_h <= 500 for s in scheme.steps)


@pytest.mark.parametrize("model_id", ["domino", "otto-fanta"])
def test_an_effect_site_target_is_reached_with_at_most_a_small_overshoot(model_id: str) -> None:
    scheme = target_concentration(
        model_id,
        PATIENT,
        target_ng_per_ml=100,
        duration_min=240,
        max_rate_mg_per_h=500,
        max_bolus_mg=100,
        site="effect_site",
    )
    effect_ng = scheme.prediction.effect_site_mg_per_l * 1000
    assert effect_ng.max() <= 100 * 1.01
    assert scheme.time_to_target_min is not None
    assert effect_ng[-1] == pytest.approx(100, rel=3e-2)


def test_tight_limits_slow_the_approach_and_are_reported() -> None:
    scheme = target_concentration(
        "domino",
        PATIENT,
        target_ng_per_ml=150,
        duration_min=240,
        max_rate_mg_per_h=20,
        max_bolus_mg=0,
    )
    assert "max_rate_mg_per_h" in scheme.limited_by
    assert scheme.bolus_mg == 0
    assert all(s.rate_mg_per_h <= 20 + 1e-9 for s in scheme.steps)
    assert scheme.prediction.plasma_mg_per_l.max() * 1000 <= 150 * (1 + 1e-9)


def test_a_target_of_zero_is_refused_naming_the_field() -> None:
    with pytest.raises(PkInputError, match="target_ng_per_ml"):
        target_concentration(
            "domino", PATIENT, target_ng_per_ml=0, duration_min=60, max_rate_mg_per_h=10
        )


def _multiple(value: float, step: float) -> bool:
    return abs(value / step - round(value / step)) < 1e-6


@pytest.mark.parametrize("model_id", ["domino", "kamp"])
def test_rates_and_bolus_are_rounded_down_to_the_pump_and_still_never_exceed(model_id: str) -> None:
    exact = target_concentration(
        model_id,
        PATIENT,
        target_ng_per_ml=100,
        duration_min=120,
        max_rate_mg_per_h=500,
        max_bolus_mg=100,
    )
    pump = target_concentration(
        model_id,
        PATIENT,
        target_ng_per_ml=100,
        duration_min=120,
        max_rate_mg_per_h=500,
        max_bolus_mg=100,
        rate_step_mg_per_h=0.5,
        bolus_step_mg=0.1,
    )
    assert all(_multiple(s.rate_mg_per_h, 0.5) for s in pump.steps)
    assert _multiple(pump.bolus_mg, 0.1) and pump.bolus_mg <= exact.bolus_mg
    assert pump.prediction.plasma_mg_per_l.max() * 1000 <= 100 * (1 + 1e-9)
    # what the pump can run is close to the exact scheme: within one step of its rate
    assert pump.prediction.plasma_mg_per_l[-1] * 1000 == pytest.approx(100, rel=3e-2)


def test_a_zero_pump_step_is_refused_naming_it() -> None:
    with pytest.raises(PkInputError, match="rate_step_mg_per_h"):
        target_concentration(
            "domino",
            PATIENT,
            target_ng_per_ml=50,
            duration_min=60,
            max_rate_mg_per_h=10,
            rate_step_mg_per_h=0,
        )
