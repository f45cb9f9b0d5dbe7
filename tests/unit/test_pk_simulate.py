"""Exact simulation: physical laws the predictions must obey, summaries, populations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketapath.pk import Covariates, PkInputError, Regimen, get_model, predict, predict_population

PATIENT = Covariates(weight_kg=70, age_years=40, sex="male", height_cm=178)


ALL_MODELS = ["domino", "clements", "hijazi", "kamp", "otto-fanta", "perez-ruixo"]


@pytest.mark.parametrize("model_id", ALL_MODELS)
def test_a_long_infusion_reaches_rate_over_clearance(model_id: str) -> None:
    model = get_model(model_id)
    rate = 20.0
    result = predict(model, PATIENT, Regimen.infusion(0, 60 * 24 * 30, rate), [60 * 24 * 29])
    clearance_l_per_min = model.parameters(PATIENT).total_clearance_l_per_min[0]
    steady = rate / 60 * model.dose_fraction / clearance_l_per_min
    assert result.plasma_mg_per_l[0] == pytest.approx(steady, rel=1e-3)
    assert result.effect_site_mg_per_l[0] == pytest.approx(steady, rel=1e-3)


@pytest.mark.parametrize("model_id", ["domino", "kamp", "otto-fanta", "perez-ruixo"])
def test_the_exact_auc_of_a_dose_is_dose_over_clearance(model_id: str) -> None:
    model = get_model(model_id)
    result = predict(model, PATIENT, Regimen.infusion(0, 30, 40), [0, 60 * 24 * 20])
    clearance = model.parameters(PATIENT).total_clearance_l_per_min[0]
    assert result.summary().auc_mg_min_per_l == pytest.approx(
        20 * model.dose_fraction / clearance, rel=1e-6
    )


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.1, 10), start=st.floats(0, 500), duration=st.floats(1, 600))
def test_concentrations_scale_linearly_with_the_dose(
    scale: float, start: float, duration: float
) -> None:
    times = np.linspace(0, start + duration + 300, 37)
    base = predict("otto-fanta", PATIENT, Regimen.infusion(start, start + duration, 10), times)
    scaled = predict(
        "otto-fanta", PATIENT, Regimen.infusion(start, start + duration, 10 * scale), times
    )
    np.testing.assert_allclose(
        scaled.plasma_mg_per_l, base.plasma_mg_per_l * scale, rtol=1e-9, atol=1e-15
    )
    assert base.norketamine_mg_per_l is not None and scaled.norketamine_mg_per_l is not None
    np.testing.assert_allclose(
        scaled.norketamine_mg_per_l, base.norketamine_mg_per_l * scale, rtol=1e-9, atol=1e-15
    )


def test_two_regimens_given_together_add_up() -> None:
    a = Regimen.infusion(0, 120, 15)
    b = Regimen.bolus(30, 10) + Regimen.infusion(200, 260, 30)
    times = np.arange(0, 600, 3.0)
    both = predict("domino", PATIENT, a + b, times).plasma_mg_per_l
    apart = (
        predict("domino", PATIENT, a, times).plasma_mg_per_l
        + predict("domino", PATIENT, b, times).plasma_mg_per_l
    )
    np.testing.assert_allclose(both, apart, rtol=1e-10, atol=1e-15)


def test_an_even_grid_gives_the_same_values_as_single_points() -> None:
    regimen = Regimen.daily(days=3, start_min_of_day=100, duration_min=240, rate_mg_per_h=25)
    grid = np.arange(0, 3 * 1440, 1.0)
    dense = predict("otto-fanta", PATIENT, regimen, grid)
    picks = np.array([0, 99, 100, 101, 339, 340, 341, 1600, 3000, 4319])
    sparse = predict("otto-fanta", PATIENT, regimen, grid[picks])
    np.testing.assert_allclose(dense.plasma_mg_per_l[picks], sparse.plasma_mg_per_l, rtol=1e-11)
    np.testing.assert_allclose(
        dense.effect_site_mg_per_l[picks], sparse.effect_site_mg_per_l, rtol=1e-11
    )


def test_a_bolus_shows_at_its_own_time_and_nothing_before() -> None:
    result = predict("clements", PATIENT, Regimen.bolus(10, 17.5), [0, 9.999, 10])
    assert result.plasma_mg_per_l[0] == 0 and result.plasma_mg_per_l[1] == 0
    v1 = get_model("clements").parameters(PATIENT).volumes_l[0, 0]
    assert result.plasma_mg_per_l[2] == pytest.approx(17.5 / v1)


def test_the_effect_site_lags_plasma_while_it_rises_and_leads_it_after_the_stop() -> None:
    result = predict("domino", PATIENT, Regimen.infusion(0, 60, 30), [5, 90])
    assert result.effect_site_mg_per_l[0] < result.plasma_mg_per_l[0]
    assert result.effect_site_mg_per_l[1] > result.plasma_mg_per_l[1]


@pytest.mark.parametrize("times", [[-1, 5], [5, 5], [10, 5], [float("nan")], []])
def test_negative_repeated_or_unsorted_times_are_refused(times: list[float]) -> None:
    with pytest.raises(PkInputError, match="times_min"):
        predict("domino", PATIENT, Regimen.infusion(0, 60, 10), times)


def test_the_summary_reports_cmax_time_above_and_analgesia_after_the_course() -> None:
    regimen = Regimen.daily(days=5, start_min_of_day=0, duration_min=240, rate_mg_per_h=24.5)
    times = np.arange(0, 5 * 1440, 1.0)
    result = predict("otto-fanta", PATIENT, regimen, times)
    summary = result.summary(threshold_mg_per_l=0.05)
    assert summary.cmax_mg_per_l == pytest.approx(result.plasma_mg_per_l.max())
    assert 0 < summary.time_above_threshold_min < 5 * 240 + 5 * 60
    after = summary.analgesia_after_course
    assert after is not None
    weeks = list(after.values())
    assert weeks == sorted(weeks, reverse=True) and 0 < weeks[0] < 1


def test_analgesia_for_a_racemic_model_is_driven_by_the_s_share_and_says_so() -> None:
    regimen = Regimen.infusion(0, 6000, 20)
    racemic = predict("domino", PATIENT, regimen, [6000])
    assert racemic.analgesia is not None
    assert any("CRPS" in w for w in racemic.warnings)
    model = get_model("domino")
    assert model.analgesia_driver_fraction == model.analgesia.racemic_to_s_fraction  # type: ignore[union-attr]


def test_a_population_gives_percentiles_that_bracket_the_median() -> None:
    regimen = Regimen.daily(days=2, start_min_of_day=0, duration_min=240, rate_mg_per_h=24.5)
    result = predict_population(
        "otto-fanta", PATIENT, regimen, np.arange(0, 2880, 10.0), n=300, seed=7
    )
    assert result.n_patients == 300
    p5, p50, p95 = result.percentiles((5, 50, 95))
    assert np.all(p5 <= p50) and np.all(p50 <= p95)
    assert np.any(p95 > p5 * 1.1)


def test_patients_without_variability_each_get_their_typical_prediction() -> None:
    people = [Covariates(weight_kg=w) for w in (50, 70, 110)]
    regimen = Regimen.infusion(0, 240, 20)
    times = np.arange(0, 480, 5.0)
    group = predict_population("hijazi", people, regimen, times, variability=False)
    for i, person in enumerate(people):
        single = predict("hijazi", person, regimen, times)
        np.testing.assert_allclose(group.plasma_mg_per_l[i], single.plasma_mg_per_l, rtol=1e-12)


def test_a_per_kg_regimen_gives_each_patient_their_weight_times_the_dose() -> None:
    people = [Covariates(weight_kg=w) for w in (55, 90)]
    per_kg = Regimen.infusion(0, 240, 0.35)
    times = np.arange(0, 400, 10.0)
    group = predict_population("kamp", people, per_kg, times, variability=False, per_kg=True)
    for i, person in enumerate(people):
        single = predict("kamp", person, Regimen.infusion(0, 240, 0.35 * person.weight_kg), times)
        np.testing.assert_allclose(group.plasma_mg_per_l[i], single.plasma_mg_per_l, rtol=1e-12)


def test_a_patient_record_from_the_clinical_core_can_be_used_directly() -> None:
    from ketapath.domain.patient import patient_from_dict

    record, _ = patient_from_dict(
        {"weight_kg": 64, "sex": "female", "birth_date": "1980-05-01", "height_cm": 160},
        origin="test",
    )
    cov = Covariates.from_patient(record)
    assert cov.weight_kg == 64 and cov.age_years is not None and cov.age_years > 40
    assert predict("kamp", record, Regimen.infusion(0, 60, 10), [60]).plasma_mg_per_l[0] > 0


@settings(max_examples=30, deadline=None)
@given(
    segments=st.lists(
        st.tuples(st.floats(0, 900), st.floats(0.5, 400), st.floats(0, 120)), min_size=1, max_size=4
    ),
    bolus=st.tuples(st.floats(0, 900), st.floats(0, 30)),
    offset=st.floats(0, 50),
    step=st.floats(0.25, 20),
)
def test_any_even_grid_agrees_with_point_by_point_evaluation(
    segments: list[tuple[float, float, float]],
    bolus: tuple[float, float],
    offset: float,
    step: float,
) -> None:
    regimen = Regimen.from_infusion_record([(a, a + d, r) for a, d, r in segments], boluses=[bolus])
    grid = offset + step * np.arange(int(1500 / step))
    dense = predict("otto-fanta", PATIENT, regimen, grid, analgesia=False)
    picks = np.unique(np.linspace(0, len(grid) - 1, 7).astype(int))
    single = [predict("otto-fanta", PATIENT, regimen, [grid[i]], analgesia=False) for i in picks]
    for i, s in zip(picks, single, strict=True):
        for a, b in (
            (dense.plasma_mg_per_l[i], s.plasma_mg_per_l[0]),
            (dense.effect_site_mg_per_l[i], s.effect_site_mg_per_l[0]),
        ):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-15)
