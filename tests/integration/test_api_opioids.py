"""The opioid plan over the API: JSON answers with units and the table named, 4xx naming the
field, a fast taper refused without the physician's reason."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

API = "/api/v1"
PATIENT: dict[str, Any] = {
    "name": "Api Opioid",
    "age_years": 60,
    "sex": "female",
    "weight_kg": 70,
    "medications": [
        {"name": "oxycodone", "dose": 10, "unit": "mg", "frequency": "tds", "route": "oral"},
        {
            "name": "fentanyl",
            "dose": 25,
            "unit": "mcg/h",
            "frequency": "every 72 hours",
            "route": "transdermal",
        },
    ],
}


def _patient(client: TestClient, headers: dict[str, dict[str, str]]) -> int:
    response = client.post(f"{API}/patients", json=PATIENT, headers=headers["nurse"])
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_the_summary_gives_each_opioid_with_its_factor_and_the_total(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = _patient(client, headers)
    response = client.get(f"{API}/patients/{patient_id}/opioids", headers=headers["nurse"])
    assert response.status_code == 200, response.text
    ome = response.json()["ome"]
    lines = {line["opioid_id"]: line for line in ome["lines"]}
    # oxycodone 30 mg/day x 1.5 = 45; fentanyl patch 25 mcg/h x 2.4 = 60 (CDC 2022)
    assert lines["oxycodone"]["ome_mg_per_day"] == 45
    assert lines["fentanyl"]["ome_mg_per_day"] == 60
    assert ome["total_ome_mg_per_day"] == 105
    assert ome["table_id"] == "cdc-2022"


def test_an_unknown_table_is_a_4xx_naming_it(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = _patient(client, headers)
    response = client.get(
        f"{API}/patients/{patient_id}/opioids", params={"table": "nope"}, headers=headers["nurse"]
    )
    assert 400 <= response.status_code < 500
    assert "nope" in response.json()["detail"]


def test_a_plan_is_previewed_then_agreed_with_a_reason_for_a_fast_taper(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = _patient(client, headers)
    body = {
        "convert_to": {"opioid_id": "morphine", "route": "oral", "reduce_percent": 30},
        "taper": {"step_percent": 20, "every_days": 7, "start_date": "2026-12-07", "round_to": 5},
        "notes": "GP told of each step",
    }
    preview = client.post(
        f"{API}/patients/{patient_id}/opioid-plans/preview", json=body, headers=headers["nurse"]
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["status"] == "needs_override"
    # 105 mg OME less 30% = 73.5 mg/day oral morphine
    assert preview.json()["plan"]["conversion"]["daily_dose"] == 73.5
    refused = client.post(
        f"{API}/patients/{patient_id}/opioid-plans", json=body, headers=headers["physician"]
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "override_reason"
    agreed = client.post(
        f"{API}/patients/{patient_id}/opioid-plans",
        json={**body, "override_reason": "agreed with the patient; weekly review"},
        headers=headers["physician"],
    )
    assert agreed.status_code == 201, agreed.text
    assert agreed.json()["override_codes"]["taper"]


def test_a_bad_body_is_422_naming_the_field(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = _patient(client, headers)
    response = client.post(
        f"{API}/patients/{patient_id}/opioid-plans/preview",
        json={"convert_to": {"opioid_id": "morphine", "reduce_percent": 100}},
        headers=headers["physician"],
    )
    assert response.status_code == 422
    assert response.json()["field"] == "convert_to.reduce_percent"
    methadone = client.post(
        f"{API}/patients/{patient_id}/opioid-plans/preview",
        json={"convert_to": {"opioid_id": "methadone", "reduce_percent": 50}},
        headers=headers["physician"],
    )
    assert methadone.status_code == 422
    assert "methadone" in methadone.json()["detail"]


def test_doses_are_recorded_listed_and_corrected(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = _patient(client, headers)
    dose = {
        "taken_on": "2026-01-20",
        "medications": [{"name": "oxycodone", "daily_dose": 20, "unit": "mg", "route": "oral"}],
    }
    first = client.post(
        f"{API}/patients/{patient_id}/opioid-doses", json=dose, headers=headers["nurse"]
    )
    assert first.status_code == 201, first.text
    assert first.json()["ome_mg_per_day"] == 30
    fixed = client.post(
        f"{API}/opioid-doses/{first.json()['id']}/amend",
        json={
            **dose,
            "medications": [{**dose["medications"][0], "daily_dose": 15}],
            "reason": "typed 20 for 15",
        },
        headers=headers["nurse"],
    )
    assert fixed.status_code == 201, fixed.text
    listed = client.get(f"{API}/patients/{patient_id}/opioid-doses", headers=headers["physician"])
    assert [d["ome_mg_per_day"] for d in listed.json()] == [22.5]


def test_the_opioid_payloads_are_declared_field_by_field_in_the_api_schema(
    client: TestClient,
) -> None:
    """The OME, plan and dose views are typed models, not free-form objects."""
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    for name, fields in {
        "OmeSummary": {"ome"},
        "OmeView": {"lines", "total_ome_mg_per_day", "total_status", "not_converted"},
        "OpioidLineView": {"medication", "opioid_id", "ome_mg_per_day", "findings"},
        "OpioidPlanContent": {"ome", "conversion", "taper", "status"},
        "TaperPlanView": {"steps", "findings", "override"},
        "DoseView": {"medications", "result", "planned"},
        "PlanView": {"request", "plan", "override_codes"},
    }.items():
        assert fields <= set(schemas[name]["properties"]), name
    assert schemas["OmeSummary"]["properties"]["ome"] == {"$ref": "#/components/schemas/OmeView"}
