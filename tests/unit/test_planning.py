from __future__ import annotations

import math
from dataclasses import replace

import pytest

from ketapath.domain.errors import HardLimitExceeded, InvalidInput, UnknownItem
from ketapath.domain.orders import Course
from ketapath.domain.planning import DosingInputs, PlanOptions, course_to_dict, status
from ketapath.domain.planning import plan as plan_against
from ketapath.knowledge.library import default_library

LIBRARY = default_library()


def plan(protocol_id: str, dosing: DosingInputs, options: PlanOptions | None = None) -> Course:
    """Plan against the packaged default drug library."""
    return plan_against(protocol_id, dosing, options, library=LIBRARY)


def codes(course) -> set[str]:
    return {f.code for f in course.findings}


def test_schwartzman_gives_035_mg_per_kg_per_h_for_4_h_on_10_days() -> None:
    course = plan("crps-schwartzman-10day", DosingInputs(70))
    assert len(course.sessions) == 10
    assert [s.day for s in course.sessions] == list(range(10))
    step = course.sessions[0].steps[0]
    assert (step.start_min, step.end_min, step.rate_mg_per_h) == (0, 240, 24.5)
    assert course.sessions[0].total_mg == 98
    assert course.course_total_mg == 980
    assert {a.drug for a in course.adjuncts} == {"midazolam", "clonidine"}


def test_schwartzmans_25_mg_per_h_cap_is_applied_and_shown() -> None:
    course = plan("crps-schwartzman-10day", DosingInputs(90))
    assert course.sessions[0].steps[0].rate_mg_per_h == 25
    assert "protocol:cap-applied" in codes(course)
    assert any("25 mg/h" in c for c in course.caps_applied)


def test_ml_per_h_follows_the_bag_concentration() -> None:
    course = plan(
        "crps-schwartzman-10day", DosingInputs(70), PlanOptions(concentration_mg_per_ml=2)
    )
    step = course.sessions[0].steps[0]
    assert step.rate_ml_per_h == 12.25
    assert step.rate_mg_per_h == 24.5


def test_pump_rates_are_rounded_down_never_up() -> None:
    # 0.35 mg/kg/h x 66.7 kg = 23.345 mg/h -> 23.34 mL/h at 1 mg/mL (resolution 0.01 mL/h)
    course = plan("crps-schwartzman-10day", DosingInputs(66.7))
    step = course.sessions[0].steps[0]
    assert step.rate_ml_per_h == 23.34
    assert step.rate_mg_per_h <= 0.35 * 66.7


def test_the_guideline_start_gives_80_mg_over_more_than_2_h() -> None:
    course = plan("asra-initial", DosingInputs(70))
    session = course.sessions[0]
    assert session.total_mg == pytest.approx(80, abs=1e-6)
    assert session.duration_min > 120


def test_sigtermans_scales_22_mg_per_h_by_weight_over_70_kg() -> None:
    course = plan("crps-sigtermans-continuous", DosingInputs(70))
    step = course.sessions[0].steps[0]
    assert step.rate_mg_per_h == 22
    assert step.end_min == pytest.approx(4.2 * 1440)
    heavier = plan("crps-sigtermans-continuous", DosingInputs(84))
    assert heavier.sessions[0].steps[0].rate_mg_per_h == pytest.approx(26.4)


def test_amr_gives_80_mg_over_5_h_daily_for_7_days_with_gabapentin() -> None:
    course = plan("sci-amr-7day", DosingInputs(80))
    assert len(course.sessions) == 7
    assert course.sessions[0].steps[0].rate_mg_per_h == 16
    assert course.course_total_mg == 560
    gabapentin = next(a for a in course.adjuncts if a.drug == "gabapentin")
    assert (gabapentin.dose, gabapentin.unit) == (300, "mg")


def test_kang_gives_a_weight_based_bolus_and_midazolam() -> None:
    course = plan("mixed-kang-3session", DosingInputs(60))
    assert [s.day for s in course.sessions] == [0, 2, 4]
    assert course.sessions[0].bolus_mg == 12
    assert course.sessions[0].total_mg == pytest.approx(12 + 30)
    load = course.adjuncts[0]
    assert (load.drug, load.dose, load.unit) == ("midazolam", 6, "mg")


def test_goldberg_titrates_from_10_to_40_mg_per_h() -> None:
    course = plan("titrate-goldberg-5day", DosingInputs(90))
    rates = [s.rate_mg_per_h for s in course.sessions[0].steps]
    assert rates[0] == 10 and max(rates) == 40
    assert course.sessions[0].duration_min == 5 * 1440


def test_correll_starts_at_10_mg_per_h() -> None:
    course = plan("titrate-correll", DosingInputs(70))
    assert course.sessions[0].steps[0].rate_mg_per_h == 10


def test_the_subcutaneous_regimen_inducts_low_and_weans_at_half_rate() -> None:
    course = plan("inpatient-sc-anzca", DosingInputs(80))
    steps = course.sessions[0].steps
    assert course.route == "sc"
    assert steps[0].rate_mg_per_kg_per_h == pytest.approx(0.05)
    assert max(s.rate_mg_per_kg_per_h for s in steps) <= 0.5
    assert steps[-1].rate_mg_per_h == pytest.approx(steps[-2].rate_mg_per_h / 2)
    assert any("4 h" in n or "240" in n for n in course.notes)


def test_the_dose_ladder_starts_at_the_guideline_starting_dose_and_climbs_one_step_per_session():
    course = plan("dose-ladder", DosingInputs(70))
    first = course.sessions[0]
    assert first.total_mg == pytest.approx(80) and first.duration_min > 120
    per_kg = [s.steps[0].rate_mg_per_kg_per_h for s in course.sessions]
    assert per_kg == pytest.approx([80 / 4 / 70, 0.35, 0.5, 0.75, 1.0])
    assert per_kg == sorted(per_kg)
    assert course.sessions[0].condition == ""
    assert all("tolerated" in s.condition for s in course.sessions[1:])
    assert status(course) == "ready"


def test_a_heavy_patient_starts_the_ladder_at_half_a_mg_per_kg() -> None:
    course = plan("dose-ladder", DosingInputs(200))
    assert course.sessions[0].total_mg == pytest.approx(100)


def test_the_ladder_leaves_out_steps_above_the_library_soft_rate_for_a_heavy_patient() -> None:
    course = plan("dose-ladder", DosingInputs(150))
    assert max(s.steps[0].rate_mg_per_h for s in course.sessions) <= 100
    assert "protocol:ladder-adjusted" in codes(course)
    assert status(course) == "ready"


def test_the_dose_ladder_steps_and_ceiling_are_configurable() -> None:
    course = plan(
        "dose-ladder",
        DosingInputs(70),
        PlanOptions(
            ladder_steps_mg_per_kg_per_h=(0.15, 0.3, 0.45), ladder_ceiling_mg_per_kg_per_h=0.3
        ),
    )
    assert [s.steps[0].rate_mg_per_kg_per_h for s in course.sessions] == pytest.approx(
        [80 / 4 / 70, 0.3]
    )
    adjusted = [f.message for f in course.findings if f.code == "protocol:ladder-adjusted"]
    assert any("ceiling" in m for m in adjusted) and any("skipped (0.15" in m for m in adjusted)


def test_a_ladder_ceiling_below_the_starting_dose_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput, match="below the guideline starting dose") as refused:
        plan("dose-ladder", DosingInputs(70), PlanOptions(ladder_ceiling_mg_per_kg_per_h=0.1))
    assert refused.value.field == "ladder_ceiling"


def test_descending_ladder_steps_are_refused() -> None:
    with pytest.raises(InvalidInput, match="must not go down"):
        plan("dose-ladder", DosingInputs(70), PlanOptions(ladder_steps_mg_per_kg_per_h=(0.3, 0.2)))


def test_a_plan_over_a_hard_limit_is_refused_naming_the_limit_value_and_source() -> None:
    with pytest.raises(HardLimitExceeded) as info:
        plan(
            "dose-ladder",
            DosingInputs(70),
            PlanOptions(ladder_steps_mg_per_kg_per_h=(2.5,), ladder_ceiling_mg_per_kg_per_h=3),
        )
    message = info.value.message
    assert "hard limit of 2 mg/kg/h" in message
    assert "ASRA/AAPM/ASA consensus 2018, Table 6" in message


def test_the_icu_allows_rates_refused_elsewhere() -> None:
    options = dict(ladder_steps_mg_per_kg_per_h=(2.5,), ladder_ceiling_mg_per_kg_per_h=3)
    course = plan(
        "dose-ladder",
        DosingInputs(40),
        PlanOptions(setting="icu", override_by="Dr A", override_reason="ICU trial", **options),
    )
    assert course.sessions[1].steps[0].rate_mg_per_kg_per_h == pytest.approx(2.5)
    assert "protocol:setting-deviation" in course.override.codes


OVER_SOFT = PlanOptions(ladder_steps_mg_per_kg_per_h=(1.5,), ladder_ceiling_mg_per_kg_per_h=1.5)


def test_a_plan_over_a_soft_limit_needs_an_override() -> None:
    course = plan("dose-ladder", DosingInputs(60), OVER_SOFT)
    assert status(course) == "needs_override"
    assert "limit:rate_mg_per_kg_per_h:soft" in codes(course)


def test_an_override_is_recorded_with_name_reason_and_the_findings_it_accepts() -> None:
    course = plan(
        "dose-ladder",
        DosingInputs(60),
        replace(OVER_SOFT, override_by="Dr Jane Smith", override_reason="tolerated before"),
    )
    assert status(course) == "ready"
    assert course.override is not None
    assert course.override.physician == "Dr Jane Smith"
    assert course.override.reason == "tolerated before"
    assert "limit:rate_mg_per_kg_per_h:soft" in course.override.codes


def test_an_override_without_a_reason_is_refused() -> None:
    with pytest.raises(InvalidInput, match="both the physician's name and a reason"):
        plan("dose-ladder", DosingInputs(60), PlanOptions(override_by="Dr A"))


def test_a_setting_outside_the_protocol_is_a_deviation_needing_an_override() -> None:
    course = plan("crps-schwartzman-10day", DosingInputs(70), PlanOptions(setting="ward"))
    assert "protocol:setting-deviation" in codes(course)
    assert status(course) == "needs_override"


def test_ideal_weight_dosing_uses_devine() -> None:
    # Male, 180 cm: 50 + 2.3 x (70.866 - 60) = 74.99 kg
    course = plan(
        "crps-schwartzman-10day", DosingInputs(120, 180, "male"), PlanOptions(weight_basis="ideal")
    )
    assert course.dosing_weight_kg == pytest.approx(74.99, abs=0.01)
    assert course.weight_basis == "ideal"


def test_adjusted_weight_is_ideal_plus_40_percent_of_the_excess() -> None:
    course = plan(
        "crps-sigtermans-continuous",
        DosingInputs(120, 180, "male"),
        PlanOptions(weight_basis="adjusted"),
    )
    assert course.dosing_weight_kg == pytest.approx(74.99 + 0.4 * (120 - 74.99), abs=0.01)


def test_a_dosing_weight_is_never_above_the_actual_weight() -> None:
    course = plan(
        "crps-schwartzman-10day", DosingInputs(50, 190, "male"), PlanOptions(weight_basis="ideal")
    )
    assert course.dosing_weight_kg == 50


def test_ideal_weight_needs_height_and_sex() -> None:
    with pytest.raises(InvalidInput, match="height"):
        plan("asra-initial", DosingInputs(70), PlanOptions(weight_basis="ideal"))


@pytest.mark.parametrize("concentration", [0, -1, 150, 0.001, 5, float("nan")])
def test_a_strength_the_library_does_not_stock_is_refused_listing_the_stocked_ones(
    concentration,
) -> None:
    with pytest.raises(InvalidInput, match="choose one of 1, 2, 10 mg/mL") as refused:
        plan("asra-initial", DosingInputs(70), PlanOptions(concentration_mg_per_ml=concentration))
    assert refused.value.field == "concentration_mg_per_ml"


def test_a_step_below_the_pumps_minimum_rate_is_refused_saying_no_strength_fits() -> None:
    # 0.05 mg/kg/h x 2 kg = 0.1 mg/h is 0.01 mL/h at 10 mg/mL: below the syringe driver's 0.1
    with pytest.raises(HardLimitExceeded, match="No stocked strength fits") as refused:
        plan("inpatient-sc-anzca", DosingInputs(2))
    assert {f.code for f in refused.value.findings} == {"pump:below-minimum"}


def test_an_unknown_protocol_lists_the_known_ones() -> None:
    with pytest.raises(UnknownItem, match="asra-initial"):
        plan("no-such-protocol", DosingInputs(70))


@pytest.mark.parametrize("weight", [0, -5, 500])
def test_an_impossible_weight_is_refused(weight) -> None:
    with pytest.raises(InvalidInput, match="weight"):
        plan("asra-initial", DosingInputs(weight))


def test_the_json_form_has_the_documented_field_names() -> None:
    data = course_to_dict(plan("mixed-kang-3session", DosingInputs(70)))
    assert {
        "protocol_id",
        "sessions",
        "course_total_mg",
        "adjuncts",
        "dosing_weight_kg",
        "weight_basis",
        "findings",
        "status",
        "override",
    } <= data.keys()
    session = data["sessions"][0]
    assert {"session", "day", "bolus_mg", "steps", "total_mg"} <= session.keys()
    assert {"start_min", "end_min", "rate_mg_per_h", "rate_ml_per_h"} <= session["steps"][0].keys()
    assert math.isclose(sum(s["total_mg"] for s in data["sessions"]), data["course_total_mg"])


def test_a_tiny_ideal_weight_is_refused_cleanly_not_divided_by_zero() -> None:
    # Found by hypothesis: 1 kg, 102.2 cm, female, ideal weight basis gave a 0 kg dosing weight.
    with pytest.raises((InvalidInput, HardLimitExceeded)):
        plan(
            "asra-initial",
            DosingInputs(1.0, 102.2, "female"),
            PlanOptions(weight_basis="ideal", concentration_mg_per_ml=0.5),
        )


@pytest.mark.parametrize("concentration", [5e-324, 0.001, 101.0])
def test_a_bag_concentration_outside_the_pump_library_is_refused(concentration: float) -> None:
    # 5e-324 mg/mL gave an infinite rate in mL/h (and a 500 through the API)
    with pytest.raises(InvalidInput) as refused:
        plan("asra-initial", DosingInputs(72.0), PlanOptions(concentration_mg_per_ml=concentration))
    assert refused.value.field == "concentration_mg_per_ml"
