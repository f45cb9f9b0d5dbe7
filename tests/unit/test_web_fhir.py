"""FHIR on the web pages: a physician's patient page offers the Bundle as a download; the
import form registers a patient or amends a record, and refuses a bad Bundle naming every
problem with nothing written; the roles that may not see either do not."""

from __future__ import annotations

import copy
import html
import json

from fastapi.testclient import TestClient
from tests.conftest import fhir_schema_errors
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.interop import fhir

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


def _bundle(client: TestClient, patient_id: int = 1) -> dict:
    response = client.get(f"/patients/{patient_id}/fhir.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert 'filename="patient-1-fhir.json"' in response.headers["content-disposition"]
    return json.loads(response.content)


def _bundle_as_physician(client: TestClient) -> dict:
    token = signed_in(client, "physician")
    bundle = _bundle(client)
    client.post("/logout", data={"csrf_token": token})
    return bundle


def test_a_physician_downloads_the_patient_s_bundle_from_the_patient_page(
    client: TestClient,
) -> None:
    signed_in(client, "physician")
    page = client.get("/patients/1").text
    assert 'href="/patients/1/fhir.json"' in page and "Export FHIR bundle" in page
    bundle = _bundle(client)
    assert fhir.validate_bundle(bundle) == [] and fhir_schema_errors(bundle) == []


def test_a_nurse_sees_no_export_and_a_researcher_reaches_neither_page(client: TestClient) -> None:
    signed_in(client, "nurse")
    page = client.get("/patients/1").text
    assert "Export FHIR bundle" not in page and "Import FHIR bundle" in page
    assert client.get("/patients/1/fhir.json").status_code == 403
    assert "Import a FHIR bundle" in client.get("/patients").text
    client.post("/logout", data={"csrf_token": signed_in(client, "nurse")})
    signed_in(client, "researcher")
    assert client.get("/patients/1/fhir.json").status_code == 403
    assert client.get("/fhir/import").status_code == 403


def _post(client: TestClient, token: str, bundle: object, **fields: str):  # type: ignore[no-untyped-def]
    body = json.dumps(bundle).encode()
    return client.post(
        "/fhir/import",
        data={"csrf_token": token, **fields},
        files={"file": ("bundle.json", body, "application/fhir+json")},
    )


def test_the_import_form_registers_a_patient_and_amends_a_record(client: TestClient) -> None:
    token = signed_in(client, "physician")
    bundle = _bundle(client)
    made = _post(client, token, bundle)
    assert made.status_code == 201, made.text
    assert "Patient registered" in made.text and 'href="/patients/4"' in made.text
    form = client.get("/fhir/import?patient=1&version=1").text
    assert 'value="1"' in form
    amended = _post(
        client,
        token,
        bundle,
        **{"import-patient": "1", "import-version": "1", "import-reason": "GP record"},
    )
    assert amended.status_code == 201, amended.text
    assert "Record amended" in amended.text and "record version 2" in amended.text


def test_a_bad_bundle_is_refused_with_every_problem_and_nothing_is_written(
    client: TestClient,
) -> None:
    bundle = _bundle_as_physician(client)
    token = signed_in(client, "nurse")
    broken = copy.deepcopy(bundle)
    broken["entry"][0]["resource"]["birthDate"] = "1968-02-30"
    broken["entry"][0]["resource"]["gender"] = "other"
    refused = _post(client, token, broken)
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert "The Bundle was refused" in text and "entry[0].resource.birthDate" in text
    missing = _post(client, token, bundle, **{"import-patient": "1"})
    assert missing.status_code == 422 and "Version amended" in html.unescape(missing.text)
    not_json = client.post(
        "/fhir/import",
        data={"csrf_token": token},
        files={"file": ("x.json", b"{nope", "application/json")},
    )
    assert not_json.status_code == 422 and "not a JSON file" in not_json.text
    assert 'href="/patients/4"' not in client.get("/patients").text
