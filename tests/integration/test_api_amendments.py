"""Amendments name the version they amend on every interface: amending something that is no
longer the current one is refused with 409, never "last writer wins"."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.testclient import TestClient
from tests.integration.test_api import a_patient
from tests.integration.test_api_opioids import PATIENT as OPIOID_PATIENT

from ketapath.services import patients

API = "/api/v1"


def _post(client: TestClient, url: str, body: dict[str, Any], who: dict[str, str]) -> Any:
    return client.post(f"{API}{url}", json=body, headers=who)


def test_the_service_cannot_amend_a_record_without_the_version_it_amends() -> None:
    parameter = inspect.signature(patients.amend_patient).parameters["expected_version"]
    assert parameter.default is inspect.Parameter.empty
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY


def test_a_patient_amendment_without_expected_version_is_422_naming_it(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    nurse = headers["nurse"]
    patient_id = _post(client, "/patients", a_patient(), nurse).json()["id"]
    url = f"/patients/{patient_id}/amendments"
    outcomes = [
        _post(client, url, {"document": a_patient(weight_kg=w), "reason": "weighed"}, nurse)
        for w in (81, 82)
    ]
    assert [r.status_code for r in outcomes] == [422, 422]
    assert {r.json()["field"] for r in outcomes} == {"expected_version"}
    current = client.get(f"{API}/patients/{patient_id}", headers=nurse).json()
    assert current["version"] == 1


def test_two_amendments_of_one_version_give_one_new_version_and_one_409(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    nurse = headers["nurse"]
    patient_id = _post(client, "/patients", a_patient(), nurse).json()["id"]
    url = f"/patients/{patient_id}/amendments"
    codes = [
        _post(
            client,
            url,
            {"document": a_patient(weight_kg=w), "reason": "weighed", "expected_version": 1},
            nurse,
        ).status_code
        for w in (81, 82)
    ]
    assert codes == [201, 409]
    current = client.get(f"{API}/patients/{patient_id}", headers=nurse).json()
    assert (current["version"], current["document"]["weight_kg"]) == (2, 81)


def test_correcting_an_assessment_that_was_already_corrected_is_409(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    nurse = headers["nurse"]
    patient_id = _post(client, "/patients", a_patient(), nurse).json()["id"]
    first = _post(
        client,
        f"/patients/{patient_id}/assessments",
        {"instrument_id": "nrs", "answers": {"pain": 7}},
        nurse,
    ).json()["id"]
    body = {"instrument_id": "nrs", "answers": {"pain": 6}, "reason": "misheard"}
    codes = [
        _post(client, f"/assessments/{first}/amendments", body, nurse).status_code for _ in range(2)
    ]
    assert codes == [201, 409]


def test_correcting_a_dose_record_that_was_already_corrected_is_409(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    nurse = headers["nurse"]
    patient_id = _post(client, "/patients", OPIOID_PATIENT, nurse).json()["id"]
    dose = {
        "taken_on": "2025-01-13",
        "medications": [{"name": "morphine", "daily_dose": 30, "unit": "mg", "route": "oral"}],
    }
    first = _post(client, f"/patients/{patient_id}/opioid-doses", dose, nurse).json()["id"]
    correction = {**dose, "reason": "misread"}
    codes = [
        _post(client, f"/opioid-doses/{first}/amend", correction, nurse).status_code
        for _ in range(2)
    ]
    assert codes == [201, 409]


def test_withdrawing_a_withdrawn_opioid_plan_is_409(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    physician = headers["physician"]
    patient_id = _post(client, "/patients", OPIOID_PATIENT, headers["nurse"]).json()["id"]
    plan = {"convert_to": {"opioid_id": "morphine", "route": "oral", "reduce_percent": 25}}
    agreed = _post(client, f"/patients/{patient_id}/opioid-plans", plan, physician)
    assert agreed.status_code == 201, agreed.text
    codes = [
        _post(
            client, f"/opioid-plans/{agreed.json()['id']}/withdraw", {"reason": "no"}, physician
        ).status_code
        for _ in range(2)
    ]
    assert codes == [200, 409]


def test_cancelling_a_cancelled_order_is_409(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    physician = headers["physician"]
    document = a_patient(
        consent="given",
        purpose=["pain_relief"],
        pregnancy="not_applicable",
        assessment={
            "central_sensitisation": True,
            "opioid_context": {"poor_opioid_response": True},
        },
    )
    patient_id = _post(client, "/patients", document, headers["nurse"]).json()["id"]
    _post(client, f"/patients/{patient_id}/screenings", {}, physician)
    signed = _post(
        client,
        f"/patients/{patient_id}/orders",
        {"protocol_id": "asra-initial", "override_reason": "reviewed"},
        physician,
    )
    assert signed.status_code == 201, signed.text
    codes = [
        _post(
            client, f"/orders/{signed.json()['id']}/cancel", {"reason": "declined"}, physician
        ).status_code
        for _ in range(2)
    ]
    assert codes == [200, 409]
