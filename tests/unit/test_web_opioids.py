"""The opioid plan page: OME with the table named, preview and agreement of a plan
(physician only, reason for a fast taper), doses recorded and corrected by nurses."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.services import opioids
from ketapath.services.permissions import PHYSICIAN, Actor
from ketapath.store.db import Database
from ketapath.web.opioid_pages import dose_request, plan_request

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below

READER = Actor(user_id=None, username="test-reader", role=PHYSICIAN)
# Patient 1 of the web tests takes oxycodone 20 mg bd orally (60 mg OME/day by CDC 2022).
PLAN = {
    "convert_opioid": "morphine",
    "convert_route": "oral",
    "reduce_percent": "25",
    "step_percent": "10",
    "basis": "current",
    "every_days": "7",
    "start_date": "2026-12-07",
    "round_to": "5",
    "notes": "GP told of every step",
}


def test_the_plan_form_becomes_the_service_request():
    body = plan_request(PLAN)
    assert body["convert_to"] == {"opioid_id": "morphine", "route": "oral", "reduce_percent": "25"}
    assert body["taper"]["basis"] == "current" and body["taper"]["round_to"] == "5"
    assert "opioid_id" not in body["taper"]
    assert "convert_to" not in plan_request({"step_percent": "10", "every_days": "7"})
    assert "taper" not in plan_request({"convert_opioid": "morphine"})


def test_the_dose_form_skips_empty_rows():
    body = dose_request(
        {
            "taken_on": "2026-01-02",
            "dose_name_1": "morphine",
            "dose_daily_dose_1": "30",
            "dose_unit_1": "mg",
            "dose_route_1": "oral",
            "dose_route_0": "oral",
        }
    )
    assert body["medications"] == [
        {"name": "morphine", "daily_dose": "30", "unit": "mg", "route": "oral"}
    ]


def test_the_page_shows_the_ome_of_each_opioid_and_names_the_table(client: TestClient):
    signed_in(client, "pharmacist")
    page = client.get("/patients/1/opioids")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "CDC" in text
    assert 'id="ome-total">60<' in page.text
    assert "1.5 per mg/day" in text
    assert "Only a physician agrees" not in text  # no preview asked yet


def test_a_nurse_previews_but_only_a_physician_agrees(client: TestClient, database: Database):
    signed_in(client, "nurse")
    preview = client.get("/patients/1/opioids", params=PLAN)
    text = html.unescape(preview.text)
    # 60 mg OME less 25% = 45 mg/day oral morphine
    assert "oral morphine 45 mg/day" in text
    assert "Only a physician agrees an opioid plan." in text
    assert "Agree the plan" not in text
    client.cookies.clear()
    token = signed_in(client, "nurse")
    refused = client.post("/patients/1/opioid-plans", data={**PLAN, "csrf_token": token})
    assert refused.status_code == 403
    assert opioids.list_opioid_plans(database, READER, 1) == []

    client.cookies.clear()
    token = signed_in(client, "physician")
    page = client.get("/patients/1/opioids", params=PLAN)
    assert "Agree the plan" in page.text and 'id="plan-status"' in page.text
    agreed = client.post(
        "/patients/1/opioid-plans", data={**PLAN, "patient_version": "1", "csrf_token": token}
    )
    assert agreed.status_code == 303, agreed.text
    (plan,) = opioids.list_opioid_plans(database, READER, 1)
    assert plan.agreed_by == "physician" and plan.plan.conversion is not None
    assert plan.plan.conversion.daily_dose == 45
    shown = html.unescape(client.get("/patients/1/opioids").text)
    assert "Agreed by <strong>physician</strong>" in shown and "GP told of every step" in shown


def test_a_fast_taper_needs_a_reason_on_the_page(client: TestClient, database: Database):
    token = signed_in(client, "physician")
    fast = {**PLAN, "step_percent": "30", "basis": "original"}
    page = html.unescape(client.get("/patients/1/opioids", params=fast).text)
    assert "Needs a physician's override" in page and "Reason for override" in page
    refused = client.post("/patients/1/opioid-plans", data={**fast, "csrf_token": token})
    assert refused.status_code == 422
    assert "override_reason" in html.unescape(refused.text)
    assert opioids.list_opioid_plans(database, READER, 1) == []
    agreed = client.post(
        "/patients/1/opioid-plans",
        data={**fast, "override_reason": "short exposure", "csrf_token": token},
    )
    assert agreed.status_code == 303
    (plan,) = opioids.list_opioid_plans(database, READER, 1)
    assert plan.override_reason == "short exposure"


def test_a_bad_entry_shows_the_form_again_naming_the_field(client: TestClient):
    signed_in(client, "physician")
    page = client.get("/patients/1/opioids", params={**PLAN, "convert_opioid": "methadone"})
    assert page.status_code == 422
    text = html.unescape(page.text)
    assert 'id="plan-errors"' in text and '<a href="#convert_opioid">' in text
    assert 'id="convert_opioid-error"' in text and "conversion to oral methadone" in text
    assert 'value="25"' in text  # what was typed is kept
    page = client.get(
        "/patients/1/opioids",
        params={**PLAN, "reduce_percent": "150", "step_percent": "abc", "every_days": "0"},
    )
    assert page.status_code == 422
    text = html.unescape(page.text)
    assert "convert_to.reduce_percent" not in text
    # every problem at once, each beside its field
    assert "There are 3 problems" in text
    assert "Reduction for incomplete cross-tolerance must be less than 100." in text
    assert "Reduction per step must be a number." in text
    assert "Days between steps must be 1 or more." in text
    assert 'value="abc"' in text


def test_a_physician_withdraws_a_plan_with_a_reason(client: TestClient, database: Database):
    token = signed_in(client, "physician")
    client.post("/patients/1/opioid-plans", data={**PLAN, "csrf_token": token})
    (plan,) = opioids.list_opioid_plans(database, READER, 1)
    response = client.post(
        f"/opioid-plans/{plan.id}/withdraw", data={"reason": "declined", "csrf_token": token}
    )
    assert response.status_code == 303
    (plan,) = opioids.list_opioid_plans(database, READER, 1)
    assert plan.status == "withdrawn" and plan.withdraw_reason == "declined"
    assert "No plan is agreed." in client.get("/patients/1/opioids").text


def test_a_nurse_records_a_dose_and_corrects_it(client: TestClient, database: Database):
    token = signed_in(client, "nurse")
    form = {
        "taken_on": "2026-01-20",
        "dose_name_0": "oxycodone",
        "dose_daily_dose_0": "30",
        "dose_unit_0": "mg",
        "dose_route_0": "oral",
        "csrf_token": token,
    }
    assert client.post("/patients/1/opioid-doses", data=form).status_code == 303
    (dose,) = opioids.list_opioid_doses(database, READER, 1)
    assert dose.ome_mg_per_day == 45
    page = client.get("/patients/1/opioids")
    assert 'id="dose-list"' in page.text and "ome-chart" in page.text
    correction = html.unescape(client.get("/patients/1/opioids", params={"correct": dose.id}).text)
    assert "Correct the record of 2026-01-20" in correction
    assert f'name="amends" value="{dose.id}"' in correction
    no_reason = client.post(
        "/patients/1/opioid-doses", data={**form, "dose_daily_dose_0": "20", "amends": dose.id}
    )
    assert no_reason.status_code == 422
    fixed = client.post(
        "/patients/1/opioid-doses",
        data={**form, "dose_daily_dose_0": "20", "amends": dose.id, "reason": "misread"},
    )
    assert fixed.status_code == 303
    (current,) = opioids.list_opioid_doses(database, READER, 1)
    assert current.ome_mg_per_day == 30 and current.amends_id == dose.id


def test_a_dose_with_an_unknown_unit_is_refused_and_kept_on_the_form(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/opioid-doses",
        data={
            "taken_on": "2026-01-20",
            "dose_name_0": "morphine",
            "dose_daily_dose_0": "3",
            "dose_unit_0": "spoonfuls",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "medications[0]" not in text and 'value="spoonfuls"' in text
    assert "Unit in row 1: unknown unit 'spoonfuls'" in text
    assert 'aria-describedby="dose_unit_0-error"' in text


def test_a_count_of_tablets_of_a_known_combination_is_recorded_with_its_ome(
    client: TestClient,
):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/opioid-doses",
        data={
            "taken_on": "2026-01-20",
            "dose_name_0": "co-codamol 30/500",
            "dose_daily_dose_0": "8",
            "dose_unit_0": "tablets",
            "dose_route_0": "oral",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
    page = html.unescape(client.get("/patients/1/opioids").text)
    # 8 tablets a day x codeine 30 mg = 240 mg/day x 0.15 (CDC 2022) = 36 mg OME/day
    assert "36.0" in page


def test_researchers_and_admins_do_not_see_the_opioid_page(client: TestClient):
    for role in ("researcher", "admin"):
        client.cookies.clear()
        signed_in(client, role)
        assert client.get("/patients/1/opioids").status_code == 403
