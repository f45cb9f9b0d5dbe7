"""The clinical logic of signing: dosing facts, what changed, the weight's age, consent, and the
drug-library check of a signed course at new facts."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from tests.conftest import base_patient

from ketapath.domain.errors import InvalidInput
from ketapath.domain.patient import patient_from_dict
from ketapath.domain.planning import DosingInputs, PlanOptions, course_to_dict, plan
from ketapath.domain.signing import (
    changed_facts,
    changes_text,
    consent_finding,
    dosing_fact_labels,
    dosing_facts,
    limits_now,
    sessions_from_course,
    stale_finding,
    weight_findings,
)
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.library import default_library

TODAY = date(2026, 3, 2)


def test_only_the_weight_is_a_dosing_fact_on_actual_body_weight() -> None:
    assert dosing_facts(68, 168, "female", "actual") == {"weight_kg": 68.0}
    assert dosing_fact_labels("actual") == ("weight",)


@pytest.mark.parametrize("basis", ["ideal", "adjusted"])
def test_height_and_sex_are_dosing_facts_where_they_give_the_ideal_weight(basis: str) -> None:
    assert dosing_facts(68, 168, "female", basis) == {
        "weight_kg": 68.0,
        "height_cm": 168.0,
        "sex": "female",
    }
    assert dosing_fact_labels(basis) == ("weight", "height", "sex")


def test_a_changed_weight_reads_as_what_was_signed_and_what_the_record_says_now() -> None:
    changes = changed_facts({"weight_kg": 68.0}, {"weight_kg": 90.0})
    assert [c.fact for c in changes] == ["weight_kg"]
    assert changes_text(changes) == "signed at 68 kg; the record now says 90 kg"
    confirmed = changed_facts({"weight_kg": 90.0}, {"weight_kg": 40.0}, since="confirmed")
    assert changes_text(confirmed) == "confirmed at 90 kg; the record now says 40 kg"


def test_the_same_number_written_as_an_integer_is_not_a_change() -> None:
    assert changed_facts({"weight_kg": 68.0}, {"weight_kg": 68}) == ()


def test_a_height_change_does_not_count_when_the_height_is_not_a_dosing_fact() -> None:
    signed = dosing_facts(68, 168, "female", "actual")
    assert changed_facts(signed, dosing_facts(68, 180, "female", "actual")) == ()


def test_a_height_that_appears_or_a_sex_that_changes_is_a_change_on_ideal_weight() -> None:
    signed = dosing_facts(68, None, "female", "ideal")
    changes = changed_facts(signed, dosing_facts(68, 170, "male", "ideal"))
    assert [c.text for c in changes] == [
        "signed with no height recorded; the record now says 170 cm",
        "signed for sex female; the record now says male",
    ]


def test_a_stale_order_finding_needs_a_physician_and_says_what_changed() -> None:
    found = stale_finding(changed_facts({"weight_kg": 68.0}, {"weight_kg": 90.0}))
    assert found.code == "order:stale" and found.severity == "soft"
    assert "signed at 68 kg; the record now says 90 kg" in found.message
    assert found.citations


def test_a_weight_without_its_date_is_a_warning_never_taken_as_recent() -> None:
    (found,) = weight_findings(None, TODAY)
    assert found.code == "order:weight-date-not-recorded" and found.severity == "warning"


def test_a_weight_is_old_after_the_days_of_the_clinic_policy() -> None:
    days = int(knowledge().policy_rule("weight-max-age").value)
    assert weight_findings(TODAY - timedelta(days=days), TODAY) == []
    (found,) = weight_findings(TODAY - timedelta(days=days + 1), TODAY)
    assert found.code == "order:weight-out-of-date" and found.severity == "warning"
    assert f"{days + 1} days before {TODAY.isoformat()}" in found.message
    assert [c.ref for c in found.citations] == ["ketapath-clinic-policy"]


@pytest.mark.parametrize(
    ("consent", "words"),
    [("pending", "not yet asked"), ("refused", "refused"), ("unable", "unable to consent")],
)
def test_consent_not_recorded_as_given_stops_signing_and_says_what_to_do(
    consent: str, words: str
) -> None:
    found = consent_finding(consent)
    assert found is not None and found.severity == "hard"
    assert found.code == "order:consent-not-given"
    assert f"'{words}'" in found.message and "record the patient's consent" in found.message
    assert consent_finding("given") is None


LIBRARY = default_library()


def _signed_course(weight_kg: float, protocol: str = "asra-initial") -> dict[str, object]:
    return course_to_dict(
        plan(protocol, DosingInputs(weight_kg, 168, "female", 45), library=LIBRARY)
    )


def test_a_stored_course_reads_back_as_the_sessions_it_was_made_of() -> None:
    course = plan("crps-schwartzman-10day", DosingInputs(72, 168, "female", 45), library=LIBRARY)
    assert sessions_from_course(course_to_dict(course)) == course.sessions


def test_a_signed_course_at_the_same_weight_has_the_same_limit_findings() -> None:
    # 80 mg over 3 h at 25 kg is 1.07 mg/kg/h: over the clinic's soft rate limit
    course = plan("asra-initial", DosingInputs(25, 168, "female", 45), library=LIBRARY)
    limit_codes = [f.code for f in course.findings if f.code.startswith("limit:")]
    assert "limit:rate_mg_per_kg_per_h:soft" in limit_codes
    findings = limits_now(course_to_dict(course), 25, 168, "female", LIBRARY)
    assert [f.code for f in findings] == limit_codes


def test_a_signed_course_at_a_much_lower_weight_passes_a_hard_limit() -> None:
    # 80 mg over 3 h is 26.7 mg/h: at 10 kg that is 2.7 mg/kg/h, over the clinic's 2 mg/kg/h
    findings = limits_now(_signed_course(68), 10, 168, "female", LIBRARY)
    assert "limit:rate_mg_per_kg_per_h:hard" in {f.code for f in findings}


def test_an_ideal_weight_course_cannot_be_checked_once_the_record_has_no_height() -> None:
    course = course_to_dict(
        plan(
            "asra-initial",
            DosingInputs(90, 170, "male", 45),
            PlanOptions(weight_basis="ideal"),
            library=LIBRARY,
        )
    )
    with pytest.raises(InvalidInput) as caught:
        limits_now(course, 90, None, "male", LIBRARY)
    assert caught.value.field == "height_cm"


def test_the_record_takes_the_date_of_weighing_and_the_side_of_the_pain() -> None:
    patient, warnings = patient_from_dict(
        base_patient(weight_measured_on="2026-01-05", laterality="left")
    )
    assert patient.weight_measured_on == date(2026, 1, 5) and patient.laterality == "left"
    assert warnings == []
    assert patient_from_dict(base_patient())[0].laterality == "unknown"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weight_measured_on": "2999-01-01"}, "in the future"),
        ({"birth_date": "1980-01-01", "weight_measured_on": "1979-12-31"}, "before the birth"),
        ({"laterality": "up"}, "laterality"),
    ],
)
def test_a_date_of_weighing_or_a_side_that_cannot_be_is_refused(
    changes: dict[str, str], field: str
) -> None:
    data = base_patient(**changes)
    if "birth_date" in changes:
        data.pop("age_years")
    with pytest.raises(InvalidInput, match=field):
        patient_from_dict(data)
