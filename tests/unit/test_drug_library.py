"""The clinic's drug library in planning: stocked strengths, pump rate ranges, volumes to be
infused, per-setting limits that follow the consensus, adjunct limits, a patient's own
benzodiazepine, the dose findings, and a library passed in rather than read from the package."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ketapath.domain.adjuncts import benzodiazepines_in
from ketapath.domain.errors import HardLimitExceeded, InvalidInput
from ketapath.domain.orders import Course
from ketapath.domain.planning import DosingInputs, PlanOptions, build_course, plan, status
from ketapath.knowledge.clinical import Protocol, knowledge
from ketapath.knowledge.library import DrugLibrary, default_library

LIBRARY = default_library()
KB = knowledge()


def planned(
    protocol_id: str,
    weight_kg: float,
    library: DrugLibrary = LIBRARY,
    medicines: tuple[str, ...] | None = (),
    **options: Any,
) -> Course:
    dosing = DosingInputs(weight_kg, medicines=medicines)
    return plan(protocol_id, dosing, PlanOptions(**options), library=library)


def codes(course: Course) -> set[str]:
    return {f.code for f in course.findings}


def changed(edit: Any) -> DrugLibrary:
    """The default library with one edit applied to its plain data."""
    data = copy.deepcopy(LIBRARY.document())
    edit(data)
    return DrugLibrary.model_validate(data)


# ------------------------------------------------------------------ stocked strengths, pumps


def test_the_reported_0_001_mg_per_ml_order_is_refused_with_the_stocked_strengths() -> None:
    # issue 8: this printed "status: ready" at 26,666 mL/h
    with pytest.raises(InvalidInput) as refused:
        planned("asra-initial", 70, concentration_mg_per_ml=0.001)
    assert refused.value.field == "concentration_mg_per_ml"
    assert "1, 2, 10 mg/mL" in refused.value.message


def test_a_subcutaneous_course_is_offered_only_the_syringe_drivers_strength() -> None:
    with pytest.raises(InvalidInput, match="choose one of 10 mg/mL"):
        planned("inpatient-sc-anzca", 70, concentration_mg_per_ml=1)
    course = planned("inpatient-sc-anzca", 70)
    assert (course.pump_id, course.concentration_mg_per_ml) == ("syringe-driver-sc", 10)


def test_a_chosen_strength_that_runs_above_the_pump_maximum_is_refused_naming_one_that_works():
    options = dict(
        setting="icu", ladder_steps_mg_per_kg_per_h=(7,), ladder_ceiling_mg_per_kg_per_h=7
    )
    with pytest.raises(HardLimitExceeded, match="would work: 2, 10 mg/mL") as refused:
        planned("dose-ladder", 150, concentration_mg_per_ml=1, **options)
    assert [f.code for f in refused.value.findings] == ["pump:above-maximum"]
    assert "above the maximum" in refused.value.findings[0].message


def test_without_a_chosen_strength_the_weakest_that_fits_the_pump_is_used_and_said() -> None:
    options = dict(
        setting="icu", ladder_steps_mg_per_kg_per_h=(7,), ladder_ceiling_mg_per_kg_per_h=7
    )
    course = planned("dose-ladder", 150, **options)
    assert course.concentration_mg_per_ml == 2
    assert "pump:strength-changed" in codes(course)
    pump = LIBRARY.pump_for("iv", "icu")
    assert pump is not None
    rates = [step.rate_ml_per_h for s in course.sessions for step in s.steps]
    assert pump.min_rate_ml_per_h <= min(rates) and max(rates) <= pump.max_rate_ml_per_h


def test_every_step_carries_its_volume_to_be_infused() -> None:
    course = planned("crps-schwartzman-10day", 70)
    step = course.sessions[0].steps[0]
    assert step.volume_ml == pytest.approx(step.rate_ml_per_h * 4)
    assert course.sessions[0].infusion_volume_ml == pytest.approx(98)


def test_a_library_without_a_pump_for_the_route_refuses_naming_the_setting() -> None:
    library = changed(lambda d: d["pumps"][1].update(settings=["ward"]))
    with pytest.raises(InvalidInput, match="no pump for SC infusions in the day clinic"):
        planned("inpatient-sc-anzca", 70, library=library, setting="clinic")


# ------------------------------------------------------------------ limits follow the consensus


@pytest.mark.parametrize("weight", [45, 50, 53, 60, 70, 100, 120])
def test_the_guideline_starting_dose_plans_without_an_override_in_clinic(weight: float) -> None:
    course = planned("asra-initial", weight)
    assert status(course) == "ready"
    assert not [f for f in course.findings if f.severity in ("hard", "soft")]


@pytest.mark.parametrize("weight", [40, 45, 50, 70, 100, 120, 150, 200])
@pytest.mark.parametrize(("setting", "top"), [("clinic", 2), ("ward", 2), ("icu", 7)])
def test_no_rate_inside_the_consensus_range_is_hard_refused_in_its_setting(
    weight: float, setting: str, top: float
) -> None:
    for rate in (0.5, 1, 2, top):
        course = planned(
            "dose-ladder",
            weight,
            setting=setting,
            ladder_steps_mg_per_kg_per_h=(rate,),
            ladder_ceiling_mg_per_kg_per_h=rate,
        )
        assert course.sessions[-1].steps[0].rate_mg_per_kg_per_h == pytest.approx(rate, rel=1e-3)
        assert not [f for f in course.findings if f.severity == "hard"]


@pytest.mark.parametrize("weight", [45, 70, 120, 200])
def test_a_bolus_of_0_35_mg_per_kg_is_not_refused(weight: float) -> None:
    raw = KB.protocol("mixed-kang-3session").model_dump()
    raw["bolus"]["value"] = 0.35
    course = build_course(
        Protocol.model_validate(raw),
        DosingInputs(weight, medicines=()),
        PlanOptions(),
        KB,
        LIBRARY,
    )
    assert course.sessions[0].bolus_mg == pytest.approx(0.35 * weight, abs=0.1)
    assert not [f for f in course.findings if f.severity == "hard"]


def test_the_course_is_checked_against_the_library_it_is_given() -> None:
    strict = changed(lambda d: d["settings"][0]["rate_mg_per_kg_per_h"].update(soft=None, hard=0.3))
    with pytest.raises(HardLimitExceeded, match=r"hard limit of 0\.3 mg/kg/h"):
        planned("asra-initial", 50, library=strict)
    course = planned("asra-initial", 50)
    assert course.library is not None
    assert (course.library.version, course.library.digest) == (0, LIBRARY.digest())


# ------------------------------------------------------------------ adjuncts


def test_midazolam_at_0_1_mg_per_kg_for_100_kg_is_capped_and_needs_an_override() -> None:
    # issue 8: this was 10 mg with no finding; the review describes 2-7.5 mg boluses
    course = planned("mixed-kang-3session", 100)
    loading = course.adjuncts[0]
    assert (loading.drug, loading.dose) == ("midazolam", 7.5)
    assert "capped at 7.5 mg" in loading.basis
    assert "limit:midazolam-iv_dose:soft" in codes(course)
    assert status(course) == "needs_override"


def test_an_adjunct_over_its_hard_limit_refuses_the_course() -> None:
    def lower(d: dict[str, Any]) -> None:
        d["settings"][0]["adjuncts"][0]["dose"].update(soft=None, hard=2)

    with pytest.raises(HardLimitExceeded, match="midazolam") as refused:
        planned("sci-amr-7day", 70, library=changed(lower))
    assert "limit:midazolam-iv_dose:hard" in {f.code for f in refused.value.findings}


def test_a_session_total_of_an_adjunct_counts_every_dose_of_the_session() -> None:
    course = planned("titrate-goldberg-5day", 70, setting="ward")
    midazolam = next(a for a in course.adjuncts if a.drug == "midazolam")
    assert (midazolam.doses_per_session, midazolam.session_total) == (30, 120)
    gabapentin = next(a for a in planned("sci-amr-7day", 70).adjuncts if a.drug == "gabapentin")
    assert (gabapentin.doses_per_session, gabapentin.session_total) == (3, 900)


def test_an_adjunct_the_library_does_not_list_is_checked_by_hand_not_passed() -> None:
    library = changed(lambda d: d["settings"][0].update(adjuncts=[]))
    course = planned("crps-schwartzman-10day", 70, library=library)
    unlisted = [f for f in course.findings if f.code == "adjunct:no-limit"]
    assert {f.subject for f in unlisted} == {"midazolam", "clonidine"}
    assert all(f.severity == "warning" and "by hand" in f.message for f in unlisted)


def test_a_patients_own_benzodiazepine_is_weighed_against_a_midazolam_adjunct() -> None:
    course = planned("crps-schwartzman-10day", 70, medicines=("Diazepam 5 mg", "oxycodone"))
    found = [f for f in course.findings if f.code == "adjunct:benzodiazepine-already-taken"]
    assert len(found) == 1 and found[0].severity == "soft"
    assert "Diazepam 5 mg" in found[0].message and "midazolam" in found[0].message
    assert status(course) == "needs_override"
    assert "adjunct:benzodiazepine-already-taken" not in codes(
        planned("crps-schwartzman-10day", 70, medicines=("oxycodone",))
    )


def test_unknown_medicines_are_said_to_be_unchecked_not_taken_as_none() -> None:
    course = planned("crps-schwartzman-10day", 70, medicines=None)
    assert "adjunct:medicines-unknown" in codes(course)
    assert "adjunct:medicines-unknown" not in codes(planned("asra-initial", 70, medicines=None))


def test_benzodiazepines_are_recognised_by_one_function_from_the_interactions_knowledge() -> None:
    names = ["Lorazepam 1 mg", "clonazepam", "pregabalin", "midazolam", "carbamazepine"]
    assert benzodiazepines_in(names, KB) == ["Lorazepam 1 mg", "clonazepam", "midazolam"]


# ------------------------------------------------------------------ dose findings


def test_a_session_below_the_dose_with_evidence_of_effect_gets_a_warning_citing_both_sources():
    course = planned("mixed-kang-3session", 60)
    below = [f for f in course.findings if f.code == "dose:below-evidence"]
    assert len(below) == 1 and below[0].severity == "warning"
    assert "Sessions 1, 2, 3" in below[0].message
    refs = {c.ref for c in below[0].citations}
    assert {"cohen-2018-ketamine-consensus", "clark-2020-ketamine-editorial"} <= refs
    assert below[0].measure is not None and below[0].measure.limit == 80


def test_the_guideline_starting_dose_is_not_below_the_dose_with_evidence() -> None:
    for weight in (45, 70, 120, 160):
        assert "dose:below-evidence" not in codes(planned("asra-initial", weight))


def test_above_160_kg_80_mg_is_under_half_a_mg_per_kg_and_says_so() -> None:
    assert "dose:below-evidence" in codes(planned("asra-initial", 170))


def test_a_warning_does_not_gate_the_order() -> None:
    course = planned("crps-schwartzman-10day", 50)
    assert "dose:below-evidence" in codes(course)
    assert status(course) == "ready"


@pytest.mark.parametrize("weight", [45, 50, 70, 100, 120, 150, 200])
def test_no_session_of_the_dose_ladder_is_below_the_dose_with_evidence(weight: float) -> None:
    course = planned("dose-ladder", weight)
    assert "dose:below-evidence" not in codes(course)
    totals = [s.total_mg for s in course.sessions]
    assert totals == sorted(totals) and totals[0] == pytest.approx(max(80, 0.5 * weight))


def test_the_docs_table_of_every_protocol_at_light_and_heavy_weights_is_current() -> None:
    from pathlib import Path

    from ketapath.domain.library_check import outcomes_markdown, protocol_outcomes

    docs = Path(__file__).resolve().parents[2] / "docs" / "clinical-core.md"
    table = outcomes_markdown(protocol_outcomes(LIBRARY, KB))
    assert table in docs.read_text(encoding="utf-8")
    assert "REFUSED" not in table and "invalid" not in table


def test_every_outcome_code_comes_with_its_plain_words() -> None:
    from ketapath.domain.library_check import protocol_outcomes

    outcomes = protocol_outcomes(LIBRARY, KB)
    assert any(o.codes for o in outcomes)
    for o in outcomes:
        assert len(o.messages) == len(o.codes)
        assert all(m and ":" not in m.split(" ")[0] for m in o.messages)
