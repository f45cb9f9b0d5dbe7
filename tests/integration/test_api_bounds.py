"""Bounded input at the API: ids, clinical numbers, dates, text lengths; never a 5xx."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.integration.test_api import a_patient

from ketapath.api.params import MAX_RECORD_ID

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


def created(client: TestClient, headers: dict[str, str], **changes: Any) -> int:
    response = client.post(f"{API}/patients", json=a_patient(**changes), headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])
