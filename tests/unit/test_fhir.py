"""The FHIR mapping without a database: the observation codes and their checks, the codes a
diagnosis or a medicine gets (or why not), the version the Bundle states, and the two
validators (ketapath's FHIR R4B models and the official FHIR R4 JSON schema)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from tests.conftest import base_patient, fhir_r4_schema, fhir_schema_errors

from ketapath.domain.patient import Patient
from ketapath.domain.session_events import VitalSigns
from ketapath.domain.vocabulary import resolve
from ketapath.interop import fhir
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.fhir import CHART_VITALS, ObservationCode, fhir_codes, is_valid_loinc
from ketapath.knowledge.instruments import load_instruments

KB = knowledge()
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _bundle(**changes: Any) -> dict[str, Any]:
    document = Patient.model_validate(base_patient(**changes)).model_dump(mode="json")
    return fhir.export_bundle(
        fhir.PatientFacts(5, document, NOW),
        exported_at=NOW,
        kb=KB,
        codes=fhir_codes(),
        instruments=load_instruments(),
    )


def test_every_vital_sign_the_chart_records_has_one_code_entry() -> None:
    values = VitalSigns(heart_rate=60).values()
    assert tuple(values) == CHART_VITALS
    coded = [k for e in fhir_codes().entries if e.kind == "vital" for k in e.keys]
    assert sorted(coded) == sorted(CHART_VITALS)


def test_every_loinc_code_has_its_check_digit_and_a_wrong_digit_is_refused() -> None:
    for entry in fhir_codes().entries:
        for code in [entry.loinc, *(c.loinc for c in entry.components)]:
            assert code == "" or is_valid_loinc(code), entry.id
    assert is_valid_loinc("8867-4") and not is_valid_loinc("8867-5")
    with pytest.raises(ValidationError, match="check digit"):
        ObservationCode.model_validate(
            {
                "id": "x",
                "kind": "vital",
                "key": "heart_rate",
                "loinc": "8867-3",
                "display": "Heart rate",
                "unit": {"ucum": "/min", "text": "/min"},
                "source": {"cite": [{"ref": "loinc"}]},
            }
        )


def test_the_bundle_states_the_fhir_version_it_is_validated_against() -> None:
    bundle = _bundle()
    assert "profile" not in bundle["meta"]  # an R4 validator could not resolve an R4B one
    assert bundle["meta"]["tag"][0]["system"] == "http://hl7.org/fhir/FHIR-version"
    assert bundle["meta"]["tag"][0]["code"] == fhir.FHIR_VERSION == "4.3.0"
    assert fhir.validate_bundle(bundle) == []
    assert fhir_schema_errors(bundle) == []


def test_a_diagnosis_by_name_gets_its_vocabulary_codes_and_one_by_code_keeps_the_code() -> None:
    concept, recognised = fhir.condition_code("CRPS I", resolve("CRPS I", KB))
    assert recognised and concept["text"] == "CRPS I"
    assert {(c["system"], c["code"]) for c in concept["coding"]} == {
        (fhir.ICD10CM, "G90.5"),
        (fhir.SNOMED, "734947007"),
    }
    concept, recognised = fhir.condition_code("G90.511", resolve("G90.511", KB))
    assert recognised and [c["code"] for c in concept["coding"]] == ["G90.511"]
    concept, recognised = fhir.condition_code("possible CRPS", resolve("possible CRPS", KB))
    assert not recognised and concept == {"text": "possible CRPS"}


def test_a_medicine_gets_its_atc_codes_or_text_with_why_not() -> None:
    concept, note = fhir.medicine_code("OxyContin 20 mg", KB.medicines)
    assert [c["code"] for c in concept["coding"]] == ["N02AA05"] and note == ""
    concept, note = fhir.medicine_code("fentanyl", KB.medicines)
    assert [c["code"] for c in concept["coding"]] == ["N02AB03", "N01AH01"]
    concept, note = fhir.medicine_code("oxycodone/acetaminophen 5/325", KB.medicines)
    assert "coding" not in concept and note.startswith("combination of")
    concept, note = fhir.medicine_code("wizzleprofen", KB.medicines)
    assert concept == {"text": "wizzleprofen"} and note == fhir.NOT_RECOGNISED


def test_the_two_validators_each_catch_what_the_other_does_not() -> None:
    bundle = _bundle()
    patient = bundle["entry"][0]["resource"]
    patient["gender"] = "xx"  # a code outside FHIR's required value set
    assert fhir_schema_errors(bundle)  # the JSON schema checks the code ...
    assert fhir.validate_bundle(bundle) == []  # ... the R4B models do not
    patient["gender"] = "female"
    patient["birthDate"] = "1970-02-30"  # right shape, no such day
    assert fhir.validate_bundle(bundle)  # the models parse the date ...
    assert fhir_schema_errors(bundle) == []  # ... the schema's pattern lets it through


def test_the_r4_schema_is_the_official_one() -> None:
    validator = fhir_r4_schema()
    assert validator.is_valid({"resourceType": "Patient", "gender": "male"})
    assert not validator.is_valid({"resourceType": "Patient", "shoeSize": 9})


def test_validation_names_where_each_problem_is() -> None:
    assert fhir.validate_bundle({"resourceType": "Patient"})[0].where == "bundle"
    problems = fhir.validate_bundle(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Spaceship"}}, "x", {"resource": {}}],
        }
    )
    assert [p.where for p in problems] == [
        "entry[0].resource.resourceType",
        "entry[1]",
        "entry[2].resource.resourceType",
    ]


def test_each_resource_id_is_the_uuid_of_its_full_url() -> None:
    bundle = _bundle()
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == "urn:uuid:" + entry["resource"]["id"]
    assert bundle["entry"][0]["fullUrl"] == fhir.full_url("patient-5")


def test_odd_whitespace_becomes_a_space_and_empty_text_is_left_out() -> None:
    assert fhir.fhir_strings({"a": "x\u2028y\u00a0z", "b": "", "c": [{"d": ""}]}) == {"a": "x y z"}


def test_text_reads_back_as_written_and_a_line_break_becomes_a_space() -> None:
    # found by the round-trip property test: two spaces in an allergy read back as one
    bundle = _bundle(allergies=[{"substance": "0  0", "reaction": "rash  and itch"}])
    assert fhir.read_bundle(bundle, KB).fields["allergies"] == [
        {"substance": "0  0", "reaction": "rash  and itch"}
    ]
    allergy = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "AllergyIntolerance"
    )
    allergy["code"]["text"] = " penicillin\nG\t "
    assert fhir.read_bundle(bundle, KB).fields["allergies"][0]["substance"] == "penicillin G"


def test_reading_skips_what_is_not_current_and_says_so() -> None:
    bundle = _bundle(medications=[{"name": "morphine"}, {"name": "codeine"}])
    statements = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
    ]
    statements[1]["status"] = "stopped"
    read = fhir.read_bundle(bundle, KB)
    assert [m["name"] for m in read.fields["medications"]] == ["morphine"]
    assert any("'codeine' is stopped" in s for s in read.skipped)


def test_a_condition_of_another_system_is_read_by_its_code_and_sorted_by_its_kind() -> None:
    bundle = _bundle()
    patient = bundle["entry"][0]
    weight = next(e for e in bundle["entry"] if "29463-7" in str(e["resource"].get("code")))
    other = {
        "resourceType": "Condition",
        "subject": {"reference": patient["fullUrl"]},
        "code": {"coding": [{"system": fhir.ICD10CM, "code": "B02.29", "display": "PHN"}]},
    }
    asthma = {
        "resourceType": "Condition",
        "subject": {"reference": patient["fullUrl"]},
        "code": {"coding": [{"system": fhir.SNOMED, "code": "195967001", "display": "Asthma"}]},
    }
    small = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [patient, weight, {"resource": other}, {"resource": asthma}],
    }
    read = fhir.read_bundle(small, KB)
    assert read.fields["diagnoses"] == [{"code": "B02.29"}]
    assert read.fields["comorbidities"] == [{"code": "Asthma"}]


def test_the_mapping_is_pure_it_imports_no_database_service_or_interface() -> None:
    import ast
    from pathlib import Path

    import ketapath.interop.fhir as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    outer = ("ketapath.store", "ketapath.services", "ketapath.api", "ketapath.web", "ketapath.cli")
    assert not [name for name in imported if name.startswith(outer)]


@pytest.mark.parametrize(
    ("resource_type", "key", "value"),
    [
        ("Patient", "name", None),  # the property test's example: {"name": null} is valid R4B
        ("Patient", "extension", None),
        ("Patient", "generalPractitioner", None),
        ("Condition", "category", None),
        ("MedicationStatement", "dosage", None),
        ("AllergyIntolerance", "reaction", None),
    ],
)
def test_a_json_null_where_a_list_may_stand_is_read_as_absent(
    resource_type: str, key: str, value: Any
) -> None:
    """The FHIR models accept ``null`` for a list as if it were absent; the reader does the
    same (reads the record, or refuses it naming where, as for a missing list), instead of
    failing on it (a TypeError: a 500 at the import's API)."""
    bundle = _bundle(allergies=[{"substance": "penicillin", "reaction": "rash"}])
    resources = [e["resource"] for e in bundle["entry"]]
    changed = [r for r in resources if r["resourceType"] == resource_type]
    assert changed, f"the test bundle has no {resource_type}"
    for resource in changed:
        resource[key] = value
    absent = json.loads(json.dumps(bundle))
    for entry in absent["entry"]:
        if entry["resource"]["resourceType"] == resource_type:
            del entry["resource"][key]
    try:
        expected: Any = fhir.read_bundle(absent, KB).fields
    except fhir.InvalidBundle as error:
        expected = [(p.where, p.message) for p in error.problems]
    try:
        read: Any = fhir.read_bundle(bundle, KB).fields
    except fhir.InvalidBundle as error:
        read = [(p.where, p.message) for p in error.problems]
    assert read == expected


def test_a_name_whose_parts_are_null_is_read_without_them() -> None:
    bundle = _bundle()
    (patient,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    patient["name"] = [{"use": "official", "given": None, "family": None}]
    assert fhir.read_bundle(bundle, KB).fields["sex"] in ("male", "female")
