"""Every form of the pages helps: all problems at once, each in a clinician's words beside its
field (``aria-invalid``, ``aria-describedby``) and in a summary that links to it, what was typed
kept, required fields marked, lengths limited as the server limits them."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from tests.unit.test_web_opioids import PLAN
from tests.unit.test_web_orders import SOFT, screened, sign_form
from tests.unit.test_web_record import FILLED
from tests.unit.web_app import client, database, form_token, migrated, signed_in

from ketapath.domain.patient import Medication, Patient
from ketapath.services import auth, opioids, orders
from ketapath.services.permissions import PHYSICIAN, Actor
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web.forms import max_length

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below

READER = Actor(user_id=None, username="test-reader", role=PHYSICIAN)
TOO_LONG = "r" * (REASON_LENGTH + 1)


def problem(text: str, field: str) -> str:
    """The message shown beside ``field`` (empty when it has none)."""
    hidden = '<span class="visually-hidden">Problem: </span>'
    found = re.search(rf'id="{re.escape(field)}-error">{hidden}(.*?)</p>', text)
    return html.unescape(found[1]) if found else ""


def control(text: str, field: str) -> str:
    found = re.search(rf'<(?:input|select|textarea|fieldset)[^>]* id="{field}"[^>]*>', text)
    found = found or re.search(rf'<(?:input|select|textarea|fieldset) id="{field}"[^>]*>', text)
    assert found, field
    return found[0]


def summary_links(text: str, summary_id: str) -> list[str]:
    start = text.index(f'id="{summary_id}"')
    block = text[start : text.index("</div>", start)]
    return re.findall(r'<a href="#([^"]+)">', block)


def test_sign_in_reports_both_empty_fields_at_once_and_limits_their_length(client: TestClient):
    page = client.get("/login").text
    assert f'maxlength="{auth.USERNAME_LENGTH}"' in control(page, "username")
    assert f'maxlength="{auth.PASSWORD_LENGTH}"' in control(page, "password")
    response = client.post(
        "/login", data={"username": " ", "password": "", "csrf_token": form_token(page)}
    )
    assert response.status_code == 422
    assert problem(response.text, "username") == "User name is required."
    assert problem(response.text, "password") == "Password is required."
    assert summary_links(response.text, "sign-in-errors") == ["username", "password"]
    long_name = client.post(
        "/login",
        data={"username": "n" * 100, "password": "x", "csrf_token": form_token(page)},
    )
    assert long_name.status_code == 422  # a page with the form, not an error page
    assert problem(long_name.text, "username").startswith("User name can be at most 64")
    assert 'value="' + "n" * 100 + '"' in long_name.text


def test_an_amendment_reports_a_missing_reason_and_a_wrong_number_at_once(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/record",
        data={**FILLED, "weight_kg": "0", "expected_version": "1", "csrf_token": token},
    )
    assert response.status_code == 422
    assert problem(response.text, "reason") == "Reason for the amendment is required."
    assert problem(response.text, "weight_kg").startswith("Weight must be between")
    assert summary_links(response.text, "record-errors") == ["weight_kg", "reason"]
    assert f'maxlength="{REASON_LENGTH}"' in control(response.text, "reason")


def test_the_record_form_limits_each_text_to_what_the_record_holds(client: TestClient):
    signed_in(client, "nurse")
    page = client.get("/patients/new").text
    assert f'maxlength="{max_length(Patient, "gp")}"' in control(page, "gp")
    assert f'maxlength="{max_length(Medication, "unit")}"' in control(page, "med_unit_0")
    assert f'maxlength="{max_length(Medication, "route")}"' in control(page, "med_route_0")
    assert 'inputmode="decimal" maxlength="24"' in control(page, "weight_kg")


def test_an_assessment_reports_no_answer_and_a_date_before_1900_at_once(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/assessments",
        data={"csrf_token": token, "instrument_id": "nrs", "administered_at": "1899-12-31T10:00"},
    )
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Answer at least one item." in text
    assert problem(response.text, "administered_at") == (
        "Given at cannot be before 1 January 1900."
    )
    assert 'value="1899-12-31T10:00"' in control(response.text, "administered_at")


def test_an_assessment_dated_before_the_patients_birth_is_refused_in_words(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/assessments",
        data={
            "csrf_token": token,
            "instrument_id": "nrs",
            "item_pain": "5",
            "administered_at": "1900-01-01T10:00",
        },
    )
    assert response.status_code == 422
    assert problem(response.text, "administered_at") == (
        "Given at cannot be before the date of birth (14 February 1968)."
    )
    assert 'value="5" checked' in response.text  # the answer given is kept


def test_a_dose_record_reports_every_mistake_at_once(client: TestClient, database: Database):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/opioid-doses",
        data={
            "csrf_token": token,
            "taken_on": "2999-01-20",
            "dose_name_0": "morphine",
            "dose_daily_dose_0": "1e300",
            "dose_unit_0": "mg",
            "dose_daily_dose_1": "5",
            "dose_unit_1": "mg",
        },
    )
    assert response.status_code == 422
    text = response.text
    assert problem(text, "taken_on").startswith("Day cannot be in the future (today is ")
    assert problem(text, "dose_daily_dose_0").startswith(
        "Amount per day in row 1: 1e+300 mg is more than"
    )
    assert problem(text, "dose_name_1") == "Opioid in row 2 is required."
    assert summary_links(text, "dose-errors") == ["taken_on", "dose_daily_dose_0", "dose_name_1"]
    assert 'value="1e300"' in control(text, "dose_daily_dose_0")
    assert opioids.list_opioid_doses(database, READER, 1) == []


def test_an_override_reason_too_long_is_refused_beside_it_and_kept(
    client: TestClient, database: Database
):
    token = signed_in(client, "physician")
    fast = {**PLAN, "step_percent": "30", "basis": "original"}
    response = client.post(
        "/patients/1/opioid-plans",
        data={**fast, "override_reason": TOO_LONG, "csrf_token": token},
    )
    assert response.status_code == 422
    assert problem(response.text, "override_reason").startswith(
        f"Reason for override can be at most {REASON_LENGTH:,} characters long"
    )
    assert TOO_LONG in response.text
    assert opioids.list_opioid_plans(database, READER, 1) == []


def test_withdrawing_a_plan_without_a_reason_shows_the_problem_beside_it(
    client: TestClient, database: Database
):
    token = signed_in(client, "physician")
    client.post("/patients/1/opioid-plans", data={**PLAN, "csrf_token": token})
    (plan,) = opioids.list_opioid_plans(database, READER, 1)
    response = client.post(
        f"/opioid-plans/{plan.id}/withdraw",
        data={"reason": "", "patient_id": "1", "csrf_token": token},
    )
    assert response.status_code == 422
    assert problem(response.text, "withdraw-reason").startswith(
        "Reason for withdrawing the plan: say why"
    )
    assert opioids.list_opioid_plans(database, READER, 1)[0].status == "agreed"


def test_signing_with_a_reason_too_long_keeps_it_and_says_why(client: TestClient):
    screened(client)
    fields = sign_form(client.get("/patients/1/plan", params=SOFT).text)
    response = client.post("/patients/1/orders", data={**fields, "override_reason": TOO_LONG})
    assert response.status_code == 422
    assert problem(response.text, "override_reason").startswith(
        f"Reason for override can be at most {REASON_LENGTH:,} characters"
    )
    assert TOO_LONG in response.text


def test_cancelling_an_order_without_a_reason_shows_the_problem_beside_it(
    client: TestClient, database: Database
):
    token = screened(client)
    fields = sign_form(client.get("/patients/1/plan", params=SOFT).text)
    signed = client.post("/patients/1/orders", data={**fields, "override_reason": "r"})
    location = signed.headers["location"]
    response = client.post(f"{location}/cancel", data={"csrf_token": token, "reason": "  "})
    assert response.status_code == 422
    assert problem(response.text, "cancel-reason") == "Reason for cancelling is required."
    assert summary_links(response.text, "cancel-errors") == ["cancel-reason"]
    (order,) = orders.list_orders(database, READER, 1)
    assert order.status == "signed"


def test_a_library_check_without_a_file_says_so_beside_the_file_field(client: TestClient):
    token = signed_in(client, "pharmacist")
    response = client.post("/library", data={"csrf_token": token, "intent": "check"})
    assert response.status_code == 422
    assert problem(response.text, "library-file").startswith("Library file: choose the drug")
    assert 'aria-describedby="library-file-error"' in control(response.text, "library-file")
