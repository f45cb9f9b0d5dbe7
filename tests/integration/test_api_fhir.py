"""FHIR through the API and the services, on SQLite and PostgreSQL: the export of a whole
record (valid FHIR R4B by ketapath's models, and valid by the official FHIR R4 JSON schema),
the codes it carries, the chart's delivered dose, the audit, who may export; the import of a
Bundle as a new patient or a new version, with the round trip export -> import -> export; and
bad Bundles answered 4xx with nothing written."""

from __future__ import annotations

import copy
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.conftest import fhir_schema_errors
from tests.integration.conftest import clinic_noon, fhir_patient

from ketapath.interop import fhir
from ketapath.knowledge.clinical import knowledge
from ketapath.services import fhir as fhir_service
from ketapath.services import patients, sessions
from ketapath.services.errors import InvalidInput, PermissionDenied
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, PatientVersion
from ketapath.store.models import Patient as PatientRow

API = "/api/v1"
READ_BACK = ("Patient", "Condition", "MedicationStatement")


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _codes(resource: dict[str, Any], key: str = "code") -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in resource.get(key, {}).get("coding", [])}


def _written(database: Database) -> tuple[int, int]:
    with database.transaction() as session:
        return (
            session.scalar(select(func.count(PatientRow.id))) or 0,
            session.scalar(select(func.count(PatientVersion.id))) or 0,
        )


@pytest.fixture
def exported(database: Database, users: dict[str, Actor]) -> tuple[int, dict[str, Any]]:
    clock = clinic_noon()
    patient_id = fhir_patient(database, users, clock)
    return patient_id, fhir_service.export_patient(
        database, users["physician"], patient_id, clock=clock
    )


def test_a_whole_record_exports_as_a_bundle_valid_by_both_validators(
    exported: tuple[int, dict[str, Any]],
) -> None:
    _, bundle = exported
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert fhir.validate_bundle(bundle) == []
    assert fhir_schema_errors(bundle) == []
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert kinds >= {
        "Patient",
        "Condition",
        "AllergyIntolerance",
        "MedicationStatement",
        "Observation",
        "QuestionnaireResponse",
        "MedicationRequest",
        "MedicationAdministration",
        "Procedure",
        "CarePlan",
    }
    assert bundle["meta"]["tag"][0] == {
        "system": "http://hl7.org/fhir/FHIR-version",
        "code": "4.3.0",
        "display": "FHIR R4B (4.3.0)",
    }
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    references = _all_references(bundle)
    assert references and references <= set(urls), references - set(urls)


def _all_references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            found.add(value["reference"])
        for item in value.values():
            found |= _all_references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _all_references(item)
    return found


def test_codes_come_from_the_vocabularies_and_unread_text_is_kept_with_its_note(
    exported: tuple[int, dict[str, Any]],
) -> None:
    _, bundle = exported
    conditions = {c["code"]["text"]: c for c in _resources(bundle, "Condition")}
    assert _codes(conditions["G90.511"]) == {("http://hl7.org/fhir/sid/icd-10-cm", "G90.511")}
    assert ("http://hl7.org/fhir/sid/icd-10-cm", "J45") in _codes(conditions["asthma"])
    unread = conditions["frobnitz syndrome"]
    assert "coding" not in unread["code"]
    assert [n["text"] for n in unread["note"]] == ["per GP letter", fhir.NOT_RECOGNISED]
    medicines = {
        m["medicationCodeableConcept"]["text"]: m for m in _resources(bundle, "MedicationStatement")
    }
    oxycodone = medicines["oxycodone"]
    assert _codes(oxycodone, "medicationCodeableConcept") == {
        ("http://www.whocc.no/atc", "N02AA05")
    }
    dose = oxycodone["dosage"][0]["doseAndRate"][0]["doseQuantity"]
    assert dose == {
        "value": 20.0,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert medicines["wizzleprofen"]["note"] == [{"text": fhir.NOT_RECOGNISED}]
    assert "coding" not in medicines["wizzleprofen"]["medicationCodeableConcept"]
    loinc = {
        c["code"]
        for o in _resources(bundle, "Observation")
        for c in o["code"].get("coding", [])
        if c["system"] == "http://loinc.org"
    }
    # weight, height, heart rate, blood pressure, SpO2, RR, EtCO2, NRS, PHQ-9
    assert loinc >= {"29463-7", "8302-2", "8867-4", "85354-9", "2708-6", "9279-1", "19891-1"}
    assert loinc >= {"72514-3", "44261-6"}
    rass = [
        o for o in _resources(bundle, "Observation") if o["code"]["text"].startswith("Richmond")
    ]
    assert rass and all("coding" not in o["code"] for o in rass)


def test_the_administration_is_the_chart_s_exact_delivered_dose_in_ucum_mg(
    database: Database, users: dict[str, Actor], exported: tuple[int, dict[str, Any]]
) -> None:
    patient_id, bundle = exported
    given = sessions.patient_sessions(database, users["physician"], patient_id, clock=clinic_noon())
    charted = next(s for s in given.sessions if s.delivered_mg > 0)
    detail = sessions.get_session(database, users["physician"], charted.id, clock=clinic_noon())
    exact = Fraction(detail.chart.delivered_mg_fraction)
    ketamine = [
        a
        for a in _resources(bundle, "MedicationAdministration")
        if a["medicationCodeableConcept"]["text"] == "ketamine"
    ]
    assert len(ketamine) == 1
    dose = ketamine[0]["dosage"]["dose"]
    assert dose["unit"] == "mg" and dose["system"] == "http://unitsofmeasure.org"
    assert dose["code"] == "mg"
    assert Decimal(str(dose["value"])) == Decimal(detail.chart.dose.delivered_mg_exact)
    assert abs(Fraction(Decimal(str(dose["value"]))) - exact) <= Fraction(1, 10**9)
    assert ketamine[0]["status"] == "stopped"
    assert _codes(ketamine[0], "medicationCodeableConcept") == {
        ("http://www.whocc.no/atc", "N01AX03")
    }
    procedures = {p["status"] for p in _resources(bundle, "Procedure")}
    assert procedures == {"stopped", "preparation"}
    assert _resources(bundle, "CarePlan")[0]["status"] == "active"


def test_the_export_is_audited_and_only_a_physician_may_export(
    database: Database, users: dict[str, Actor], exported: tuple[int, dict[str, Any]]
) -> None:
    patient_id, bundle = exported
    with database.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "fhir.export").order_by(AuditEntry.seq)
        ).all()
    assert [(r.username, r.outcome, r.patient_id) for r in rows] == [
        ("physician", "ok", patient_id)
    ]
    assert rows[0].detail["resources"] == len(bundle["entry"])
    for role in ("nurse", "pharmacist", "researcher", "admin"):
        with pytest.raises(PermissionDenied):
            fhir_service.export_patient(database, users[role], patient_id)


def _read_back(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] in READ_BACK]


def _without_ids(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resources with the record's number taken out (ids, identifiers, references)."""
    out = copy.deepcopy(resources)
    for resource in out:
        resource.pop("id", None)
        resource.pop("identifier", None)
        resource.pop("subject", None)
    return out


def test_export_import_export_gives_back_the_same_patient_conditions_and_medicines(
    database: Database, users: dict[str, Actor], exported: tuple[int, dict[str, Any]]
) -> None:
    patient_id, bundle = exported
    clock = clinic_noon()
    # as a new patient: the same resources but for the record's number
    result = fhir_service.import_bundle(database, users["nurse"], bundle, clock=clock)
    assert result.created and result.record.id != patient_id
    again = fhir_service.export_patient(database, users["physician"], result.record.id, clock=clock)
    assert _without_ids(_read_back(again)) == _without_ids(_read_back(bundle))
    assert "frobnitz syndrome" in " ".join(result.not_recognised)
    # as a new version of the same record: exactly the same resources
    record = patients.get_patient(database, users["nurse"], patient_id)
    amended = fhir_service.import_bundle(
        database,
        users["physician"],
        bundle,
        patient_id=patient_id,
        expected_version=record.version,
        reason="reconciled with the GP's record",
        clock=clock,
    )
    assert not amended.created and amended.record.version == record.version + 1
    third = fhir_service.export_patient(database, users["physician"], patient_id, clock=clock)
    assert _read_back(third) == _read_back(bundle)
    assert amended.record.document["consent"] == record.document["consent"]  # kept


def test_import_through_the_api_takes_fhir_json_and_answers_the_new_record(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    exported: tuple[int, dict[str, Any]],
) -> None:
    patient_id, _ = exported
    response = client.get(f"{API}/patients/{patient_id}/fhir", headers=headers["physician"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.content
    posted = client.post(
        f"{API}/fhir/import",
        content=body,
        headers={**headers["nurse"], "Content-Type": "application/fhir+json"},
    )
    assert posted.status_code == 201, posted.text
    answer = posted.json()
    assert answer["created"] is True
    assert answer["record"]["document"]["name"] == "Fhir Export"
    assert any("Observation" in s and "not imported" in s for s in answer["skipped"])
    download = client.get(
        f"{API}/patients/{patient_id}/fhir?download=true", headers=headers["physician"]
    )
    assert "attachment" in download.headers["content-disposition"]
    refused = client.get(f"{API}/patients/{patient_id}/fhir", headers=headers["researcher"])
    assert refused.status_code == 403


def _bad_bundles(bundle: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """Broken copies of a good Bundle, each with the place its error names."""

    def changed(change: Any) -> dict[str, Any]:
        broken = copy.deepcopy(bundle)
        change(broken)
        return broken

    def patient(b: dict[str, Any]) -> dict[str, Any]:
        return next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient")

    return {
        "a birth date that is no date": (
            changed(lambda b: patient(b).update(birthDate="1970-13-45")),
            "birthDate",
        ),
        "an unknown element": (changed(lambda b: patient(b).update(shoeSize=9)), "shoeSize"),
        "a sex the record cannot hold": (
            changed(lambda b: patient(b).update(gender="other")),
            "gender",
        ),
        "no Patient": (
            changed(
                lambda b: b.update(
                    entry=[e for e in b["entry"] if e["resource"]["resourceType"] != "Patient"]
                )
            ),
            "bundle",
        ),
        "two Patients": (
            changed(lambda b: b["entry"].append(copy.deepcopy(b["entry"][0]))),
            "bundle",
        ),
        "a resource type FHIR R4B does not have": (
            changed(lambda b: b["entry"].append({"resource": {"resourceType": "Spaceship"}})),
            "resourceType",
        ),
        "a diagnosis longer than the record keeps": (
            changed(
                lambda b: next(
                    e["resource"]
                    for e in b["entry"]
                    if e["resource"]["resourceType"] == "Condition"
                )["code"].update(text="x" * 201)
            ),
            "code",
        ),
        "no body weight": (
            changed(
                lambda b: b.update(
                    entry=[
                        e for e in b["entry"] if "29463-7" not in str(e["resource"].get("code", ""))
                    ]
                )
            ),
            "bundle",
        ),
    }


def test_a_bad_bundle_is_refused_naming_where_and_nothing_is_written(
    client: TestClient,
    database: Database,
    headers: dict[str, dict[str, str]],
    exported: tuple[int, dict[str, Any]],
) -> None:
    _, bundle = exported
    before = _written(database)
    for what, (broken, where) in _bad_bundles(bundle).items():
        response = client.post(f"{API}/fhir/import", json=broken, headers=headers["physician"])
        assert response.status_code == 422, (what, response.text)
        body = response.json()
        assert where in (body["field"] or "") or where in body["detail"], (what, body)
        assert _written(database) == before, what
    for not_a_bundle in ({"resourceType": "Patient"}, [], "Bundle", {"resourceType": "Bundle"}):
        response = client.post(f"{API}/fhir/import", json=not_a_bundle, headers=headers["nurse"])
        assert response.status_code == 422, not_a_bundle
    assert _written(database) == before


def test_an_import_as_a_new_version_needs_the_version_and_a_reason_and_writes_nothing_else(
    database: Database, users: dict[str, Actor], exported: tuple[int, dict[str, Any]]
) -> None:
    patient_id, bundle = exported
    before = _written(database)
    with pytest.raises(InvalidInput, match="expected_version"):
        fhir_service.import_bundle(database, users["nurse"], bundle, patient_id=patient_id)
    with pytest.raises(InvalidInput, match="reason"):
        fhir_service.import_bundle(
            database, users["nurse"], bundle, patient_id=patient_id, expected_version=1
        )
    for role in ("pharmacist", "researcher", "admin"):
        with pytest.raises(PermissionDenied):
            fhir_service.import_bundle(database, users[role], bundle)
    assert _written(database) == before


def test_every_patient_of_the_demo_clinic_exports_a_bundle_valid_by_both_validators(
    database: Database,
) -> None:
    from ketapath.services import auth, demo
    from ketapath.services.permissions import SYSTEM

    demo.seed_demo(database)
    physician = next(u for u in auth.list_users(database, SYSTEM) if u.role == "physician")
    actor = Actor(physician.id, physician.username, physician.role)
    with database.transaction() as session:
        ids = list(session.scalars(select(PatientRow.id)))
    assert ids
    for patient_id in ids:
        bundle = fhir_service.export_patient(database, actor, patient_id)
        assert fhir.validate_bundle(bundle) == [], patient_id
        assert fhir_schema_errors(bundle) == [], patient_id
        read = fhir.read_bundle(bundle, knowledge())
        assert read.fields["sex"] in ("male", "female")
