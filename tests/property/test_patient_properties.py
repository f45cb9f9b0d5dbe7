"""The patient parser never crashes: it returns a patient or an InvalidInput naming a field."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ketapath.domain.errors import InvalidInput
from ketapath.domain.patient import patient_from_dict

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-10, 500)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
fields = st.sampled_from(
    [
        "sex",
        "weight_kg",
        "height_cm",
        "age_years",
        "birth_date",
        "diagnoses",
        "medications",
        "pregnancy",
        "consent",
        "purpose",
        "assessment",
        "allergies",
        "unknown",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(fields, values, max_size=8))
def test_any_document_gives_a_patient_or_a_named_error(doc) -> None:
    try:
        patient, _ = patient_from_dict(doc)
    except InvalidInput as exc:
        assert exc.field
        assert "field" in exc.message or "patient" in exc.message
    else:
        assert patient.weight_kg > 0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_any_unit_text_is_a_unit_or_a_clear_error(text) -> None:
    from ketapath.domain.units import parse_unit

    try:
        parse_unit(text)
    except InvalidInput as exc:
        assert exc.field == "unit"
