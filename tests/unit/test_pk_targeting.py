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
