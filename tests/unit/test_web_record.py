"""Registering a patient and amending the record in the browser (PRODUCT step 1)."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from tests.unit.web_app import client, database, form_token, migrated, signed_in

from ketapath.services import patients
from ketapath.services.permissions import PHYSICIAN, Actor
from ketapath.store.db import Database
from ketapath.web.record_pages import changes, document_from_form, form_values

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below

# Reads the stored records behind the pages (the role may read them; no user row needed).
SYSTEM_READER = Actor(user_id=None, username="test-reader", role=PHYSICIAN)

FILLED = {
    "name": "Jo Newpatient",
    "birth_date": "1971-05-09",
    "sex": "female",
    "weight_kg": "68,5",
    "height_cm": "170",
    "pregnancy": "not_pregnant",
    "consent": "given",
    "gp": "Dr A Family, Mill Lane Surgery",
    "referrer": "Dr B Neuro",
    "diagnoses": "G90.51 | left arm since 2023\ntrigeminal-neuralgia",
    "comorbidities": "",
    "allergies": "penicillin: rash\nlatex",
    "med_rows": "4",
    "med_name_0": "oxycodone",
    "med_dose_0": "10",
    "med_unit_0": "mg",
    "med_frequency_0": "bd",
    "med_route_0": "oral",
    "med_daily_dose_1": "",
    "med_name_2": "pregabalin",
    "med_dose_2": "75",
    "med_unit_2": "mg",
    "fact_central_sensitisation": "yes",
    "fact_poor_opioid_response": "yes",
    "fact_fasted": "no",
    "fact_goals": "Walk the dog daily",
    "purpose_pain_relief": "on",
    "purpose_opioid_reduction": "on",
}


def test_the_form_becomes_the_patient_document():
    document = document_from_form(FILLED)
    assert document["weight_kg"] == 68.5  # a decimal comma is accepted
    assert document["diagnoses"] == [
        {"code": "G90.51", "note": "left arm since 2023"},
        {"code": "trigeminal-neuralgia", "note": ""},
    ]
    assert document["allergies"] == [
        {"substance": "penicillin", "reaction": "rash"},
        {"substance": "latex", "reaction": ""},
    ]
    # empty rows are skipped; a filled row keeps only what was written
    assert [m["name"] for m in document["medications"]] == ["oxycodone", "pregabalin"]
    assert document["medications"][1] == {"name": "pregabalin", "dose": 75.0, "unit": "mg"}
    assert document["assessment"] == {
        "central_sensitisation": True,
        "opioid_context": {"poor_opioid_response": True},
        "fasted": False,
        "goals": "Walk the dog daily",
    }
    assert document["purpose"] == ["pain_relief", "opioid_reduction"]
    # "not known" stays unknown, never False
    assert "multidisciplinary_care" not in document["assessment"]


def test_a_stored_document_fills_the_form_and_comes_back_unchanged():
    with_prn = {
        **FILLED,
        "med_name_3": "oxycodone",
        "med_dose_3": "5",
        "med_unit_3": "mg",
        "med_frequency_3": "prn",
        "med_daily_dose_3": "15",
    }
    document = patients.validate_document(document_from_form(with_prn))
    assert document["medications"][2]["daily_dose"] == 15.0
    again = patients.validate_document(document_from_form(form_values(document)))
    assert again == document


def test_changes_lists_the_fields_that_differ():
    before = {"id": "1", "name": "A", "weight_kg": 70, "diagnoses": []}
    after = {"id": "1", "name": "A", "weight_kg": 72, "diagnoses": [], "gp": "Dr X"}
    assert changes(before, after) == ["weight_kg", "gp"]
    assert changes(None, after) == []


def test_a_nurse_registers_a_patient_from_the_form(client: TestClient, database: Database):
    token = signed_in(client, "nurse")
    page = client.get("/patients/new")
    assert page.status_code == 200
    for label in ("Name", "Date of birth", "Weight", "Diagnoses", "Current medicines"):
        assert label in page.text
    response = client.post("/patients", data={**FILLED, "csrf_token": token})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    patient_id = int(location.rsplit("/", 1)[1])
    record = patients.get_patient(database, SYSTEM_READER, patient_id)
    assert record.version == 1
    assert record.document["name"] == "Jo Newpatient"
    assert record.document["weight_kg"] == 68.5
    assert record.document["medications"][0]["frequency"] == "bd"
    shown = client.get(location).text
    assert "Jo Newpatient" in shown and "oxycodone" in shown and "penicillin" in shown


def test_an_invalid_field_shows_the_form_again_naming_it_and_keeping_what_was_typed(
    client: TestClient, database: Database
):
    token = signed_in(client, "nurse")
    before = len(patients.search_patients(database, SYSTEM_READER, ""))
    response = client.post("/patients", data={**FILLED, "weight_kg": "0", "csrf_token": token})
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "patient.weight_kg" not in text  # the clinician's words, not the document's
    assert '<a href="#weight_kg">Weight must be between 0.2 and 650 kg.</a>' in text
    assert (
        'id="weight_kg-error"><span class="visually-hidden">Problem: </span>'
        "Weight must be between 0.2 and 650 kg.</p>" in text
    )
    weight = re.search(r'<input id="weight_kg"[^>]*>', text)
    assert weight and 'value="0"' in weight[0]
    assert 'aria-invalid="true" aria-describedby="weight_kg-error"' in weight[0]
    assert 'value="Jo Newpatient"' in text  # nothing typed is lost
    assert len(patients.search_patients(database, SYSTEM_READER, "")) == before


def test_a_dose_without_its_unit_is_refused_naming_the_medicine(client: TestClient):
    token = signed_in(client, "nurse")
    data = {**FILLED, "med_unit_0": "", "csrf_token": token}
    response = client.post("/patients", data=data)
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "medications[0]" not in text
    assert "Unit in medicine row 1 is required with a dose (for example mg" in text


def test_a_number_field_with_words_is_refused_naming_it(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post("/patients", data={**FILLED, "height_cm": "tall", "csrf_token": token})
    assert response.status_code == 422
    assert "Height must be a number, not “tall”." in html.unescape(response.text)


def test_an_unknown_code_is_reported_and_recorded_only_when_the_user_says_so(
    client: TestClient, database: Database
):
    token = signed_in(client, "nurse")
    data = {**FILLED, "diagnoses": "G90.51\nnot-a-condition", "csrf_token": token}
    refused = client.post("/patients", data=data)
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert "Diagnoses: line 2 (“not-a-condition”) is not taken as a condition." in text
    assert 'name="accept_unknown_codes"' in text
    accepted = client.post("/patients", data={**data, "accept_unknown_codes": "on"})
    assert accepted.status_code == 303
    patient_id = int(accepted.headers["location"].rsplit("/", 1)[1])
    record = patients.get_patient(database, SYSTEM_READER, patient_id)
    assert [d["code"] for d in record.document["diagnoses"]] == ["G90.51", "not-a-condition"]
    assert "Not recognised: check by hand" in client.get(accepted.headers["location"]).text


def test_more_rows_gives_empty_medicine_rows_without_saving(client: TestClient, database: Database):
    token = signed_in(client, "nurse")
    before = len(patients.search_patients(database, SYSTEM_READER, ""))
    response = client.post("/patients", data={**FILLED, "more_rows": "1", "csrf_token": token})
    assert response.status_code == 200
    assert 'name="med_name_6"' in response.text and 'name="med_name_7"' not in response.text
    assert 'value="pregabalin"' in response.text
    assert len(patients.search_patients(database, SYSTEM_READER, "")) == before


def test_a_physician_amends_with_a_reason_and_the_history_keeps_both_versions(
    client: TestClient, database: Database
):
    token = signed_in(client, "physician")
    form = client.get("/patients/1/edit")
    assert form.status_code == 200
    assert 'name="expected_version" value="1"' in form.text
    assert 'value="Alex Example"' in form.text and 'value="oxycodone"' in form.text
    values = form_values(patients.get_patient(database, SYSTEM_READER, 1).document)
    no_reason = client.post(
        "/patients/1/record",
        data={**values, "weight_kg": "75", "expected_version": "1", "csrf_token": token},
    )
    assert no_reason.status_code == 422
    assert "Reason for the amendment is required." in html.unescape(no_reason.text)
    saved = client.post(
        "/patients/1/record",
        data={
            **values,
            "weight_kg": "75",
            "expected_version": "1",
            "reason": "weighed in clinic today",
            "csrf_token": token,
        },
    )
    assert saved.status_code == 303, saved.text
    history = patients.patient_history(database, SYSTEM_READER, 1)
    assert [h.version for h in history] == [1, 2]
    assert history[0].document["weight_kg"] == 72.0 and history[1].document["weight_kg"] == 75.0
    assert history[1].reason == "weighed in clinic today"
    assert history[1].recorded_by == "physician"
    page = html.unescape(client.get("/patients/1/history").text)
    assert "Version 2 (amends version 1)" in page
    assert "Reason: weighed in clinic today" in page
    assert "Changed: weight_kg" in page


def test_an_amendment_from_a_stale_form_is_refused_not_overwriting(
    client: TestClient, database: Database
):
    token = signed_in(client, "nurse")
    values = form_values(patients.get_patient(database, SYSTEM_READER, 2).document)
    first = {**values, "expected_version": "1", "reason": "first", "csrf_token": token}
    assert client.post("/patients/2/record", data={**first, "weight_kg": "90"}).status_code == 303
    stale = client.post("/patients/2/record", data={**first, "weight_kg": "91"})
    assert stale.status_code == 409
    assert "someone amended it meanwhile" in html.unescape(stale.text)
    assert patients.get_patient(database, SYSTEM_READER, 2).document["weight_kg"] == 90.0


def test_roles_that_may_not_record_get_no_form_and_cannot_post(client: TestClient):
    for role in ("pharmacist", "researcher", "admin"):
        client.cookies.clear()
        token = signed_in(client, role)
        assert client.get("/patients/new").status_code == 403
        assert client.get("/patients/1/edit").status_code == 403
        assert client.post("/patients", data={**FILLED, "csrf_token": token}).status_code == 403
        posted = client.post(
            "/patients/1/record",
            data={**FILLED, "expected_version": "1", "reason": "x", "csrf_token": token},
        )
        assert posted.status_code == 403


def test_posting_without_the_csrf_token_is_refused(client: TestClient, database: Database):
    signed_in(client, "nurse")
    before = len(patients.search_patients(database, SYSTEM_READER, ""))
    response = client.post("/patients", data=FILLED)
    assert response.status_code in (400, 403)
    assert len(patients.search_patients(database, SYSTEM_READER, "")) == before


def test_the_list_offers_registration_only_to_roles_that_may_register(client: TestClient):
    signed_in(client, "nurse")
    assert 'href="/patients/new"' in client.get("/patients").text
    client.cookies.clear()
    signed_in(client, "pharmacist")
    assert 'href="/patients/new"' not in client.get("/patients").text


def test_signed_out_users_are_sent_to_sign_in(client: TestClient):
    response = client.get("/patients/new")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/patients/new")
    assert form_token(client.get("/login").text)


def test_an_error_in_a_medicine_names_the_row_of_the_form_after_empty_rows(client: TestClient):
    token = signed_in(client, "nurse")
    # row 3 of the form (index 2) is the second filled row, i.e. medications[1]
    data = {**FILLED, "med_unit_2": "", "csrf_token": token}
    response = client.post("/patients", data=data)
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Unit in medicine row 3 is required with a dose" in text
    assert 'id="med_name_2" name="med_name_2" value="pregabalin" autocomplete="off"' in text
    unit_3 = re.search(r'<input id="med_unit_2"[^>]*>', text)
    assert unit_3 and 'aria-invalid="true" aria-describedby="med_unit_2-error"' in unit_3[0]
    row_1 = text.split('id="med_name_0"')[1].split("</tr>")[0]
    assert 'aria-invalid="true"' not in row_1


def test_a_dose_in_words_names_its_row(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post("/patients", data={**FILLED, "med_dose_2": "ten", "csrf_token": token})
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Dose in medicine row 3 must be a number, not “ten”." in text
    assert '<a href="#med_dose_2">' in text


def test_the_zip_code_is_recorded_from_the_form_and_a_wrong_one_refused_beside_it(
    client: TestClient, database: Database
):
    token = signed_in(client, "nurse")
    assert 'id="zip_code"' in client.get("/patients/new").text
    wrong = client.post("/patients", data={**FILLED, "zip_code": "SW1A 1AA", "csrf_token": token})
    assert wrong.status_code == 422
    text = html.unescape(wrong.text)
    assert 'id="zip_code-error"' in text and "5 digits or ZIP+4" in text
    assert 'value="SW1A 1AA"' in text  # kept as typed
    response = client.post("/patients", data={**FILLED, "zip_code": "02139", "csrf_token": token})
    assert response.status_code == 303, response.text
    patient_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert patients.get_patient(database, SYSTEM_READER, patient_id).document["zip_code"] == "02139"
