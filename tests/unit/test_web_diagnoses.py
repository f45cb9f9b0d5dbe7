"""Diagnoses on the record form and the patient page: the consensus tables' wording is
accepted, negated or ambiguous wording is refused like an unknown code, and each line shows
the condition it was read as with its codes (or why not)."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from tests.unit.test_web_record import FILLED, SYSTEM_READER
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.services import patients
from ketapath.store.db import Database

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


def _text(response) -> str:
    """The page's words: tags removed, spacing collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.text)))


def test_the_tables_wording_is_accepted_and_the_patient_page_shows_how_it_was_read(
    client: TestClient, database: Database
) -> None:
    token = signed_in(client, "nurse")
    data = {
        **FILLED,
        "diagnoses": "CRPS | left arm\nspinal cord injury pain",
        "comorbidities": "Elevated intraocular pressure, acute globe injury, or glaucoma\n"
        "history of psychosis",
        "csrf_token": token,
    }
    saved = client.post("/patients", data=data)
    assert saved.status_code == 303, _text(saved)
    patient_id = int(saved.headers["location"].rsplit("/", 1)[1])
    record = patients.get_patient(database, SYSTEM_READER, patient_id)
    assert [d["code"] for d in record.document["diagnoses"]] == ["CRPS", "spinal cord injury pain"]
    page = _text(client.get(saved.headers["location"]))
    assert "Complex regional pain syndrome (type not stated)" in page
    assert "ICD-11 MG30.04" in page
    assert "Elevated intraocular pressure, glaucoma or acute globe injury" in page
    assert "ICD-10-CM H40, H42, Q15.0, S05; ICD-11 9C61, NA06.8, NA06.9" in page
    assert "Psychosis" in page and "ICD-11 6A20" in page


def test_negated_or_ambiguous_wording_is_refused_with_the_reason_until_recorded_as_written(
    client: TestClient, database: Database
) -> None:
    token = signed_in(client, "nurse")
    data = {**FILLED, "comorbidities": "no history of psychosis\nPE", "csrf_token": token}
    refused = client.post("/patients", data=data)
    assert refused.status_code == 422
    text = _text(refused)
    assert "Comorbidities: line 1 (“no history of psychosis”), line 2 (“PE”) are not" in text
    assert "says it is absent or negative" in text  # the reading table says why
    assert "'PE' is ambiguous" in text and "pulmonary embolism" in text
    accepted = client.post("/patients", data={**data, "accept_unknown_codes": "on"})
    assert accepted.status_code == 303
    page = _text(client.get(accepted.headers["location"]))
    assert "Not recognised: check by hand" in page and "says it is absent or negative" in page


def test_checking_the_diagnoses_shows_the_reading_without_saving(
    client: TestClient, database: Database
) -> None:
    token = signed_in(client, "nurse")
    before = len(patients.search_patients(database, SYSTEM_READER, ""))
    data = {
        **FILLED,
        "diagnoses": "MG30.04\n?glaucoma",
        "check_diagnoses": "1",
        "csrf_token": token,
    }
    response = client.post("/patients", data=data)
    assert response.status_code == 200
    text = _text(response)
    assert 'id="diagnoses-read"' in response.text
    assert "diagnoses 1 MG30.04 Complex regional pain syndrome (type not stated)" in text
    assert "'?glaucoma' names Elevated intraocular pressure" in text and "is uncertain" in text
    assert len(patients.search_patients(database, SYSTEM_READER, "")) == before


def test_the_amendment_form_shows_how_the_recorded_diagnoses_are_read(
    client: TestClient,
) -> None:
    signed_in(client, "physician")
    form = client.get("/patients/1/edit")
    assert form.status_code == 200
    assert 'id="diagnoses-read"' in form.text
    assert "How the diagnoses are read" in form.text
