"""De-identification: what a researcher's view keeps and what it drops."""

from __future__ import annotations

import json
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from ketapath.services.research import age_band, deidentify


@given(st.floats(min_value=0, max_value=89.999, allow_nan=False))
def test_an_age_band_is_ten_years_wide_and_contains_the_age(age: float) -> None:
    band = age_band(age)
    assert band is not None
    low, high = (int(part) for part in band.split("-"))
    assert high - low == 9
    assert low <= age < high + 1


@given(st.floats(min_value=90, max_value=130, allow_nan=False))
def test_ages_of_90_and_over_are_pooled(age: float) -> None:
    assert age_band(age) == "90 or older"


def test_the_view_drops_names_dates_and_free_text() -> None:
    document = {
        "id": "17",
        "name": "Secret Name",
        "birth_date": "1950-07-08",
        "sex": "female",
        "weight_kg": 60.0,
        "height_cm": 160.0,
        "diagnoses": [{"code": "crps-1", "name": "CRPS", "note": "lives at 1 Secret Road"}],
        "medications": [{"name": "morphine", "indication": "Secret indication"}],
        "assessment": {"goals": "Secret goal", "expectancy": "Secret hope"},
        "gp": "Dr Secret",
        "referrer": "Secret Hospital",
    }
    view = deidentify("KP-ABC", document, today=date(2026, 11, 22))
    text = json.dumps(view.model_dump())
    assert "Secret" not in text
    assert "1950" not in text
    assert view.age_band == "70-79"
    assert [d.condition for d in view.diagnoses] == ["crps-1"]
    assert view.patient_code == "KP-ABC"


def test_a_name_and_phone_number_typed_as_a_medicine_are_withheld_and_counted() -> None:
    document = {
        "sex": "male",
        "age_years": 44,
        "diagnoses": [{"code": "crps-1"}, {"code": "call 07700 900123 after 6"}, "G56.41"],
        "medications": [
            {"name": "John Smith 07700 900123"},
            {"name": "co-codamol 30/500", "dose": 2, "unit": "tablets"},
            {"name": "Xanax"},
            {"name": "see notes"},
        ],
    }
    view = deidentify("KP-1", document, today=date(2026, 11, 22))
    text = json.dumps(view.model_dump())
    for secret in ("John", "Smith", "07700", "900123", "notes", "call", "Xanax"):
        assert secret not in text
    assert view.medicines_withheld == 2 and view.diagnoses_withheld == 1
    assert [m.ingredients for m in view.medications] == [["codeine", "paracetamol"], ["alprazolam"]]
    assert view.medications[0].atc == ["R05DA04", "N02BE01"]
    assert view.medications[1].atc == ["N05BA12"]
    assert [(d.condition, d.icd10cm) for d in view.diagnoses][1] == ("crps-2", ["G56.41"])


_free_text = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N", "Zs"), max_codepoint=0x24F),
    min_size=1,
    max_size=40,
)


@given(_free_text, st.from_regex(r"0\d{4} \d{6}", fullmatch=True))
def test_typed_identifiers_never_reach_a_researcher(name: str, phone: str) -> None:
    typed = f"{name} {phone}"
    document = {
        "sex": "female",
        "age_years": 50,
        "diagnoses": [typed],
        "medications": [{"name": typed}, {"name": f"morphine {phone}"}],
    }
    view = deidentify("KP-2", document, today=date(2026, 11, 22))
    text = json.dumps(view.model_dump())
    assert phone not in text and phone.replace(" ", "") not in text
    assert typed not in text
    assert view.medications[-1].ingredients == ["morphine"]
