"""Bounded input at the API: ids, clinical numbers, dates, text lengths; never a 5xx."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from tests.integration.conftest import bearer
from tests.integration.test_api import a_patient

from ketapath.api.app import create_app
from ketapath.api.params import MAX_RECORD_ID
from ketapath.config import Settings
from ketapath.services.clock import ClinicClock
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

API = "/api/v1"
BEYOND_64_BITS = "8422457134609351774586584170496"


def id_operations(client: TestClient) -> list[tuple[str, str, list[str]]]:
    """Every (method, path, integer path parameters) of the OpenAPI document."""
    found = []
    for path, item in client.get(f"{API}/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            names = [
                p["name"]
                for p in operation.get("parameters", [])
                if p["in"] == "path" and p["schema"].get("type") == "integer"
            ]
            if names:
                found.append((method.upper(), path, names))
    return found


def test_every_integer_path_id_is_bounded_in_the_schema(client: TestClient) -> None:
    operations = id_operations(client)
    assert len(operations) >= 20
    spec = client.get(f"{API}/openapi.json").json()
    for method, path, names in operations:
        for parameter in spec["paths"][path][method.lower()]["parameters"]:
            if parameter["name"] in names:
                assert parameter["schema"]["minimum"] == 1, (method, path)
                assert parameter["schema"]["maximum"] == MAX_RECORD_ID, (method, path)


@pytest.mark.parametrize("bad_id", [BEYOND_64_BITS, str(MAX_RECORD_ID + 1), "0", "-1"])
def test_an_id_no_table_can_hold_is_422_naming_it_on_every_operation(
    client: TestClient, headers: dict[str, dict[str, str]], bad_id: str
) -> None:
    for method, path, names in id_operations(client):
        url = re.sub(r"\{[a-z_]+\}", bad_id, path)
        response = client.request(method, url, headers=headers["physician"], json={})
        assert response.status_code == 422, (method, url, response.text)
        assert response.json()["field"] in names


def test_the_largest_id_a_table_can_hold_is_simply_not_found(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(f"{API}/patients/{MAX_RECORD_ID}", headers=headers["physician"])
    assert response.status_code == 404
    assert response.json()["field"] == "patient_id"


def test_the_audit_filter_by_patient_is_bounded_too(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(
        f"{API}/audit", params={"patient_id": BEYOND_64_BITS}, headers=headers["admin"]
    )
    assert response.status_code == 422
    assert response.json()["field"] == "patient_id"


@pytest.mark.parametrize(
    ("where", "request_args"),
    [
        ("query", {"method": "GET", "url": f"{API}/patients", "params": {"q": "a\x00b"}}),
        ("path", {"method": "POST", "url": f"{API}/users/nu%00rse/unlock"}),
        (
            "body",
            {
                "method": "POST",
                "url": f"{API}/patients",
                "content": '{"name": "A\\u0000B", "sex": "male", "weight_kg": 70, "age_years": 40}',
                "headers": {"content-type": "application/json"},
            },
        ),
        (
            "body",
            {
                "method": "POST",
                "url": f"{API}/patients",
                "content": '{"name": "\\ud800", "sex": "male", "weight_kg": 70, "age_years": 40}',
                "headers": {"content-type": "application/json"},
            },
        ),
    ],
)
def test_text_no_database_can_hold_is_422_naming_where(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    where: str,
    request_args: dict[str, Any],
) -> None:
    sent_headers = {**request_args.pop("headers", {}), **headers["physician"]}
    response = client.request(**request_args, headers=sent_headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == where


def test_a_web_form_with_a_nul_character_is_an_html_422(client: TestClient) -> None:
    response = client.post(
        "/login",
        content="username=a%00b&password=x&csrf_token=y",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")


def test_a_search_for_a_number_no_id_can_be_is_a_search_not_a_500(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(
        f"{API}/patients", params={"q": "9223372036854775808"}, headers=headers["nurse"]
    )
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize(("zone", "status"), [("Pacific/Kiritimati", 201), ("Etc/GMT+12", 422)])
def test_a_birth_date_is_checked_against_the_clinics_today_not_the_servers(
    database: Database, users: dict[str, Actor], zone: str, status: int
) -> None:
    kiritimati_today = ClinicClock(ZoneInfo("Pacific/Kiritimati")).today()
    settings = Settings(database_url=database.url, secret_key="zone-test-secret", timezone=zone)
    with TestClient(create_app(settings, database=database), base_url="https://testserver") as c:
        newborn = a_patient(birth_date=kiritimati_today.isoformat(), weight_kg=3.5)
        response = c.post(f"{API}/patients", json=newborn, headers=bearer(c, "nurse"))
    assert response.status_code == status, response.text
