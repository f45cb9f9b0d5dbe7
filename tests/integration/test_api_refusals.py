"""A refusal is the same whether or not the record asked for exists, and it is audited with
the id that was asked for.

Before, an admin or researcher asking for a patient that does not exist got a 500 (the
refusal's audit row named a missing patient, a foreign-key error), so the refusal went
unaudited and these roles could tell which patient numbers exist.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.conftest import browser_sign_in
from tests.integration.test_api_roles import API, ENDPOINTS, Context, Endpoint

from ketapath.services.permissions import ROLES, Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry

MISSING_ID = 999_999
# Every endpoint whose path names a record by number (patients, orders, assessments...).
SCOPED = [
    e for e in ENDPOINTS if re.search(r"\{\w+_id\}", e.path) and e.allowed != frozenset(ROLES)
]


def _last_audit_row(database: Database) -> AuditEntry:
    with database.transaction() as session:
        row = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
    return row


def test_every_endpoint_that_names_a_record_is_checked_here() -> None:
    assert {e.path for e in SCOPED} >= {
        "/patients/{patient_id}",
        "/patients/{patient_id}/orders",
        "/patients/{patient_id}/timeline",
        "/orders/{order_id}",
    }
    assert len(SCOPED) >= 20


@pytest.mark.parametrize("endpoint", SCOPED, ids=lambda e: f"{e.method} {e.path}")
def test_a_refused_role_gets_the_same_403_for_a_record_that_does_not_exist(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
    endpoint: Endpoint,
) -> None:
    context = Context(database, users)
    refused = [role for role in ROLES if role not in endpoint.allowed]
    assert refused
    for role in refused:
        method, existing_path, body = endpoint.request(context)
        missing_path = re.sub(r"/\d+", f"/{MISSING_ID}", existing_path, count=1)
        assert missing_path != existing_path
        asked_for = re.search(r"/(\d+)", existing_path)
        assert asked_for is not None

        exists = client.request(method, API + existing_path, json=body, headers=headers[role])
        assert exists.status_code == 403, (role, exists.text)
        row = _last_audit_row(database)
        assert (row.username, row.outcome) == (role, "denied")
        existing_id = int(asked_for.group(1))

        missing = client.request(method, API + missing_path, json=body, headers=headers[role])
        assert missing.status_code == 403, (role, missing.status_code, missing.text)
        assert missing.json() == exists.json()
        denied = _last_audit_row(database)
        assert (denied.username, denied.outcome, denied.action) == (role, "denied", row.action)
        if existing_path.startswith("/patients/"):
            assert (row.patient_id, denied.patient_id) == (existing_id, MISSING_ID)
        else:
            assert (row.entity_id, denied.entity_id) == (str(existing_id), str(MISSING_ID))


def test_a_refused_patient_read_keeps_the_patient_number_it_asked_for(
    client: TestClient, database: Database, headers: dict[str, dict[str, str]]
) -> None:
    for path in (f"/patients/{MISSING_ID}", f"/patients/{MISSING_ID}/history"):
        response = client.get(API + path, headers=headers["researcher"])
        assert response.status_code == 403
        row = _last_audit_row(database)
        assert (row.action, row.outcome, row.patient_id) == ("patient.read", "denied", MISSING_ID)


def test_the_admin_finds_refusals_for_a_missing_patient_in_the_audit_log(
    client: TestClient, database: Database, headers: dict[str, dict[str, str]]
) -> None:
    assert (
        client.get(f"{API}/patients/{MISSING_ID}/orders", headers=headers["admin"]).status_code
        == 403
    )
    found = client.get(
        f"{API}/audit", params={"patient_id": MISSING_ID}, headers=headers["admin"]
    ).json()
    assert [(e["action"], e["outcome"], e["username"]) for e in found] == [
        ("order.read", "denied", "admin")
    ]


def test_a_clinician_asking_for_a_patient_that_does_not_exist_gets_404(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(f"{API}/patients/{MISSING_ID}/orders", headers=headers["physician"])
    assert response.status_code == 404


PAGES = (
    "/patients/{id}",
    "/patients/{id}/history",
    "/patients/{id}/edit",
    "/patients/{id}/opioids",
    "/patients/{id}/plan",
    "/patients/{id}/screening",
    "/patients/{id}/assessments/new",
)


def _without_id(page: str, patient_id: int) -> str:
    return re.sub(rf"/patients/{patient_id}\b", "/patients/ID", page)


@pytest.mark.parametrize("role", ["researcher", "admin"])
def test_a_refused_page_reads_the_same_whether_or_not_the_patient_exists(
    client: TestClient, database: Database, users: dict[str, Actor], role: str
) -> None:
    existing = Context(database, users).patient()
    assert browser_sign_in(client, role).status_code == 200
    for page in PAGES:
        exists = client.get(page.format(id=existing))
        missing = client.get(page.format(id=MISSING_ID))
        assert (exists.status_code, missing.status_code) == (403, 403), page
        assert _without_id(exists.text, existing) == _without_id(missing.text, MISSING_ID), page
        assert _last_audit_row(database).patient_id == MISSING_ID
