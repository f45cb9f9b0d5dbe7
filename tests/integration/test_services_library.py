"""The clinic's drug library on both databases: loading is approval (pharmacist or admin),
versions only go up, rows are never changed, orders are planned against the active library
and record its version and digest."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from ketapath.knowledge.library import default_library
from ketapath.services import library, orders, patients, screening
from ketapath.services.errors import Conflict, InvalidInput, OrderRefused, PermissionDenied
from ketapath.services.orders import PlanRequest, SignRequest
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, DrugLibraryVersion

API = "/api/v1"
PATIENT: dict[str, Any] = {
    "name": "Libby Rary",
    "age_years": 50,
    "sex": "female",
    "weight_kg": 50,
    "height_cm": 160,
    "pregnancy": "not_pregnant",
    "diagnoses": ["crps-1"],
    "medications": [{"name": "diazepam", "dose": 5, "unit": "mg", "frequency": "at night"}],
    "consent": "given",
    "assessment": {"central_sensitisation": True, "multidisciplinary_care": True},
    "purpose": ["pain_relief"],
}


def document(version: int, **clinic_rate: float | None) -> dict[str, Any]:
    data = copy.deepcopy(default_library().document())
    data["version"] = version
    data["name"] = f"Clinic library {version}"
    if clinic_rate:
        data["settings"][0]["rate_mg_per_kg_per_h"].update(clinic_rate)
    return data


def screened(database: Database, users: dict[str, Actor]) -> int:
    patient_id = patients.create_patient(database, users["nurse"], PATIENT).id
    screening.run_screening(database, users["physician"], patient_id)
    return patient_id


def test_without_a_stored_version_the_packaged_default_is_active(
    database: Database, users: dict[str, Actor]
) -> None:
    active = library.get_active(database, users["nurse"])
    assert (active.version, active.packaged, active.active) == (0, True, True)
    assert active.digest == default_library().digest()


def test_a_pharmacist_loads_a_version_which_is_stored_audited_and_becomes_active(
    database: Database, users: dict[str, Actor]
) -> None:
    loaded = library.load_library(
        database, users["pharmacist"], document(1), reason="our pumps and bags"
    )
    assert (loaded.version, loaded.approved_by, loaded.active) == (1, "pharmacist", True)
    assert library.get_active(database, users["physician"]).version == 1
    history = library.list_versions(database, users["admin"])
    assert [(h.version, h.active) for h in history] == [(1, True), (0, False)]
    with database.transaction() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "library.load")).one()
    assert entry.username == "pharmacist" and entry.detail["digest"] == loaded.digest
    assert entry.detail["reason"] == "our pumps and bags"


def test_a_stored_library_version_can_be_neither_changed_nor_deleted(
    database: Database, users: dict[str, Actor]
) -> None:
    library.load_library(database, users["admin"], document(1), reason="first")
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("UPDATE drug_libraries SET name = 'tampered'"))
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("DELETE FROM drug_libraries"))
    with database.transaction() as session:
        assert session.scalar(select(DrugLibraryVersion.name)) == "Clinic library 1"


@pytest.mark.parametrize("role", ["physician", "nurse", "researcher"])
def test_no_one_but_a_pharmacist_or_an_admin_loads_a_library_and_the_attempt_is_audited(
    database: Database, users: dict[str, Actor], role: str
) -> None:
    with pytest.raises(PermissionDenied, match=r"library\.manage"):
        library.load_library(database, users[role], document(1), reason="mine")
    with database.transaction() as session:
        denied = session.scalars(
            select(AuditEntry).where(AuditEntry.outcome == "denied", AuditEntry.username == role)
        ).all()
        assert any(e.action == "library.manage" for e in denied)
        assert session.scalar(select(DrugLibraryVersion.id)) is None


def test_versions_only_go_up_and_a_reason_is_required(
    database: Database, users: dict[str, Actor]
) -> None:
    with pytest.raises(InvalidInput, match="reason"):
        library.load_library(database, users["pharmacist"], document(1), reason=" ")
    library.load_library(database, users["pharmacist"], document(3), reason="first")
    with pytest.raises(InvalidInput, match="at least 4") as refused:
        library.load_library(database, users["pharmacist"], document(3), reason="again")
    assert refused.value.field == "document.version"


def test_a_library_that_fails_its_checks_is_refused_naming_the_field(
    database: Database, users: dict[str, Actor]
) -> None:
    bad = document(1)
    bad["pumps"] = [p for p in bad["pumps"] if "sc" not in p["routes"]]
    with pytest.raises(InvalidInput, match="no pump serves SC"):
        library.load_library(database, users["pharmacist"], bad, reason="no syringe drivers")
    uncited = document(1)
    uncited["settings"][0]["bolus_mg_per_kg"]["source"]["cite"] = [{"ref": "made-up-paper"}]
    with pytest.raises(InvalidInput, match="made-up-paper"):
        library.load_library(database, users["pharmacist"], uncited, reason="typo")


def test_orders_are_planned_against_the_active_library_and_record_its_version(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    before = orders.preview_course(
        database, users["physician"], patient_id, PlanRequest(protocol_id="asra-initial")
    )
    assert (before.status, before.library_version) == ("ready", 0)
    library.load_library(
        database, users["pharmacist"], document(1, soft=None, hard=0.3), reason="cautious"
    )
    with pytest.raises(OrderRefused, match=r"hard limit of 0\.3 mg/kg/h"):
        orders.preview_course(
            database, users["physician"], patient_id, PlanRequest(protocol_id="asra-initial")
        )
    library.load_library(database, users["pharmacist"], document(2), reason="back to default")
    signed = orders.sign_order(
        database,
        users["physician"],
        patient_id,
        SignRequest(protocol_id="crps-schwartzman-10day", override_reason="diazepam reviewed"),
    )
    assert signed.library_version == 2
    assert signed.library_digest == library.get_active(database, users["nurse"]).digest
    codes = signed.override_codes or {}
    assert "adjunct:benzodiazepine-already-taken" in codes["limits"]


def test_a_new_library_between_preview_and_signature_refuses_the_signature(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    preview = orders.preview_course(
        database, users["physician"], patient_id, PlanRequest(protocol_id="asra-initial")
    )
    changed = document(1)
    changed["description"] = "the same limits, a new version"
    library.load_library(database, users["pharmacist"], changed, reason="renamed")
    with pytest.raises(Conflict, match="course_digest"):
        orders.sign_order(
            database,
            users["physician"],
            patient_id,
            SignRequest(protocol_id="asra-initial", course_digest=preview.digest),
        )


def test_the_command_line_approver_must_be_an_active_user_with_the_role(
    database: Database, users: dict[str, Actor]
) -> None:
    with pytest.raises(InvalidInput, match="no active user"):
        library.approver(database, "nobody")
    nurse = library.approver(database, "nurse")
    with pytest.raises(PermissionDenied):
        library.load_library(database, nurse, document(1), reason="x")
    admin = library.approver(database, "admin")
    assert library.load_library(database, admin, document(1), reason="x").approved_by == "admin"


def test_over_the_api_an_unstocked_strength_is_422_naming_the_field(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = client.post(f"{API}/patients", json=PATIENT, headers=headers["nurse"]).json()["id"]
    response = client.post(
        f"{API}/patients/{patient_id}/plans",
        json={"protocol_id": "asra-initial", "concentration_mg_per_ml": 0.001},
        headers=headers["physician"],
    )
    assert response.status_code == 422
    assert response.json()["field"] == "concentration_mg_per_ml"
    assert "1, 2, 10 mg/mL" in response.json()["detail"]


def test_over_the_api_a_pharmacist_checks_and_loads_a_library_and_everyone_sees_it(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    checked = client.post(
        f"{API}/library/check", json={"document": document(1)}, headers=headers["pharmacist"]
    )
    assert checked.status_code == 200, checked.text
    outcomes = checked.json()["outcomes"]
    assert {o["protocol_id"] for o in outcomes} >= {"asra-initial", "dose-ladder"}
    assert all(o["outcome"] != "refused" for o in outcomes)
    bad = client.post(
        f"{API}/library",
        json={"document": {**document(1), "pumps": []}, "reason": "x"},
        headers=headers["pharmacist"],
    )
    assert bad.status_code == 422 and bad.json()["field"].startswith("document.pumps")
    loaded = client.post(
        f"{API}/library",
        json={"document": document(1), "reason": "our pumps"},
        headers=headers["admin"],
    )
    assert loaded.status_code == 201, loaded.text
    assert loaded.json()["approved_by"] == "admin"
    active = client.get(f"{API}/library", headers=headers["nurse"]).json()
    assert active["version"] == 1 and active["document"]["name"] == "Clinic library 1"
    default = client.get(f"{API}/library/default", headers=headers["physician"]).json()
    assert default["packaged"] is True and default["active"] is False
    first = client.get(f"{API}/library/versions/1", headers=headers["physician"]).json()
    assert first["version"] == 1 and first["approved_by"] == "admin"
    strengths = client.get(f"{API}/library/strengths", headers=headers["pharmacist"]).json()
    assert [s["concentration_mg_per_ml"] for s in strengths] == [1, 2, 10]
    missing = client.get(f"{API}/library/versions/9", headers=headers["physician"])
    assert missing.status_code == 404


def test_text_no_database_holds_and_infinite_numbers_are_422_not_500(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    nul = {**document(1), "name": "bad\x00name"}
    response = client.post(
        f"{API}/library", json={"document": nul, "reason": "x"}, headers=headers["pharmacist"]
    )
    assert response.status_code == 422
    # the service refuses it too (a file uploaded on the page, or loaded on the command line)
    with pytest.raises(InvalidInput) as refused:
        library.load_library(database, users["pharmacist"], nul, reason="x")
    assert refused.value.field == "document.name"
    infinite = document(1)
    infinite["settings"][0]["rate_mg_per_kg_per_h"]["published"][0]["high"] = "Infinity"
    response = client.post(
        f"{API}/library",
        json={"document": infinite, "reason": "x"},
        headers=headers["pharmacist"],
    )
    assert response.status_code == 422
