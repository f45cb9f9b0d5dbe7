"""Any valid patient record exports to a Bundle that both validators accept (ketapath's FHIR
R4B models and the official FHIR R4 JSON schema), and reads back as the same record; any
Bundle, however broken, is read or refused naming a place, never crashes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import fhir_schema_errors

from ketapath.domain.patient import Patient
from ketapath.interop import fhir
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.fhir import fhir_codes
from ketapath.knowledge.instruments import load_instruments

KB = knowledge()
TODAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# Text as people type it (letters, digits, spaces, punctuation, accents); odd whitespace is
# covered by its own test.
WORDS = (
    st.text(
        alphabet=st.characters(
            whitelist_categories=("Lu", "Ll", "Nd", "Pd", "Po"), whitelist_characters=" /()"
        ),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
TERMS = [c.id for c in KB.conditions.entries] + [c.name for c in KB.conditions.entries[:40]]
CODES = [code for c in KB.conditions.entries for code in c.icd10cm if len(code) > 1]
MEDICINES = [i.name for i in KB.medicines.ingredients] + [p.names[0] for p in KB.medicines.products]
UNITS = ["mg", "mcg", "g", "mL", "mcg/h", "tablets", "capsules", "patch", "units"]

diagnosis = st.one_of(st.sampled_from(TERMS), st.sampled_from(CODES), WORDS).map(
    lambda code: {"code": code}
)
coded = st.builds(
    lambda code, name, note: {"code": code, "name": name, "note": note},
    st.sampled_from(TERMS) | WORDS,
    st.just("") | WORDS,
    st.just("") | WORDS,
)


@st.composite
def medicines(draw: st.DrawFn) -> dict[str, Any]:
    medicine: dict[str, Any] = {"name": draw(st.sampled_from(MEDICINES) | WORDS)}
    if draw(st.booleans()):
        medicine["unit"] = draw(st.sampled_from(UNITS))
        medicine["dose"] = draw(st.floats(0, 100, allow_nan=False).map(lambda x: round(x, 3)))
        if draw(st.booleans()):
            medicine["daily_dose"] = draw(st.floats(0, 400).map(lambda x: round(x, 2)))
    for key, limit in (("frequency", 40), ("route", 20), ("indication", 200)):
        if draw(st.booleans()):
            medicine[key] = draw(WORDS)[:limit].strip() or "x"
    return medicine


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": draw(st.just("") | WORDS),
        "sex": draw(st.sampled_from(["male", "female"])),
        "weight_kg": draw(st.floats(25, 250).map(lambda x: round(x, 1))),
        "diagnoses": draw(st.lists(diagnosis | coded, max_size=4)),
        "comorbidities": draw(st.lists(diagnosis | coded, max_size=4)),
        "medications": draw(st.lists(medicines(), max_size=5)),
        "allergies": draw(
            st.lists(
                st.builds(lambda s, r: {"substance": s, "reaction": r}, WORDS, st.just("") | WORDS),
                max_size=3,
            )
        ),
        "gp": draw(st.just("") | WORDS),
    }
    if draw(st.booleans()):
        document["birth_date"] = draw(st.dates(date(1925, 1, 1), date(2006, 1, 1))).isoformat()
    else:
        document["age_years"] = draw(st.integers(18, 100))
    if draw(st.booleans()):
        document["height_cm"] = draw(st.floats(120, 220).map(lambda x: round(x, 1)))
    if draw(st.booleans()):
        document["weight_measured_on"] = draw(st.dates(date(2026, 1, 1), TODAY)).isoformat()
    return Patient.model_validate(document, context={"today": TODAY}).model_dump(mode="json")


def _export(document: dict[str, Any], patient_id: int = 3) -> dict[str, Any]:
    facts = fhir.PatientFacts(patient_id, document, NOW)
    return fhir.export_bundle(
        facts, exported_at=NOW, kb=KB, codes=fhir_codes(), instruments=load_instruments()
    )


FHIR_FIELDS = (
    "name",
    "sex",
    "birth_date",
    "age_years",
    "weight_kg",
    "height_cm",
    "weight_measured_on",
    "diagnoses",
    "comorbidities",
    "medications",
    "allergies",
    "gp",
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_any_valid_record_exports_to_a_valid_bundle_and_reads_back_the_same(document) -> None:
    bundle = _export(document)
    assert fhir.validate_bundle(bundle) == []
    assert fhir_schema_errors(bundle) == []
    read = fhir.read_bundle(bundle, KB)
    again = Patient.model_validate({**document, **read.fields}).model_dump(mode="json")
    assert {k: again[k] for k in FHIR_FIELDS} == {k: document[k] for k in FHIR_FIELDS}
    # every diagnosis and medicine is in the Bundle, read or not
    conditions = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert len(conditions) == len(document["diagnoses"]) + len(document["comorbidities"])
    for entry in conditions:
        resource = entry["resource"]
        unread = "coding" not in resource["code"] and "clinicalStatus" not in resource
        assert unread == ({"text": fhir.NOT_RECOGNISED} in resource.get("note", []))


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=20).map(str.strip).filter(bool))
def test_any_text_of_a_record_makes_a_valid_fhir_string(text) -> None:
    document = Patient.model_validate(
        {
            "name": text[:200],
            "sex": "female",
            "weight_kg": 60,
            "age_years": 40,
            "diagnoses": [text[:200]],
            "medications": [{"name": text[:120]}],
        },
    ).model_dump(mode="json")
    bundle = _export(document)
    assert fhir.validate_bundle(bundle) == []
    assert fhir_schema_errors(bundle) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
paths = st.sampled_from(
    ["gender", "birthDate", "name", "code", "status", "valueQuantity", "dosage", "subject", "id"]
)


@settings(max_examples=150, deadline=None)
@given(records(), st.lists(st.tuples(st.integers(0, 40), paths, json_values), max_size=4))
def test_any_broken_bundle_is_read_or_refused_naming_where(document, changes) -> None:
    bundle = _export(document)
    for index, key, value in changes:
        entries = bundle["entry"]
        entries[index % len(entries)]["resource"][key] = value
    try:
        read = fhir.read_bundle(bundle, KB)
    except fhir.InvalidBundle as error:
        assert error.problems and all(p.where for p in error.problems)
    else:
        assert read.fields["sex"] in ("male", "female")
