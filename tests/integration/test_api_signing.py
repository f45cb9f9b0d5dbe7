"""The signing checks over the REST API on both databases: consent, the typed facts of an
order, stale orders and their confirmation."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from tests.integration.test_services_orders import ELIGIBLE

API = "/api/v1"
COURSE = {"protocol_id": "asra-initial", "setting": "clinic"}
WEIGHED = (date.today() - timedelta(days=2)).isoformat()
DOCUMENT: dict[str, Any] = {
    **ELIGIBLE,
    "weight_kg": 68,
    "weight_measured_on": WEIGHED,
    "laterality": "right",
    "allergies": [{"substance": "latex", "reaction": "hives"}],
}
Headers = dict[str, dict[str, str]]


def screened(client: TestClient, headers: Headers, **changes: Any) -> int:
    created = client.post(f"{API}/patients", json={**DOCUMENT, **changes}, headers=headers["nurse"])
    assert created.status_code == 201, created.text
    patient_id: int = created.json()["id"]
    screen = client.post(f"{API}/patients/{patient_id}/screenings", headers=headers["physician"])
    assert screen.status_code == 201, screen.text
    return patient_id


def reweighed(client: TestClient, headers: Headers, patient_id: int, weight_kg: float) -> int:
    current = client.get(f"{API}/patients/{patient_id}", headers=headers["nurse"]).json()
    body = {
        "document": {**DOCUMENT, "weight_kg": weight_kg},
        "reason": "re-weighed",
        "expected_version": current["version"],
    }
    answer = client.post(
        f"{API}/patients/{patient_id}/amendments", json=body, headers=headers["nurse"]
    )
    assert answer.status_code == 201, answer.text
    version: int = answer.json()["version"]
    return version


def signed(client: TestClient, headers: Headers) -> tuple[int, dict[str, Any]]:
    patient_id = screened(client, headers)
    answer = client.post(
        f"{API}/patients/{patient_id}/orders", json=COURSE, headers=headers["physician"]
    )
    assert answer.status_code == 201, answer.text
    return patient_id, answer.json()


def test_signing_while_consent_is_not_yet_asked_is_a_422_naming_consent(
    client: TestClient, headers: Headers
) -> None:
    patient_id = screened(client, headers, consent="pending")
    answer = client.post(
        f"{API}/patients/{patient_id}/orders",
        json={**COURSE, "override_reason": "urgent"},
        headers=headers["physician"],
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["field"] == "consent"
    assert "not yet asked" in body["detail"] and "record the patient's consent" in body["detail"]
    assert body["findings"][0]["code"] == "order:consent-not-given"
    listed = client.get(f"{API}/patients/{patient_id}/orders", headers=headers["physician"])
    assert listed.json() == []
    preview = client.post(
        f"{API}/patients/{patient_id}/plans", json=COURSE, headers=headers["nurse"]
    ).json()
    assert preview["facts"]["consent"] == "pending"


def test_a_signed_order_carries_the_facts_the_physician_saw(
    client: TestClient, headers: Headers
) -> None:
    _, order = signed(client, headers)
    facts = order["facts"]
    assert facts["weight_kg"] == 68 and facts["weight_measured_on"] == WEIGHED
    assert facts["weight_age_days"] == 2
    assert facts["allergies"] == [{"substance": "latex", "reaction": "hives"}]
    assert (facts["laterality"], facts["pregnancy"], facts["consent"]) == (
        "right",
        "not_pregnant",
        "given",
    )
    assert (order["state"], order["usable"], order["stale"]) == ("usable", True, False)


def test_the_order_view_says_stale_and_what_changed_after_the_weight_changes(
    client: TestClient, headers: Headers
) -> None:
    patient_id, order = signed(client, headers)
    reweighed(client, headers, patient_id, 90)
    view = client.get(f"{API}/orders/{order['id']}", headers=headers["pharmacist"]).json()
    assert view["stale"] is True and view["state"] == "stale" and view["usable"] is False
    assert view["stale_message"] == "signed at 68 kg; the record now says 90 kg"
    assert view["stale_changes"] == [
        {
            "fact": "weight_kg",
            "label": "weight",
            "unit": "kg",
            "signed": 68.0,
            "now": 90.0,
            "since": "signed",
            "text": "signed at 68 kg; the record now says 90 kg",
        }
    ]
    assert view["findings"][0]["code"] == "order:stale"
    (listed,) = client.get(f"{API}/patients/{patient_id}/orders", headers=headers["nurse"]).json()
    assert listed["stale_message"] == view["stale_message"]


def test_a_physician_confirms_a_stale_order_over_the_api(
    client: TestClient, headers: Headers
) -> None:
    patient_id, order = signed(client, headers)
    path = f"{API}/orders/{order['id']}/confirmations"
    not_stale = client.post(
        path, json={"reason": "ok", "patient_version": 1}, headers=headers["physician"]
    )
    assert not_stale.status_code == 409
    version = reweighed(client, headers, patient_id, 90)
    body = {"reason": "re-weighed at 90 kg; fixed 80 mg dose stays", "patient_version": version}
    assert client.post(path, json=body, headers=headers["nurse"]).status_code == 403
    stale_version = client.post(
        path, json={**body, "patient_version": version - 1}, headers=headers["physician"]
    )
    assert stale_version.status_code == 409 and stale_version.json()["field"] == "patient_version"
    missing = client.post(path, json={"reason": "ok"}, headers=headers["physician"])
    assert missing.status_code == 422 and missing.json()["field"] == "patient_version"
    confirmed = client.post(path, json=body, headers=headers["physician"])
    assert confirmed.status_code == 201, confirmed.text
    view = confirmed.json()
    assert (view["state"], view["stale"]) == ("usable", False)
    (confirmation,) = view["confirmations"]
    assert confirmation["confirmed_by"] == "physician"
    assert confirmation["patient_version"] == version
    assert confirmation["reason"] == body["reason"]
    assert confirmation["changes"][0]["text"] == "signed at 68 kg; the record now says 90 kg"


def test_the_openapi_document_types_the_order_facts_and_the_confirmation(
    client: TestClient,
) -> None:
    schemas = client.get(f"{API}/openapi.json").json()["components"]["schemas"]
    facts = schemas["OrderFacts"]["properties"]
    assert {"weight_measured_on", "allergies", "laterality", "pregnancy", "consent"} <= set(facts)
    order = schemas["OrderView"]["properties"]
    assert {"stale", "stale_changes", "stale_message", "state", "confirmations"} <= set(order)
    assert set(schemas["ConfirmRequest"]["required"]) == {"reason", "patient_version"}
