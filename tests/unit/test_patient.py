from __future__ import annotations

from datetime import date

import pytest
from tests.conftest import base_patient

from ketapath.domain.errors import InvalidInput
from ketapath.domain.patient import load_patient, patient_from_dict


def test_a_json_and_a_yaml_patient_file_read_the_same(write_patient) -> None:
    as_json, _ = load_patient(write_patient(base_patient(), ".json"))
    as_yaml, _ = load_patient(write_patient(base_patient(), ".yaml"))
    assert as_json == as_yaml


def test_diagnoses_may_be_plain_codes_or_objects() -> None:
    patient, _ = patient_from_dict(base_patient(diagnoses=["crps-1", {"code": "G50.0"}]))
    assert [d.code for d in patient.diagnoses] == ["crps-1", "G50.0"]


def test_an_invalid_field_is_named_with_the_problem() -> None:
    with pytest.raises(InvalidInput) as info:
        patient_from_dict(base_patient(weight_kg=-3))
    assert "weight_kg" in info.value.message
    assert "greater than or equal to 0.2" in info.value.message
    assert info.value.field == "weight_kg"


def test_every_invalid_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as info:
        patient_from_dict(base_patient(sex="x", height_cm=5))
    assert "'sex'" in info.value.message and "'height_cm'" in info.value.message


def test_a_medication_dose_needs_a_known_unit() -> None:
    with pytest.raises(InvalidInput, match=r"medications\[0\].unit.*unknown unit"):
        patient_from_dict(base_patient(medications=[{"name": "x", "dose": 1, "unit": "zorgs"}]))
    with pytest.raises(InvalidInput, match="needs its unit"):
        patient_from_dict(base_patient(medications=[{"name": "x", "dose": 1}]))


def test_microgram_per_hour_units_are_accepted() -> None:
    patient, _ = patient_from_dict(
        base_patient(medications=[{"name": "fentanyl patch", "dose": 25, "unit": "mcg/h"}])
    )
    assert patient.medications[0].unit == "mcg/h"


def test_unknown_fields_are_reported_not_silently_dropped() -> None:
    _, warnings = patient_from_dict(base_patient(favourite_colour="blue"))
    assert any("favourite_colour" in w for w in warnings)


def test_age_comes_from_the_birth_date_when_given() -> None:
    data = base_patient(birth_date="1980-06-15")
    del data["age_years"]
    patient, _ = patient_from_dict(data)
    assert patient.age_on(date(2026, 6, 14)) == 45
    assert patient.age_on(date(2026, 6, 15)) == 46


def test_age_or_birth_date_is_required() -> None:
    data = base_patient()
    del data["age_years"]
    with pytest.raises(InvalidInput, match="age_years or birth_date"):
        patient_from_dict(data)


def test_a_man_cannot_be_recorded_as_pregnant() -> None:
    with pytest.raises(InvalidInput, match="conflicts"):
        patient_from_dict(base_patient(sex="male", pregnancy="pregnant"))


def test_a_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="cannot read patient file"):
        load_patient(tmp_path / "nope.json")


def test_a_malformed_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        load_patient(bad)


@pytest.mark.parametrize("code", ["02139", "02139-4307", ""])
def test_a_us_zip_code_of_5_digits_or_zip_plus_4_is_recorded(code: str) -> None:
    patient, _ = patient_from_dict(base_patient(zip_code=code))
    assert patient.zip_code == code


@pytest.mark.parametrize("code", ["2139", "021394307", "SW1A 1AA", "02139-43", "０２１３９"])
def test_anything_else_as_a_zip_code_is_refused_in_words(code: str) -> None:
    with pytest.raises(InvalidInput, match=r"zip_code.*5 digits or ZIP\+4") as info:
        patient_from_dict(base_patient(zip_code=code))
    assert info.value.field == "zip_code"
