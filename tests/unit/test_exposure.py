"""Predicted exposure of a session (ketapath.domain.exposure): doses from an order or a log,
the model chosen, curves with peak and AUC, and a plan compared with what was given."""

from __future__ import annotations

import numpy as np
import pytest

from ketapath import pk
from ketapath.domain.errors import InvalidInput, UnknownItem
from ketapath.domain.exposure import (
    BolusDose,
    InfusionSegment,
    SessionDoses,
    as_given_exposure,
    choose_model,
    compare_exposure,
    exposure_grid,
    model_card,
    predict_exposure,
    session_doses,
)
from ketapath.domain.planning import DosingInputs, course_to_dict, plan
from ketapath.knowledge.library import default_library

PATIENT = pk.Covariates(weight_kg=72, age_years=58, sex="female", height_cm=168)
SESSION = SessionDoses((InfusionSegment(0, 240, 25.2),), (BolusDose(0, 7.0),))


def _course(protocol_id: str) -> dict[str, object]:
    dosing = DosingInputs(72, 168, "female", 58)
    return course_to_dict(plan(protocol_id, dosing, library=default_library()))


def test_the_clinic_rule_takes_the_first_model_whose_study_range_holds_the_patient() -> None:
    assert choose_model(PATIENT) == ("perez-ruixo", "clinic rule")
    # 200 kg is beyond Perez-Ruixo (39-170 kg) and Otto (53-88 kg): Kamp has no weight range
    assert choose_model(pk.Covariates(weight_kg=200, age_years=40)) == ("kamp", "clinic rule")
    # a patient outside every model gets the first, with its warning
    child = pk.Covariates(weight_kg=30, age_years=10)
    assert choose_model(child) == ("perez-ruixo", "clinic rule")
    found = predict_exposure(child, SESSION)
    assert [f.code for f in found.findings] == ["exposure:outside-model-range"] * 2
    assert "below the perez-ruixo model's range" in found.findings[0].message


def test_a_model_asked_for_is_used_and_an_unknown_one_is_refused_naming_the_field() -> None:
    assert choose_model(PATIENT, "kamp") == ("kamp", "request")
    with pytest.raises(UnknownItem) as refused:
        predict_exposure(PATIENT, SESSION, model_id="no-such-model")
    assert refused.value.field == "model"
    assert "known models: domino" in refused.value.message


def test_the_model_card_names_the_source_population_limitations_and_verification() -> None:
    card = model_card("otto-fanta")
    assert card.citation.startswith("Otto et al. 2021, Table 3")
    assert "seed" not in card.citation.lower()
    assert "48 healthy adult volunteers" in card.population
    assert any("half of a racemic dose is S-ketamine" in item for item in card.limitations)
    assert any(item.startswith("Effect site: Not a published value") for item in card.limitations)
    assert "nlmixr2lib" in card.verification
    assert card.metabolite == "S-norketamine"
    assert "first of Perez-Ruixo 2021, Otto 2021 and Kamp 2020" in card.choice_rule


def test_plasma_effect_site_and_norketamine_in_ng_per_ml_with_peak_and_auc() -> None:
    found = predict_exposure(PATIENT, SESSION, model_id="otto-fanta")
    engine = pk.predict("otto-fanta", PATIENT, SESSION.regimen(), found.times_min)
    np.testing.assert_allclose(found.plasma.concentrations_ng_per_ml, engine.plasma_mg_per_l * 1000)
    assert found.norketamine is not None and engine.norketamine_mg_per_l is not None
    np.testing.assert_allclose(
        found.norketamine.concentrations_ng_per_ml, engine.norketamine_mg_per_l * 1000
    )
    assert [c.label for c in found.curves] == [
        "S-ketamine, plasma",
        "S-ketamine, effect site",
        "S-norketamine",
    ]
    plasma = found.plasma
    assert plasma.peak_at_min == 240  # the end of the infusion, a point of the grid
    assert plasma.peak_ng_per_ml == pytest.approx(float(np.max(engine.plasma_mg_per_l)) * 1000)
    summary = engine.summary()
    assert plasma.auc_exact and plasma.auc_ng_h_per_ml == pytest.approx(
        summary.auc_mg_min_per_l * 1000 / 60, rel=1e-12
    )
    assert not found.effect_site.auc_exact
    assert found.doses.total_mg == pytest.approx(7 + 25.2 * 4)


def test_a_racemic_model_without_a_metabolite_has_no_norketamine_curve() -> None:
    found = predict_exposure(PATIENT, SESSION, model_id="kamp")
    assert found.norketamine is None
    assert [c.label for c in found.curves] == ["ketamine, plasma", "ketamine, effect site"]


def test_the_grid_runs_six_hours_past_the_last_dose_and_holds_every_dose_event() -> None:
    doses = SessionDoses((InfusionSegment(0, 180.045011, 26.66),), (BolusDose(12.5, 5),))
    times = exposure_grid([doses])
    assert times[0] == 0 and times[-1] == pytest.approx(540.045011)
    assert {12.5, 180.045011} <= set(times.tolist())
    assert np.all(np.diff(times) > 0)
    assert len(times) <= 600 + 4
    # a 4-day infusion is drawn at a coarser step
    long = SessionDoses((InfusionSegment(0, 5760, 22),))
    assert np.diff(exposure_grid([long]))[0] == 15


def test_a_grid_finer_than_the_bound_is_refused_naming_step_min() -> None:
    with pytest.raises(InvalidInput) as refused:
        exposure_grid([SESSION], until_min=10_000, step_min=0.5)
    assert refused.value.field == "step_min"
    with pytest.raises(InvalidInput) as beyond:
        exposure_grid([SESSION], until_min=10**7)
    assert beyond.value.field == "until_min"


def test_session_doses_of_an_order_are_its_bolus_and_rate_steps_from_the_session_start() -> None:
    course = _course("crps-schwartzman-10day")
    third = session_doses(course, 3)
    sessions = course["sessions"]
    assert isinstance(sessions, list)
    steps = sessions[2]["steps"]
    assert [(s.start_min, s.end_min, s.rate_mg_per_h) for s in third.infusions] == [
        (s["start_min"], s["end_min"], s["rate_mg_per_h"]) for s in steps
    ]
    assert third.total_mg == pytest.approx(sessions[2]["total_mg"], rel=1e-6)
    with pytest.raises(InvalidInput) as refused:
        session_doses(course, 11)
    assert refused.value.field == "session"
    assert "has 10 session(s)" in refused.value.message


def test_a_subcutaneous_course_is_predicted_as_intravenous_with_a_warning() -> None:
    doses = session_doses(_course("inpatient-sc-anzca"), 1)
    assert doses.route == "sc"
    found = predict_exposure(PATIENT, doses)
    route = [f for f in found.findings if f.code == "exposure:route-not-modelled"]
    assert route and "overstates early peaks" in route[0].message


def test_a_log_equal_to_the_plan_gives_the_same_curves_and_no_differences() -> None:
    course = _course("asra-initial")
    planned = session_doses(course, 1)
    logged = as_given_exposure(PATIENT, planned.infusions, planned.boluses)
    predicted = predict_exposure(PATIENT, planned)
    for a, b in zip(predicted.curves, logged.curves, strict=True):
        np.testing.assert_array_equal(a.concentrations_ng_per_ml, b.concentrations_ng_per_ml)
    compared = compare_exposure(PATIENT, planned, planned)
    assert all(d.peak_difference_ng_per_ml == 0 for d in compared.differences)
    assert all(d.auc_difference_ng_h_per_ml == 0 and d.auc_ratio == 1 for d in compared.differences)


def test_a_one_hour_pause_gives_less_than_the_plan_on_one_grid() -> None:
    planned = SessionDoses((InfusionSegment(0, 240, 24),))
    given = SessionDoses(
        (
            InfusionSegment(0, 90, 24),
            InfusionSegment(90, 150, 0),  # paused for a side effect
            InfusionSegment(150, 240, 24),
        )
    )
    compared = compare_exposure(PATIENT, planned, given, model_id="kamp")
    np.testing.assert_array_equal(compared.planned.times_min, compared.given.times_min)
    plasma = next(d for d in compared.differences if d.key == "plasma")
    assert plasma.auc_difference_ng_h_per_ml < 0 and plasma.peak_difference_ng_per_ml < 0
    assert plasma.auc_ratio is not None and 0.6 < plasma.auc_ratio < 0.9
    assert compared.given.doses.total_mg == pytest.approx(24 * 3)


def test_zero_length_segments_of_a_log_give_nothing_and_are_accepted() -> None:
    with_blip = as_given_exposure(
        PATIENT, [InfusionSegment(0, 60, 20), InfusionSegment(60, 60, 40)], model_id="domino"
    )
    without = as_given_exposure(PATIENT, [InfusionSegment(0, 60, 20)], model_id="domino")
    np.testing.assert_array_equal(
        with_blip.plasma.concentrations_ng_per_ml, without.plasma.concentrations_ng_per_ml
    )


@pytest.mark.parametrize(
    ("segment", "field"),
    [
        (InfusionSegment(-5, 60, 20), "infusion start_min"),
        (InfusionSegment(60, 30, 20), "infusion end_min"),
        (InfusionSegment(0, 60, 1e9), "infusion rate_mg_per_h"),
        (InfusionSegment(0, 60, float("nan")), "infusion rate_mg_per_h"),
    ],
)
def test_a_log_segment_no_pump_can_deliver_is_refused_naming_it(
    segment: InfusionSegment, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        as_given_exposure(PATIENT, [segment])
    assert refused.value.field == field


def test_a_bolus_over_a_syringe_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        as_given_exposure(PATIENT, [], [BolusDose(0, 6000)])
    assert refused.value.field == "bolus dose_mg"


def test_the_doses_given_count_from_the_first_dose_and_a_running_pump_to_now() -> None:
    from datetime import UTC, datetime, timedelta

    from ketapath.domain.exposure import DeliveryLog, doses_given

    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    log = DeliveryLog(
        segments=(
            (t0 + timedelta(minutes=5), t0 + timedelta(minutes=65), 20.0),
            (t0 + timedelta(minutes=65), t0 + timedelta(minutes=125), 0.0),  # a pause
            (t0 + timedelta(minutes=125), None, 30.0),  # still running
        ),
        boluses=((t0, 10.0),),
        at=t0 + timedelta(minutes=185),
    )
    doses, origin = doses_given(log)
    assert origin == t0  # the bolus came first
    assert [(s.start_min, s.end_min, s.rate_mg_per_h) for s in doses.infusions] == [
        (5.0, 65.0, 20.0),
        (125.0, 185.0, 30.0),
    ]
    assert doses.total_mg == 10.0 + 20.0 + 30.0
    nothing, no_start = doses_given(DeliveryLog((), (), t0))
    assert no_start is None and nothing.total_mg == 0 and not nothing.infusions
