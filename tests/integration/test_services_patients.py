"""The patient record: created, amended (never overwritten), read and searched, all audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ketapath.services import patients
from ketapath.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, Diagnosis, Medication


def a_patient(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Alex Example",
        "birth_date": "1970-05-04",
        "sex": "female",
        "weight_kg": 70.0,
        "height_cm": 165.0,
        "diagnoses": ["crps-1"],
        "medications": [
            {"name": "oxycodone", "dose": 10, "unit": "mg", "frequency": "bd", "route": "oral"}
        ],
    }
    document.update(changes)
    return document


def audit_actions(database: Database, patient_id: int) -> list[tuple[str, str]]:
    with database.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.patient_id == patient_id).order_by(AuditEntry.id)
        ).all()
        return [(row.username, row.action) for row in rows]


@pytest.mark.parametrize("role", ["physician", "nurse"])
def test_a_clinician_registers_a_patient_as_version_one(
    database: Database, users: dict[str, Actor], role: str
) -> None:
    record = patients.create_patient(database, users[role], a_patient())
    assert record.version == 1
    assert record.document["name"] == "Alex Example"
    assert record.recorded_by == role
    assert record.pseudonym.startswith("KP-")
    assert audit_actions(database, record.id) == [(role, "patient.create")]


@pytest.mark.parametrize("role", ["pharmacist", "researcher", "admin"])
def test_other_roles_cannot_register_a_patient(
    database: Database, users: dict[str, Actor], role: str
) -> None:
    with pytest.raises(PermissionDenied):
        patients.create_patient(database, users[role], a_patient())


def test_diagnoses_and_medicines_are_also_stored_as_rows(
    database: Database, users: dict[str, Actor]
) -> None:
    patients.create_patient(database, users["nurse"], a_patient(diagnoses=["crps-1", "G90.5"]))
    with database.transaction() as session:
        codes = session.scalars(select(Diagnosis.code).order_by(Diagnosis.position)).all()
        medicines = session.scalars(select(Medication.name)).all()
    assert codes == ["crps-1", "G90.5"]
    assert medicines == ["oxycodone"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weight_kg": -3}, "patient.weight_kg"),
        ({"sex": "x"}, "patient.sex"),
        ({"medications": [{"name": ""}]}, "patient.medications[0].name"),
    ],
)
def test_an_invalid_record_is_refused_naming_the_field(
    database: Database, users: dict[str, Actor], changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        patients.create_patient(database, users["nurse"], a_patient(**changes))
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


def test_an_amendment_is_a_new_version_and_the_old_one_stays(
    database: Database, users: dict[str, Actor]
) -> None:
    created = patients.create_patient(database, users["nurse"], a_patient())
    amended = patients.amend_patient(
        database,
        users["physician"],
        created.id,
        a_patient(weight_kg=68.5),
        reason="weighed in clinic",
        expected_version=1,
    )
    assert amended.version == 2
    assert amended.amends_version == 1
    assert amended.reason == "weighed in clinic"
    assert patients.get_patient(database, users["nurse"], created.id).document["weight_kg"] == 68.5
    history = patients.patient_history(database, users["nurse"], created.id)
    assert [(v.version, v.document["weight_kg"], v.recorded_by) for v in history] == [
        (1, 70.0, "nurse"),
        (2, 68.5, "physician"),
    ]


def test_an_amendment_needs_a_reason(database: Database, users: dict[str, Actor]) -> None:
    created = patients.create_patient(database, users["nurse"], a_patient())
    with pytest.raises(InvalidInput, match="reason"):
        patients.amend_patient(
            database, users["nurse"], created.id, a_patient(), reason=" ", expected_version=1
        )


def test_an_amendment_of_a_stale_version_is_refused(
    database: Database, users: dict[str, Actor]
) -> None:
    created = patients.create_patient(database, users["nurse"], a_patient())
    patients.amend_patient(
        database,
        users["nurse"],
        created.id,
        a_patient(weight_kg=71),
        reason="re-weighed",
        expected_version=1,
    )
    with pytest.raises(Conflict, match="version 2"):
        patients.amend_patient(
            database,
            users["physician"],
            created.id,
            a_patient(weight_kg=60),
            reason="typo",
            expected_version=1,
        )


def test_reading_a_record_is_audited(database: Database, users: dict[str, Actor]) -> None:
    created = patients.create_patient(database, users["nurse"], a_patient())
    patients.get_patient(database, users["pharmacist"], created.id)
    assert audit_actions(database, created.id)[-1] == ("pharmacist", "patient.read")


@pytest.mark.parametrize("role", ["researcher", "admin"])
def test_researchers_and_admins_cannot_read_an_identified_record(
    database: Database, users: dict[str, Actor], role: str
) -> None:
    created = patients.create_patient(database, users["nurse"], a_patient())
    with pytest.raises(PermissionDenied):
        patients.get_patient(database, users[role], created.id)


def test_an_unknown_patient_is_not_found(database: Database, users: dict[str, Actor]) -> None:
    with pytest.raises(NotFound, match="patient_id"):
        patients.get_patient(database, users["nurse"], 12345)


def test_search_finds_patients_by_part_of_the_current_name(
    database: Database, users: dict[str, Actor]
) -> None:
    alex = patients.create_patient(database, users["nurse"], a_patient())
    patients.create_patient(database, users["nurse"], a_patient(name="Sam Other"))
    patients.amend_patient(
        database,
        users["nurse"],
        alex.id,
        a_patient(name="Alexandra Example"),
        reason="full name",
        expected_version=1,
    )
    found = patients.search_patients(database, users["physician"], "alexandra")
    assert [(p.id, p.name, p.version) for p in found] == [(alex.id, "Alexandra Example", 2)]
    assert len(patients.search_patients(database, users["physician"], "")) == 2
    assert [p.id for p in patients.search_patients(database, users["nurse"], str(alex.id))] == [
        alex.id
    ]
    assert [p.id for p in patients.search_patients(database, users["nurse"], alex.pseudonym)] == [
        alex.id
    ]


def test_search_treats_wildcards_in_the_query_as_plain_characters(
    database: Database, users: dict[str, Actor]
) -> None:
    patients.create_patient(database, users["nurse"], a_patient(name="Alex Example"))
    assert patients.search_patients(database, users["nurse"], "%") == []
    assert patients.search_patients(database, users["nurse"], "_lex") == []
