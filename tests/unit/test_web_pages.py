"""Web pages through FastAPI's test client: sign-in, CSRF, roles, errors as pages."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from tests.unit.web_app import PASSWORD, PATIENTS, client, database, form_token, migrated, signed_in

from ketapath.services import auth, patients
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.store.db import Database
from ketapath.web.pages import safe_next

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


def test_a_page_asked_for_before_sign_in_redirects_to_sign_in_and_back(client: TestClient):
    response = client.get("/patients/1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/patients/1"


def test_signing_in_lands_a_nurse_on_the_patient_list(client: TestClient):
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login", data={"username": "nurse", "password": PASSWORD, "csrf_token": token}
    )
    assert response.headers["location"] == "/patients"
    page = client.get("/patients")
    assert page.status_code == 200
    assert "Alex Example" in page.text and "Sam Sample" in page.text


def test_a_researcher_lands_on_the_de_identified_page_and_sees_no_names(client: TestClient):
    signed_in(client, "researcher")
    page = client.get("/research")
    assert page.status_code == 200
    # research codes, never the clinic's pseudonyms (which clinicians search by)
    assert "<code>P-" in page.text and not re.search(r"KP-[0-9A-F]{10}", page.text)
    assert "Alex" not in page.text and "1968" not in page.text


def test_the_research_page_withholds_a_name_typed_as_a_medicine_and_counts_it(
    client: TestClient, database: Database
):
    nurse = Actor(0, "nurse", "nurse")
    for user in auth.list_users(database, SYSTEM):
        if user.role == "nurse":
            nurse = Actor(user.id, user.username, user.role)
    document = {
        "name": "Pat Private",
        "birth_date": "1970-01-01",
        "sex": "male",
        "weight_kg": 80.0,
        "diagnoses": ["crps-1"],
        "medications": [
            {"name": "John Smith 07700 900123"},
            {"name": "Longtec 20 mg", "dose": 20, "unit": "mg", "frequency": "bd"},
        ],
    }
    patients.create_patient(database, nurse, document)
    signed_in(client, "researcher")
    page = html.unescape(client.get("/research").text)
    assert "John Smith" not in page and "07700" not in page and "Longtec" not in page
    assert "1 medicine withheld: not recognised" in page
    assert "oxycodone" in page and "N02AA05" in page


def test_a_researcher_is_refused_the_identified_patient_page(client: TestClient):
    signed_in(client, "researcher")
    page = client.get("/patients/1")
    assert page.status_code == 403
    assert "'patient.read' needs the role" in html.unescape(page.text)
    assert "Alex" not in page.text


def test_a_wrong_password_shows_the_message_on_the_form(client: TestClient):
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login", data={"username": "nurse", "password": "wrong one", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "The user name or password is not right." in response.text
    assert 'value="nurse"' in response.text


def test_an_empty_user_name_is_named_in_the_message(client: TestClient):
    token = form_token(client.get("/login").text)
    response = client.post("/login", data={"username": "", "password": "x", "csrf_token": token})
    assert response.status_code == 422
    assert "User name is required." in response.text


def test_the_sign_in_form_without_its_csrf_token_is_refused(client: TestClient):
    client.get("/login")
    response = client.post("/login", data={"username": "nurse", "password": PASSWORD})
    assert response.status_code == 403
    assert "The sign-in form had expired" in response.text
    assert "Not allowed for your role" not in response.text
    assert 'value="nurse"' in response.text  # the user name is kept
    assert client.get("/patients").status_code == 303  # not signed in


def test_a_form_post_without_the_session_csrf_token_is_refused(client: TestClient):
    signed_in(client, "nurse")
    response = client.post("/logout", data={})
    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert "Reload the page" in response.text
    assert "Not allowed for your role" not in response.text


def test_signing_out_ends_the_session(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get("/patients").status_code == 303


def test_patient_search_answers_htmx_with_only_the_rows(client: TestClient):
    signed_in(client, "nurse")
    response = client.get(
        "/patients",
        params={"q": "robin"},
        headers={"HX-Request": "true", "HX-Target": "patient-results"},
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "Robin Testcase" in response.text and "Alex Example" not in response.text


def test_the_patient_page_shows_diagnoses_by_name_and_the_medicines(client: TestClient):
    signed_in(client, "nurse")
    page = client.get("/patients/1")
    assert page.status_code == 200
    assert "Complex regional pain syndrome type I" in page.text
    assert "oxycodone" in page.text and "pregabalin" in page.text


def test_an_unknown_patient_is_a_not_found_page(client: TestClient):
    signed_in(client, "nurse")
    page = client.get("/patients/999")
    assert page.status_code == 404
    assert "No patient 999." in page.text


def test_pages_carry_security_headers(client: TestClient):
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/patients/3", "/patients/3"),
        ("https://evil.example/", "/patients"),
        ("//evil.example/", "/patients"),
        ("/\\evil.example", "/patients"),
        ("/\t/evil.example", "/patients"),
        ("/\n/evil.example", "/patients"),
        ("/patients?q=a b", "/patients"),
        ("", "/patients"),
    ],
)
def test_only_a_local_path_may_follow_sign_in(target: str, expected: str):
    assert safe_next(target) == expected


def test_an_error_asked_for_by_htmx_is_a_panel_not_a_whole_page(client: TestClient):
    signed_in(client, "researcher")
    response = client.get(
        "/patients/1/plan", headers={"HX-Request": "true", "HX-Target": "course-panel"}
    )
    assert response.status_code == 403
    assert "<html" not in response.text
    assert 'role="alert"' in response.text


def test_an_expired_session_sends_htmx_to_the_sign_in_page(client: TestClient):
    response = client.get(
        "/patients",
        params={"q": "x"},
        headers={"HX-Request": "true", "HX-Target": "patient-results"},
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/login?next=/patients%3Fq%3Dx"


def test_an_item_alert_of_a_scored_assessment_is_shown_on_the_patient_page(client: TestClient):
    token = signed_in(client, "nurse")
    answers = {f"item_q{i}": "0" for i in range(1, 10)} | {"item_q9": "1"}
    response = client.post(
        "/patients/1/assessments", data={"csrf_token": token, "instrument_id": "phq9", **answers}
    )
    assert response.status_code == 303, response.text
    page = client.get("/patients/1")
    assert "ask about suicidal thoughts" in page.text
    assert 'class="chart"' in page.text


def test_an_answer_out_of_range_is_refused_by_the_service_naming_the_item(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/assessments",
        data={"csrf_token": token, "instrument_id": "nrs", "item_pain": "11"},
    )
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "answers.pain" not in text
    assert "Question 1 (Pain intensity): 11 is not an answer it takes (a whole number" in text
    assert 'id="fs-pain" aria-invalid="true" aria-describedby="fs-pain-error"' in text


def test_text_from_the_record_is_escaped_not_run(client: TestClient, database: Database):
    nurse = next(u for u in auth.list_users(database, SYSTEM) if u.role == "nurse")
    record = patients.create_patient(
        database,
        Actor(nurse.id, nurse.username, nurse.role),
        {**PATIENTS[0], "name": '<script>alert("x")</script>'},
    )
    signed_in(client, "nurse")
    for path in ("/patients", f"/patients/{record.id}"):
        page = client.get(path)
        assert '<script>alert("x")</script>' not in page.text
        assert "&lt;script&gt;" in page.text


def test_the_server_loads_the_knowledge_base_when_it_starts(database: Database) -> None:
    from ketapath.api.app import create_app
    from ketapath.config import Settings
    from ketapath.knowledge.clinical import knowledge
    from ketapath.knowledge.instruments import load_instruments

    knowledge.cache_clear()
    load_instruments.cache_clear()
    app = create_app(Settings(database_url=database.url, secret_key="x" * 20), database=database)
    with TestClient(app):
        assert knowledge.cache_info().currsize == 1
        assert load_instruments.cache_info().currsize == 1
