"""The PK engine refuses what no human body or infusion device can be (pk_input_bounds.yaml)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import brentq

from ketapath.knowledge.pk_models import load_pk_input_bounds
from ketapath.pk import (
    Bolus,
    Covariates,
    Infusion,
    PkInputError,
    Regimen,
    get_model,
    predict,
    predict_population,
    target_concentration,
)
from ketapath.pk.models import bisect_root
from ketapath.pk.simulate import MAX_OUTPUT_TIMES
from ketapath.pk.system import bolus_response

BOUNDS = load_pk_input_bounds()


def test_every_bound_has_its_source() -> None:
    for name in ("weight", "age", "height", "rate", "bolus", "time"):
        source = getattr(BOUNDS, f"{name}_source")
        assert source.cite and source.note


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("weight_kg", 5e-324),
        ("weight_kg", 0.1),
        ("weight_kg", 1e308),
        ("age_years", 131),
        ("height_cm", 5),
        ("height_cm", 1e6),
    ],
)
def test_a_patient_no_human_body_has_is_refused(field: str, value: float) -> None:
    values = {"weight_kg": 70.0, field: value}
    with pytest.raises(PkInputError, match=field):
        Covariates(**values)


def test_a_patient_at_the_bounds_is_accepted() -> None:
    Covariates(weight_kg=BOUNDS.weight_kg.minimum, age_years=0, height_cm=BOUNDS.height_cm.minimum)
    Covariates(weight_kg=BOUNDS.weight_kg.maximum, age_years=130, height_cm=280)


def test_a_rate_or_bolus_no_infusion_device_delivers_is_refused() -> None:
    with pytest.raises(PkInputError, match="rate_mg_per_h"):
        Infusion(0, 240, 1e300)
    with pytest.raises(PkInputError, match="dose_mg"):
        Bolus(0, BOUNDS.max_bolus_mg * 1.01)
    with pytest.raises(PkInputError, match="rate_mg_per_h"):
        Regimen.parse(["0:240:1e300"])
    Infusion(0, 240, BOUNDS.max_rate_mg_per_h)  # at the bound: accepted


def test_times_more_than_a_year_after_the_first_dose_are_refused() -> None:
    with pytest.raises(PkInputError, match="end_min"):
        Infusion(0, BOUNDS.max_time_min + 1, 10)
    with pytest.raises(PkInputError, match="times_min"):
        predict("domino", Covariates(weight_kg=70), Regimen.bolus(0, 10), [0, 1e9])


def test_a_grid_beyond_the_computing_bound_is_refused_before_it_is_computed() -> None:
    times = np.arange(MAX_OUTPUT_TIMES + 1, dtype=np.float64) * 0.5
    with pytest.raises(PkInputError, match="output times"):
        predict("domino", Covariates(weight_kg=70), Regimen.bolus(0, 10), times)
    with pytest.raises(PkInputError, match="values per output"):
        predict_population(
            "otto-fanta", Covariates(weight_kg=70), Regimen.bolus(0, 10), [0, 60], n=10**12
        )


def test_a_week_s_target_with_an_interval_longer_than_a_day_is_refused() -> None:
    patient = Covariates(weight_kg=70)
    common = {"target_ng_per_ml": 100.0, "max_rate_mg_per_h": 100.0, "max_bolus_mg": 0.0}
    with pytest.raises(PkInputError, match="interval_min"):
        target_concentration("kamp", patient, duration_min=10080, interval_min=2000, **common)
    with pytest.raises(PkInputError, match="interval_min"):
        target_concentration("kamp", patient, duration_min=60, interval_min=120, **common)
    with pytest.raises(PkInputError, match="max_rate_mg_per_h"):
        target_concentration(
            "kamp", patient, duration_min=60, **{**common, "max_rate_mg_per_h": 1e300}
        )


@pytest.mark.parametrize("model_id", ["kamp", "otto-fanta", "perez-ruixo"])
def test_ke0_by_bisection_is_the_ke0_scipy_s_brentq_finds(model_id: str) -> None:
    model = get_model(model_id)
    peak = model.entry.effect_site.time_to_peak_min
    assert peak is not None
    base = model._parameters(
        np.array([model.reference_patient().weight_kg]), np.zeros((1, 0)), [], ke0=1.0
    )

    def gap(log_ke0: float) -> float:
        cp, ce = bolus_response(replace(base, ke0_per_min=np.array([math.exp(log_ke0)])), peak)
        return cp - ce

    expected = math.exp(brentq(gap, math.log(1e-4), math.log(1e3), xtol=1e-14, rtol=1e-14))
    assert model.ke0_per_min == pytest.approx(expected, rel=1e-12)


def test_bisection_needs_a_sign_change() -> None:
    with pytest.raises(ValueError):
        bisect_root(lambda x: x * x + 1, -1.0, 1.0, xtol=1e-9)
    assert bisect_root(lambda x: x - 0.3, 0.0, 1.0, xtol=1e-14) == pytest.approx(0.3, abs=1e-13)


def test_a_target_interval_of_5e_324_min_is_refused_not_divided_by() -> None:
    with pytest.raises(PkInputError, match="interval_min"):
        target_concentration(
            "domino",
            Covariates(weight_kg=72),
            target_ng_per_ml=100,
            duration_min=5e-324,
            interval_min=5e-324,
            max_rate_mg_per_h=0,
            max_bolus_mg=0,
        )
