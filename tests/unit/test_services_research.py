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
    assert age_band(age) == "90+"


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
    assert view.diagnoses == ["crps-1"]
    assert view.pseudonym == "KP-ABC"
