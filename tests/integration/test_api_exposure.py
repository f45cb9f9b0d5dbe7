"""Predicted exposure over the API, on SQLite and PostgreSQL: POST /pk/simulate, one session
of a signed order (GET /orders/{id}/exposure) and of a plan preview
(POST /patients/{id}/plans/exposure): typed answers in ng/mL with the model's identity, the
PK engine's bounds at the edge (422 naming the field), roles, the audit, finite numbers."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.test_api_roles import API, COURSE, DOCUMENT, Context

from ketapath.knowledge.pk_models import load_pk_input_bounds
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry

BOUNDS = load_pk_input_bounds()
PATIENT = {"weight_kg": 72, "age_years": 45, "sex": "female", "height_cm": 165}
INFUSION = {"start_min": 0, "end_min": 240, "rate_mg_per_h": 25.2}
SIMULATION: dict[str, Any] = {
    "patient": PATIENT,
    "regimen": {"infusions": [INFUSION], "boluses": [{"time_min": 0, "dose_mg": 7}]},
}


def _strict(response: Any) -> Any:
    """The body, refusing NaN and Infinity (not JSON)."""
    return json.loads(response.text, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))


def _simulate(client: TestClient, headers: dict[str, str], **changes: Any) -> Any:
    return client.post(f"{API}/pk/simulate", json={**SIMULATION, **changes}, headers=headers)


def _last_audit(database: Database) -> AuditEntry:
    with database.transaction() as session:
        row: AuditEntry = session.scalars(
            select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)
        ).one()
    return row


def test_a_simulation_gives_the_curves_in_ng_per_ml_the_summary_and_the_model(
    client: TestClient, headers: dict[str, dict[str, str]], database: Database
) -> None:
    response = _simulate(client, headers["nurse"])
    assert response.status_code == 200, response.text
    body = _strict(response)
    curves = body["curves"]
    n = len(curves["times_min"])
    assert curves["times_min"][0] == 0 and curves["times_min"][-1] == 600  # last dose + 6 h
    assert len(curves["plasma_ng_per_ml"]) == len(curves["effect_site_ng_per_ml"]) == n
    assert len(curves["norketamine_ng_per_ml"]) == n
    summary = body["summary"]
    assert summary["plasma"]["peak_at_min"] == 240
    assert summary["plasma"]["peak_ng_per_ml"] == max(curves["plasma_ng_per_ml"])
    assert summary["plasma"]["auc_method"] == "exact"
    assert summary["norketamine"]["label"] == "S-norketamine"
    assert summary["total_dose_mg"] == pytest.approx(7 + 25.2 * 4)
    model = body["model"]
    assert (model["id"], model["chosen_by"]) == ("perez-ruixo", "clinic rule")
    assert model["citation"].startswith("Perez-Ruixo et al. 2021, Table 3")
    assert "seed" not in json.dumps(body).lower()
    assert "Age 18-86 years" in model["population"]
    assert model["limitations"] and model["verification"].startswith("SECONDARY")
    assert body["findings"] == []
    row = _last_audit(database)
    assert (row.action, row.outcome, row.username) == ("exposure.simulate", "ok", "nurse")
    assert row.detail["model"] == "perez-ruixo" and row.patient_id is None


def test_a_model_without_norketamine_answers_null_for_it(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = _strict(_simulate(client, headers["physician"], model="kamp"))
    assert body["curves"]["norketamine_ng_per_ml"] is None
    assert body["summary"]["norketamine"] is None
    assert (body["model"]["id"], body["model"]["chosen_by"]) == ("kamp", "request")
    assert body["summary"]["plasma"]["label"] == "ketamine, plasma"


def test_a_patient_outside_the_model_s_study_is_warned_with_a_finding(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    body = _strict(
        _simulate(
            client, headers["researcher"], patient={**PATIENT, "age_years": 70}, model="otto-fanta"
        )
    )
    findings = body["findings"]
    assert [f["code"] for f in findings] == ["exposure:outside-model-range"]
    assert "above the otto-fanta model's range" in findings[0]["message"]
    assert findings[0]["citation"].startswith("Otto et al. 2021")


def test_a_subcutaneous_regimen_is_predicted_as_intravenous_with_a_warning(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    regimen = {"infusions": [INFUSION], "route": "sc"}
    body = _strict(_simulate(client, headers["physician"], regimen=regimen))
    assert "exposure:route-not-modelled" in [f["code"] for f in body["findings"]]


EDGES = [
    ("weight_kg", BOUNDS.weight_kg.minimum),
    ("weight_kg", BOUNDS.weight_kg.maximum),
    ("age_years", BOUNDS.age_years.minimum),
    ("age_years", BOUNDS.age_years.maximum),
    ("height_cm", BOUNDS.height_cm.minimum),
    ("height_cm", BOUNDS.height_cm.maximum),
]


@pytest.mark.parametrize(("field", "value"), EDGES)
def test_covariates_at_the_engine_s_bounds_are_accepted(
    client: TestClient, headers: dict[str, dict[str, str]], field: str, value: float
) -> None:
    response = _simulate(client, headers["physician"], patient={**PATIENT, field: value})
    assert response.status_code == 200, response.text
    _strict(response)


OUT_OF_BOUNDS = [
    ({"patient": {**PATIENT, "weight_kg": BOUNDS.weight_kg.minimum * 0.99}}, "patient.weight_kg"),
    ({"patient": {**PATIENT, "weight_kg": BOUNDS.weight_kg.maximum + 1}}, "patient.weight_kg"),
    ({"patient": {**PATIENT, "weight_kg": 5e-324}}, "patient.weight_kg"),
    ({"patient": {**PATIENT, "age_years": -1}}, "patient.age_years"),
    ({"patient": {**PATIENT, "age_years": BOUNDS.age_years.maximum + 1}}, "patient.age_years"),
    ({"patient": {**PATIENT, "height_cm": BOUNDS.height_cm.minimum - 1}}, "patient.height_cm"),
    ({"patient": {**PATIENT, "height_cm": BOUNDS.height_cm.maximum + 1}}, "patient.height_cm"),
    ({"patient": {**PATIENT, "sex": "other"}}, "patient.sex"),
    (
        {"regimen": {"infusions": [{**INFUSION, "rate_mg_per_h": 1e300}]}},
        "regimen.infusions[0].rate_mg_per_h",
    ),
    (
        {"regimen": {"infusions": [{**INFUSION, "rate_mg_per_h": -1}]}},
        "regimen.infusions[0].rate_mg_per_h",
    ),
    (
        {"regimen": {"infusions": [{**INFUSION, "end_min": BOUNDS.max_time_min + 1}]}},
        "regimen.infusions[0].end_min",
    ),
    ({"regimen": {"infusions": [{**INFUSION, "end_min": 0}]}}, "regimen.infusions[0]"),
    (
        {"regimen": {"boluses": [{"time_min": 0, "dose_mg": BOUNDS.max_bolus_mg + 1}]}},
        "regimen.boluses[0].dose_mg",
    ),
    ({"regimen": {"boluses": [], "infusions": []}}, "regimen"),
    ({"until_min": 0}, "until_min"),
    ({"until_min": BOUNDS.max_time_min + 1}, "until_min"),
    ({"step_min": 0}, "step_min"),
    ({"until_min": 100_000, "step_min": 1}, "step_min"),
    ({"model": "no-such-model"}, "model"),
    ({"model": "DROP TABLE"}, "model"),
]


@pytest.mark.parametrize(("change", "field"), OUT_OF_BOUNDS)
def test_out_of_bounds_input_is_422_naming_the_field_in_plain_words(
    client: TestClient, headers: dict[str, dict[str, str]], change: dict[str, Any], field: str
) -> None:
    response = _simulate(client, headers["physician"], **change)
    assert response.status_code == 422, response.text
    body = _strict(response)
    assert body["field"] == field
    assert body["detail"].startswith(f"{field}: ")


def test_not_a_number_is_refused_before_it_reaches_the_engine(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    text = json.dumps(SIMULATION).replace('"weight_kg": 72', '"weight_kg": NaN')
    response = client.post(
        f"{API}/pk/simulate",
        content=text,
        headers={**headers["physician"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert _strict(response)["field"] == "patient.weight_kg"


def test_the_largest_grid_and_extreme_doses_still_answer_finite_numbers(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    extreme = {
        "patient": {"weight_kg": BOUNDS.weight_kg.minimum},
        "regimen": {
            "infusions": [
                {"start_min": 0, "end_min": BOUNDS.max_time_min, "rate_mg_per_h": 120000}
            ],
            "boluses": [{"time_min": 0, "dose_mg": BOUNDS.max_bolus_mg}],
        },
        "until_min": BOUNDS.max_time_min,
        "step_min": BOUNDS.max_time_min / 4999,
    }
    response = client.post(f"{API}/pk/simulate", json=extreme, headers=headers["physician"])
    assert response.status_code == 200, response.text
    body = _strict(response)
    assert len(body["curves"]["times_min"]) <= 5002
    assert all(math.isfinite(v) and v >= 0 for v in body["curves"]["plasma_ng_per_ml"])


def test_an_admin_may_not_simulate_and_nobody_signed_out_may(
    client: TestClient, headers: dict[str, dict[str, str]], database: Database
) -> None:
    assert _simulate(client, headers["admin"]).status_code == 403
    row = _last_audit(database)
    assert (row.action, row.outcome) == ("exposure.simulate", "denied")
    assert client.post(f"{API}/pk/simulate", json=SIMULATION).status_code == 401


def test_an_order_s_exposure_is_its_first_session_for_the_patient_s_record(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    order_id = Context(database, users).order()
    response = client.get(f"{API}/orders/{order_id}/exposure", headers=headers["pharmacist"])
    assert response.status_code == 200, response.text
    body = _strict(response)
    assert (body["order_id"], body["session"], body["sessions"], body["session_day"]) == (
        order_id,
        1,
        1,
        1,
    )
    assert body["order_state"] == "usable" and body["protocol_id"] == "asra-initial"
    assert body["covariates"] == {
        "weight_kg": DOCUMENT["weight_kg"],
        "age_years": DOCUMENT["age_years"],
        "sex": DOCUMENT["sex"],
        "height_cm": None,
    }
    assert body["basis"].startswith("Session 1 of 1 (day 1) as ordered")
    row = _last_audit(database)
    assert (row.action, row.username, row.entity_id) == (
        "exposure.order",
        "pharmacist",
        str(order_id),
    )
    order = client.get(f"{API}/orders/{order_id}", headers=headers["physician"]).json()
    assert body["summary"]["total_dose_mg"] == pytest.approx(order["course"]["course_total_mg"])
    assert row.patient_id == order["patient_id"]

    # the same doses and covariates through /pk/simulate give the same curves
    step = order["course"]["sessions"][0]["steps"][0]
    same = _simulate(
        client,
        headers["physician"],
        patient={"weight_kg": 80.0, "age_years": 50, "sex": "male"},
        regimen={"infusions": [{k: step[k] for k in ("start_min", "end_min", "rate_mg_per_h")}]},
    ).json()
    assert same["curves"] == body["curves"]


def test_an_order_s_other_session_and_model_and_a_session_it_does_not_have(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    order_id = Context(database, users).order()
    url = f"{API}/orders/{order_id}/exposure"
    chosen = _strict(client.get(url, params={"model": "domino"}, headers=headers["nurse"]))
    assert (chosen["model"]["id"], chosen["model"]["chosen_by"]) == ("domino", "request")
    missing = client.get(url, params={"session": 2}, headers=headers["nurse"])
    assert missing.status_code == 422
    assert _strict(missing)["field"] == "session"
    assert "has 1 session(s)" in missing.json()["detail"]
    unknown = client.get(url, params={"model": "nope"}, headers=headers["nurse"])
    assert (unknown.status_code, unknown.json()["field"]) == (422, "model")
    assert client.get(f"{API}/orders/999999/exposure", headers=headers["nurse"]).status_code == 404
    refused = client.get(url, headers=headers["researcher"])
    assert refused.status_code == 403


def test_a_plan_preview_s_exposure_names_its_session_and_its_course(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    patient_id = Context(database, users).patient()
    request = {"protocol_id": "crps-schwartzman-10day", "setting": "clinic"}
    preview = client.post(
        f"{API}/patients/{patient_id}/plans", json=request, headers=headers["physician"]
    ).json()
    response = client.post(
        f"{API}/patients/{patient_id}/plans/exposure",
        json={**request, "session": 10, "model": "otto-fanta"},
        headers=headers["physician"],
    )
    assert response.status_code == 200, response.text
    body = _strict(response)
    assert (body["session"], body["sessions"], body["session_day"]) == (10, 10, 10)
    assert body["course_digest"] == preview["digest"]
    assert body["course_status"] == preview["status"]
    assert body["summary"]["total_dose_mg"] == pytest.approx(
        preview["course"]["sessions"][9]["total_mg"]
    )
    # a 50-year-old is outside Otto 2021's healthy young volunteers
    assert [f["code"] for f in body["findings"]] == ["exposure:outside-model-range"]
    assert _last_audit(database).action == "exposure.plan"


def test_a_plan_over_a_hard_limit_is_refused_as_its_preview_is(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    database: Database,
    users: dict[str, Actor],
) -> None:
    patient_id = Context(database, users).patient()
    hard = {"protocol_id": "crps-sigtermans-continuous", "setting": "clinic"}
    response = client.post(
        f"{API}/patients/{patient_id}/plans/exposure", json=hard, headers=headers["physician"]
    )
    assert response.status_code == 422
    body = _strict(response)
    assert body["field"] == "limits" and body["findings"]
    missing = client.post(
        f"{API}/patients/999999/plans/exposure", json=COURSE, headers=headers["physician"]
    )
    assert missing.status_code == 404
