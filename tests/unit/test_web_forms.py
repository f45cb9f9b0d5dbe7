"""The forms helper (ketapath.web.forms): every problem of a form at once, in a clinician's
words, by the form's field, with the bounds of the knowledge data."""

from __future__ import annotations

import math
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from ketapath.domain.errors import OutOfBounds
from ketapath.domain.patient import EARLIEST_DATE, Medication, Patient
from ketapath.knowledge.bounds import input_bounds
from ketapath.services.errors import InvalidInput, NotFound
from ketapath.services.validation import validate
from ketapath.web.forms import (
    NUMBER_LENGTH,
    FormErrors,
    brief,
    date_limits,
    day_text,
    max_length,
    plain,
    rule_message,
    validated,
)
from ketapath.web.pages import number

TODAY = date(2026, 6, 1)
LABELS = {
    "name": "Name",
    "birth_date": "Date of birth",
    "sex": "Sex",
    "weight_kg": "Weight",
    "height_cm": "Height",
}


def between(label: str, bound_id: str) -> str:
    """The expected words for a bounded number, from the knowledge data (not written here)."""
    bound = input_bounds()[bound_id]
    return (
        f"{label} must be between {brief(bound.minimum)} and {brief(bound.maximum)} {bound.unit}."
    )


def test_numbers_are_shown_briefly_never_as_hundreds_of_digits():
    assert brief(1e300) == "1e+300"
    assert brief(2**31 - 1) == "2,147,483,647"
    assert brief(0.2) == "0.2" and brief(650) == "650" and brief(12.5) == "12.5"
    assert len(brief(5e-324)) < 12
    assert number(1e300) == "1e+300"  # the pages' number filter
    assert number(12.5) == "12.5" and number(80.0) == "80"


def test_every_problem_of_a_record_is_reported_at_once_in_the_forms_order_and_words():
    errors = FormErrors(LABELS)
    errors.require({"name": " "}, "name")
    data = {"weight_kg": 0, "birth_date": "1800-01-01", "height_cm": 5000}
    assert validated(errors, Patient, data, context={"today": TODAY}) is None
    assert [(p.field, p.message) for p in errors.problems] == [
        ("name", "Name is required."),
        ("birth_date", f"Date of birth cannot be before {day_text(EARLIEST_DATE)}."),
        ("sex", "Sex is required."),
        ("weight_kg", between("Weight", "weight_kg")),
        ("height_cm", between("Height", "height_cm")),
    ]
    text = " ".join(p.message for p in errors.problems)
    assert "Input should" not in text and "weight_kg" not in text and "Value error" not in text


def test_a_field_keeps_its_first_problem():
    errors = FormErrors(LABELS)
    errors.add("name", "first")
    errors.add("name", "second")
    assert errors.get("name") == "first" and len(errors) == 1


def test_text_too_long_says_the_limit_and_the_length():
    errors = FormErrors(LABELS)
    validated(errors, Patient, {"name": "x" * 10_000, "sex": "female", "weight_kg": 70})
    limit = max_length(Patient, "name")
    assert errors.get("name") == (
        f"Name can be at most {limit:,} characters long; this has 10,000."
    )


def test_the_rules_of_the_record_are_said_in_words():
    assert (
        rule_message(OutOfBounds("", kind="in_future", today=TODAY), "Weighed on")
        == f"Weighed on cannot be in the future (today is {day_text(TODAY)})."
    )
    assert (
        rule_message(OutOfBounds("", kind="before_birth", birth=date(1970, 3, 4)), "Day")
        == "Day cannot be before the date of birth (4 March 1970)."
    )
    assert day_text(EARLIEST_DATE) == "1 January 1900"


def test_a_rule_of_the_whole_record_is_shown_at_the_field_it_concerns():
    errors = FormErrors(LABELS)
    validated(errors, Patient, {"sex": "female", "weight_kg": 70}, context={"today": TODAY})
    assert errors.get("birth_date").startswith("Date of birth is required (or the age")
    medicine = FormErrors({"unit": "Unit in medicine row 1"})
    validated(medicine, Medication, {"name": "morphine", "dose": 10})
    assert medicine.get("unit").startswith("Unit in medicine row 1 is required with a dose")


def test_an_impossible_dose_is_refused_in_words_with_the_number_shown_briefly():
    errors = FormErrors({"dose": "Dose"})
    validated(errors, Medication, {"name": "morphine", "dose": 1e300, "unit": "mg"})
    bound = input_bounds()["medicine_mass_g"]
    assert errors.get("dose").startswith(
        f"Dose: 1e+300 mg is more than {bound.maximum:g} g, above any medicine dose"
    )


def test_a_services_problems_are_placed_by_the_pages_mapping():
    rows = {"medications[0].dose": "med_dose_2"}
    errors = FormErrors(
        {"weight_kg": "Weight", "med_dose_2": "Dose in medicine row 3"},
        where=lambda path: rows.get(path, path if path == "weight_kg" else ""),
        root="patient",
    )
    document = {
        "sex": "female",
        "age_years": 40,
        "weight_kg": -1,
        "medications": [{"name": "m", "dose": "ten", "unit": "mg"}],
    }
    try:
        validate(Patient, document, prefix="patient")
    except InvalidInput as error:
        assert len(error.problems) == 2
        errors.add_error(error)
    assert errors.get("weight_kg") == between("Weight", "weight_kg")
    assert errors.get("med_dose_2") == "Dose in medicine row 3 must be a number."


def test_a_service_message_loses_its_internal_field_name():
    errors = FormErrors({"reason": "Reason for withdrawing"})
    errors.add_error(InvalidInput("reason: say why the plan is withdrawn.", field="reason"))
    assert errors.get("reason") == "Reason for withdrawing: say why the plan is withdrawn."
    general = FormErrors()
    general.add_error(NotFound("patient_id: no patient 999.", field="patient_id"))
    assert general.get("") == "No patient 999."
    assert plain("Not allowed: 'order.sign' needs the role physician.") == (
        "Not allowed: 'order.sign' needs the role physician."
    )


def test_a_typed_number_is_read_or_refused_in_words():
    errors = FormErrors({"weight_kg": "Weight", "dose": "Dose"})
    assert errors.number({"weight_kg": "68,5"}, "weight_kg") == 68.5
    assert errors.number({"dose": "ten"}, "dose") is None
    assert errors.get("dose") == "Dose must be a number, not “ten”."
    assert errors.number({"weight_kg": "1" * 400}, "weight_kg") is None
    assert errors.get("weight_kg") == between("Weight", "weight_kg")
    assert errors.number({"dose": ""}, "dose") is None


@given(st.text(max_size=60))
def test_any_typed_text_gives_a_finite_number_or_a_problem_never_an_exception(text: str):
    errors = FormErrors({"dose": "Dose"})
    value = errors.number({"dose": text}, "dose")
    if value is None:
        assert bool(errors) == bool(text.strip())
    else:
        assert math.isfinite(value) and not errors
        assert len(text.strip()) <= NUMBER_LENGTH


def test_limits_come_from_the_models_and_the_record():
    assert max_length(Patient, "name") == 200
    assert date_limits(TODAY) == {"min": EARLIEST_DATE.isoformat(), "max": "2026-06-01"}


def test_a_longer_text_than_a_limit_is_a_problem():
    errors = FormErrors({"reason": "Reason"})
    errors.limit({"reason": "x" * 11}, "reason", 10)
    assert errors.get("reason") == "Reason can be at most 10 characters long; this has 11."
