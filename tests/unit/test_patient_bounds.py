"""Every clinical number of a patient is bounded at the edge: physiological bounds with their
sources, finite numbers only, dates against the caller's today, text that fits its column."""

from __future__ import annotations

import math
from datetime import date

import pytest
from pydantic import ValidationError
from tests.conftest import base_patient

from ketapath.domain.errors import InvalidInput
from ketapath.domain.patient import EARLIEST_DATE, Patient, implausible_amount, patient_from_dict
from ketapath.knowledge.bounds import input_bounds

TODAY = date(2026, 3, 1)


def born(day: str, **changes: object) -> dict[str, object]:
    data = base_patient(birth_date=day, **changes)
    del data["age_years"]
    return data


def refused(data: dict[str, object], field: str, today: date = TODAY) -> str:
    with pytest.raises(InvalidInput) as caught:
        patient_from_dict(data, today=today)
    assert caught.value.field == field, caught.value.message
    return caught.value.message


def test_every_physiological_bound_has_a_source_and_an_order() -> None:
    bounds = input_bounds()
    for bound_id in ("weight_kg", "height_cm", "age_years", "medicine_mass_g"):
        bound = bounds[bound_id]
        assert bound.minimum < bound.maximum
        assert bound.source.cite and all(c.at for c in bound.source.cite)


@pytest.mark.parametrize("weight_kg", [5e-324, 0.0, 0.19, 650.1, 1e300])
def test_a_weight_no_human_has_is_refused(weight_kg: float) -> None:
    refused(base_patient(weight_kg=weight_kg), "weight_kg")


@pytest.mark.parametrize("weight_kg", [0.212, 635.0])
def test_the_extremes_of_recorded_human_weight_are_accepted(weight_kg: float) -> None:
    patient, _ = patient_from_dict(base_patient(weight_kg=weight_kg), today=TODAY)
    assert patient.weight_kg == weight_kg


@pytest.mark.parametrize("height_cm", [5e-324, 19.9, 275.1])
def test_a_height_no_human_has_is_refused(height_cm: float) -> None:
    refused(base_patient(height_cm=height_cm), "height_cm")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_infinity_and_nan_are_refused_everywhere(value: float) -> None:
    refused(base_patient(weight_kg=value), "weight_kg")
    refused(base_patient(age_years=value), "age_years")
    medicine = {"name": "morphine", "dose": value, "unit": "mg"}
    refused(base_patient(medications=[medicine]), "medications[0].dose")


def test_an_age_above_the_longest_human_life_is_refused() -> None:
    refused(base_patient(age_years=126), "age_years")
    message = refused(born("1900-01-01"), "(file)")
    assert "Guinness" in message


def test_a_birth_date_before_1900_or_after_the_callers_today_is_refused() -> None:
    assert "before 1900-01-01" in refused(born("1800-01-01"), "birth_date")
    assert "in the future" in refused(born("2026-03-02"), "birth_date")
    # the same date is accepted by a caller whose today it is (the clinic's date, not ours)
    patient, _ = patient_from_dict(born("2026-03-02"), today=date(2026, 3, 2))
    assert patient.birth_date == date(2026, 3, 2)
    assert date(1900, 1, 1) == EARLIEST_DATE


def test_age_counts_from_the_today_the_patient_was_validated_against() -> None:
    patient, _ = patient_from_dict(born("1980-03-02"), today=TODAY)
    assert patient.age_on() == 45
    later = Patient.model_validate(born("1980-03-02"), context={"today": date(2026, 3, 2)})
    assert later.age_on() == 46


def test_without_a_today_only_the_bounds_that_need_none_are_checked() -> None:
    Patient.model_validate(born("2999-01-01"))  # the service checks it against the clinic's
    with pytest.raises(ValidationError, match="before 1900-01-01"):
        Patient.model_validate(born("1899-12-31"))


@pytest.mark.parametrize(
    ("amount", "unit"),
    [(1e300, "mg"), (1001, "g"), (2e12, "mcg"), (50_000_000, "mcg/h"), (11, "L"), (2e8, "units")],
)
def test_a_medicine_amount_above_any_real_dose_is_refused(amount: float, unit: str) -> None:
    assert implausible_amount(amount, unit)
    for field in ("dose", "daily_dose"):
        medicine = {"name": "x", field: amount, "unit": unit}
        message = refused(base_patient(medications=[medicine]), "medications[0]")
        assert "above any medicine dose" in message


@pytest.mark.parametrize(
    ("amount", "unit"),
    [(3600, "mg"), (236, "g"), (100, "mcg/h"), (4000, "mL"), (24_000_000, "units"), (0, "mg")],
)
def test_large_real_doses_are_accepted(amount: float, unit: str) -> None:
    assert implausible_amount(amount, unit) == ""
    medicine = {"name": "x", "dose": amount, "unit": unit}
    patient_from_dict(base_patient(medications=[medicine]), today=TODAY)


@pytest.mark.parametrize(
    ("field", "limit"),
    [("name", 120), ("unit", 20), ("frequency", 40), ("route", 20)],
)
def test_medicine_text_longer_than_its_column_is_refused_naming_the_field(
    field: str, limit: int
) -> None:
    medicine = {"name": "morphine", "dose": 10, "unit": "mg", field: "m" * (limit + 1)}
    message = refused(base_patient(medications=[medicine]), f"medications[0].{field}")
    assert f"at most {limit} characters" in message


def test_a_name_or_diagnosis_code_longer_than_its_column_is_refused() -> None:
    refused(base_patient(name="n" * 201), "name")
    refused(base_patient(diagnoses=["G" * 61]), "diagnoses[0].code")


@pytest.mark.parametrize("unit", ["degC", "degF", "dB"])
def test_a_unit_that_measures_no_amount_is_refused_naming_the_medicine(unit: str) -> None:
    medicine = {"name": "x", "dose": 5, "unit": unit}
    message = refused(base_patient(medications=[medicine]), "medications[0]")
    assert "does not measure an amount of medicine" in message
