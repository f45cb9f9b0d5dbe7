"""The signing checks as pages: consent before signing, the facts on the plan and order pages,
stale orders on the order and patient pages, a physician's confirmation, the record form's new
fields, and the questionnaires the screen read."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

from fastapi.testclient import TestClient
from tests.unit.web_app import client, database, form_token, migrated, signed_in

from ketapath.services import assessments, patients
from ketapath.services.assessments import AssessmentInput
from ketapath.services.permissions import NURSE, PHYSICIAN, Actor
from ketapath.store.db import Database
from ketapath.web.record_pages import document_from_form, form_values

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below

READER = Actor(user_id=None, username="test-reader", role=PHYSICIAN)
RECORDER = Actor(user_id=None, username="test-nurse", role=NURSE)
COURSE = {"protocol_id": "asra-initial", "setting": "clinic"}


def amend(database: Database, patient_id: int, reason: str, **changes: object) -> int:
    current = patients.get_patient(database, READER, patient_id)
    document = {**current.document, **changes}
    return patients.amend_patient(
        database,
        RECORDER,
        patient_id,
        document,
        reason=reason,
        expected_version=current.version,
    ).version


def screened(client: TestClient, patient_id: int = 1) -> str:
    token = signed_in(client, "physician")
    response = client.post(f"/patients/{patient_id}/screening", data={"csrf_token": token})
    assert response.status_code == 303
    return token


def sign_form(page: str) -> dict[str, str]:
    form = page[page.index('class="form sign-form"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def sign(client: TestClient, patient_id: int = 1) -> str:
    page = client.get(f"/patients/{patient_id}/plan", params=COURSE).text
    response = client.post(f"/patients/{patient_id}/orders", data=sign_form(page))
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def test_the_plan_page_refuses_to_offer_a_signature_while_consent_is_not_yet_asked(
    client: TestClient, database: Database
) -> None:
    amend(database, 1, "consent not asked yet", consent="pending")
    token = screened(client)
    page = client.get("/patients/1/plan", params=COURSE)
    text = html.unescape(page.text)
    assert 'id="consent-block"' in page.text
    assert 'Cannot be signed: consent to the infusion is recorded as "not yet asked"' in text
    assert "Sign the course" not in page.text
    # a hand-made post is refused by the service, naming consent and what to do
    fields = {"csrf_token": token, "protocol_id": "asra-initial", "setting": "clinic"}
    refused = client.post("/patients/1/orders", data=fields)
    assert refused.status_code == 422
    assert "Consent to the infusion is recorded as 'not yet asked'" in html.unescape(refused.text)


def test_the_plan_page_shows_the_facts_a_signing_physician_needs(
    client: TestClient, database: Database
) -> None:
    weighed = (date.today() - timedelta(days=40)).isoformat()
    amend(
        database,
        1,
        "weighed, allergy, side",
        weight_measured_on=weighed,
        allergies=[{"substance": "penicillin", "reaction": "rash"}],
        laterality="left",
    )
    screened(client)
    page = html.unescape(client.get("/patients/1/plan", params=COURSE).text)
    facts = page[page.index('id="signing-facts"') :]
    assert f"72 kg,\n      measured on {weighed} (40 days before" in facts
    assert "penicillin (rash)" in facts and ">Left<" in facts and ">Not pregnant<" in facts
    assert 'data-code="order:weight-out-of-date"' in facts


def test_an_undated_weight_and_an_unknown_side_are_shown_as_not_recorded(
    client: TestClient,
) -> None:
    screened(client)
    page = client.get("/patients/1/plan", params=COURSE).text
    facts = page[page.index('id="signing-facts"') : page.index('id="signing-facts-findings"')]
    assert "date of weighing not recorded" in facts
    assert facts.count('class="not-recorded"') == 2  # the date of weighing and the side


def test_the_order_page_marks_a_stale_order_and_the_patient_page_too(
    client: TestClient, database: Database
) -> None:
    screened(client)
    location = sign(client)
    order = client.get(location).text
    assert 'data-state="usable"' in order and 'id="order-facts"' in order
    amend(database, 1, "re-weighed", weight_kg=90)
    page = html.unescape(client.get(location).text)
    assert 'id="order-state-top"' in page
    assert "signed at 72 kg; the record now says 90 kg" in page
    assert 'data-state="stale"' in page and 'id="confirm-form"' in page
    # the frozen facts still say what was seen at signing
    assert "72 kg," in page[page.index('id="order-facts"') :]
    patient = html.unescape(client.get("/patients/1").text)
    orders_card = patient[patient.index('id="patient-orders"') :]
    assert "is stale: do not use it." in orders_card
    assert "Signed at 72 kg; the record now says 90 kg" in orders_card


def test_a_nurse_sees_a_stale_order_but_no_confirmation_form(
    client: TestClient, database: Database
) -> None:
    screened(client)
    location = sign(client)
    amend(database, 1, "re-weighed", weight_kg=90)
    client.cookies.clear()
    token = signed_in(client, "nurse")
    page = client.get(location).text
    assert 'data-state="stale"' in page and 'id="confirm-form"' not in page
    version = patients.get_patient(database, READER, 1).version
    refused = client.post(
        f"{location}/confirm",
        data={"csrf_token": token, "reason": "x", "patient_version": str(version)},
    )
    assert refused.status_code == 403


def test_a_physician_confirms_a_stale_order_on_its_page(
    client: TestClient, database: Database
) -> None:
    token = screened(client)
    location = sign(client)
    amend(database, 1, "re-weighed", weight_kg=90)
    page = client.get(location).text
    version = re.search(r'name="patient_version" value="(\d+)"', page)
    assert version is not None
    empty = client.post(
        f"{location}/confirm",
        data={"csrf_token": token, "reason": " ", "patient_version": version.group(1)},
    )
    assert empty.status_code == 422 and 'id="confirm-errors"' in empty.text
    assert "Reason to use the order as signed is required." in html.unescape(empty.text)
    done = client.post(
        f"{location}/confirm",
        data={
            "csrf_token": form_token(page),
            "reason": "fixed 80 mg dose; 90 kg confirmed on the ward scale",
            "patient_version": version.group(1),
        },
    )
    assert done.status_code == 303
    confirmed = html.unescape(client.get(location).text)
    assert 'data-state="usable"' in confirmed and 'id="confirm-form"' not in confirmed
    assert "Confirmed by <strong>physician</strong>" in confirmed
    assert "fixed 80 mg dose; 90 kg confirmed on the ward scale" in confirmed
    timeline = html.unescape(client.get("/patients/1").text)
    assert "Confirmed order" in timeline


def test_the_record_form_takes_the_date_of_weighing_and_the_side_of_the_pain(
    client: TestClient, database: Database
) -> None:
    signed_in(client, "nurse")
    form = client.get("/patients/1/edit").text
    assert 'name="weight_measured_on" type="date"' in form
    assert '<select id="laterality" name="laterality"' in form
    document = document_from_form(
        {
            "sex": "female",
            "weight_kg": "70",
            "weight_measured_on": "2026-01-05",
            "laterality": "right",
        }
    )
    assert document["weight_measured_on"] == "2026-01-05" and document["laterality"] == "right"
    values = form_values({**document, "age_years": 40})
    assert values["weight_measured_on"] == "2026-01-05" and values["laterality"] == "right"


def test_a_date_of_weighing_in_the_future_is_refused_naming_the_field(
    client: TestClient, database: Database
) -> None:
    token = signed_in(client, "nurse")
    values = form_values(patients.get_patient(database, READER, 3).document)
    values.update(
        {
            "csrf_token": token,
            "expected_version": "1",
            "reason": "weighed",
            "weight_measured_on": "2999-01-01",
        }
    )
    response = client.post("/patients/3/record", data=values)
    assert response.status_code == 422
    assert "Weighed on cannot be in the future (today is " in html.unescape(response.text)


def test_the_screen_page_lists_the_questionnaires_it_read_and_the_item_9_finding(
    client: TestClient, database: Database
) -> None:
    answers = {**{f"q{i}": 0 for i in range(1, 9)}, "q9": 2}
    assessments.record_assessment(
        database, RECORDER, 1, AssessmentInput(instrument_id="phq9", answers=answers)
    )
    screened(client)
    page = html.unescape(client.get("/patients/1/screening").text)
    assert 'data-code="mood:phq9-item9"' in page
    assert "Questionnaires read (the latest of each): PHQ-9 of" in page
    plan = html.unescape(client.get("/patients/1/plan", params=COURSE).text)
    gating = plan[plan.index('id="gating-findings"') :]
    assert "ask about suicidal thoughts and plans" in gating
    assessments.record_assessment(
        database, RECORDER, 1, AssessmentInput(instrument_id="phq9", answers={**answers, "q9": 0})
    )
    outdated = client.get("/patients/1/plan", params=COURSE).text
    assert 'id="screen-outdated"' in outdated and "Sign the course" not in outdated
    assert 'id="screen-not-current"' in client.get("/patients/1/screening").text
