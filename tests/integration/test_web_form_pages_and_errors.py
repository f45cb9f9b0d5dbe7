"""Forms that help, on SQLite and PostgreSQL: the record form reports every problem at once in
a clinician's words beside its field and keeps what was typed; error pages are HTML with a way
back for browsers, while the API keeps its JSON answers exactly."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from tests.conftest import base_patient
from tests.integration.conftest import TEST_PASSWORD

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.knowledge.bounds import input_bounds
from ketapath.services import patients
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.web.forms import brief


def sign_in(client: TestClient, username: str) -> str:
    """Sign in through the web form; the session's form token from the next page."""
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = client.post(
        "/login",
        data={"username": username, "password": TEST_PASSWORD, "csrf_token": token[1]},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    form = client.get("/patients/new").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert found
    return found[1]


def field_error(text: str, field: str) -> str:
    found = re.search(
        rf'id="{field}-error"><span class="visually-hidden">Problem: </span>(.*?)</p>', text
    )
    return html.unescape(found[1]) if found else ""


def control(text: str, field: str) -> str:
    found = re.search(rf'<(?:input|select|textarea) id="{field}"[^>]*>', text)
    assert found, field
    return found[0]


def test_the_record_form_reports_every_mistake_at_once_in_words_and_keeps_what_was_typed(
    client: TestClient, users: dict[str, Actor], database: Database
) -> None:
    token = sign_in(client, "nurse")
    long_gp = "G" * 5000
    response = client.post(
        "/patients",
        data={
            "csrf_token": token,
            "name": "",
            "birth_date": "1800-01-01",
            "sex": "female",
            "weight_kg": "0",
            "gp": long_gp,
            "med_rows": "3",
            "med_name_1": "morphine",
            "med_dose_1": "1e300",
            "med_unit_1": "mg",
        },
    )
    assert response.status_code == 422
    text = response.text
    weight = input_bounds().weight_kg
    assert field_error(text, "name") == "Name is required."
    assert field_error(text, "birth_date") == "Date of birth cannot be before 1 January 1900."
    assert field_error(text, "weight_kg") == (
        f"Weight must be between {brief(weight.minimum)} and {brief(weight.maximum)} kg."
    )
    assert field_error(text, "gp").startswith(
        "Primary care practitioner (GP) can be at most 200 characters long; this has 5,000."
    )
    assert field_error(text, "med_dose_1").startswith("Dose in medicine row 2: 1e+300 mg is more")
    summary = text[
        text.index('class="error-summary"') : text.index(
            "</div>", text.index('class="error-summary"')
        )
    ]
    assert "There are 5 problems" in summary
    for field in ("name", "birth_date", "weight_kg", "gp", "med_dose_1"):
        assert f'<a href="#{field}">' in summary
        assert f'aria-describedby="{field}-error"' in control(text, field)
    assert "patient." not in summary and "Input should" not in summary
    assert 'value="1800-01-01"' in control(text, "birth_date")  # what was typed is kept
    assert 'value="0"' in control(text, "weight_kg")
    assert long_gp in control(text, "gp") and 'value="1e300"' in control(text, "med_dose_1")
    assert patients.search_patients(database, users["nurse"], "") == []


def test_the_record_form_marks_its_required_fields_and_limits_lengths_as_the_record_does(
    client: TestClient, users: dict[str, Actor]
) -> None:
    sign_in(client, "nurse")
    text = client.get("/patients/new").text
    for field in ("name", "sex", "weight_kg"):
        assert 'required aria-required="true"' in control(text, field)
    assert 'aria-required="true"' in control(text, "birth_date")
    assert text.count('<span class="required" aria-hidden="true">(required)</span>') >= 4
    assert 'maxlength="200"' in control(text, "name")
    assert 'maxlength="120"' in control(text, "med_name_0")
    assert 'min="1900-01-01"' in control(text, "birth_date")


def test_a_corrected_record_form_saves_and_a_name_is_never_an_empty_link(
    client: TestClient, users: dict[str, Actor], database: Database
) -> None:
    token = sign_in(client, "nurse")
    saved = client.post(
        "/patients",
        data={
            "csrf_token": token,
            "name": "Jo Bloggs",
            "birth_date": "1980-05-01",
            "sex": "female",
            "weight_kg": "70",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    # a record registered elsewhere without a name (the API allows it) still has a link
    patients.create_patient(database, users["nurse"], base_patient())
    listing = html.unescape(client.get("/patients").text)
    assert ">Jo Bloggs</a>" in listing
    assert "No name recorded" in listing


def test_an_expired_form_token_says_so_and_offers_to_reload_not_a_role_refusal(
    client: TestClient, users: dict[str, Actor]
) -> None:
    sign_in(client, "nurse")
    response = client.post(
        "/patients",
        data={"csrf_token": "from-an-old-session", "name": "X"},
        headers={"Referer": "https://testserver/patients/new"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    text = html.unescape(response.text)
    assert "This form has expired" in text and "Reload the page" in text
    assert "Not allowed for your role" not in text
    assert '<a href="/patients/new">Reload the form</a>' in text


@pytest.mark.parametrize("path", ["/nowhere", "/patients/1/nothing-here", "/static/missing.css"])
def test_an_unknown_address_is_an_html_404_page_with_a_way_back(
    client: TestClient, path: str
) -> None:
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1" in response.text and "Not found" in response.text
    assert '<a href="/">Back to the start page</a>' in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_a_wrong_method_is_an_html_405_page(client: TestClient) -> None:
    response = client.get("/logout")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert "This page cannot be used that way" in response.text
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/nowhere", {"detail": "Not Found", "field": None}),
        ("DELETE", "/api/v1/patients", {"detail": "Method Not Allowed", "field": None}),
        ("GET", "/api/nowhere", {"detail": "Not Found"}),
        ("GET", "/api", {"detail": "Not Found"}),
    ],
)
def test_the_api_keeps_its_json_error_bodies_exactly(
    client: TestClient, method: str, path: str, body: dict[str, object]
) -> None:
    response = client.request(method, path, headers={"Accept": "text/html"})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body


def test_a_server_error_is_an_html_page_for_a_browser_and_plain_text_for_the_api(
    settings: Settings, database: Database
) -> None:
    app = create_app(settings, database=database)

    def broken() -> None:
        raise RuntimeError("a fault for the test")

    app.add_api_route("/broken-page", broken)
    app.add_api_route("/api/v1/broken", broken)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        page = c.get("/broken-page")
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "Something went wrong" in page.text and "a fault for the test" not in page.text
        assert '<a href="/">Back to the start page</a>' in page.text
        api = c.get("/api/v1/broken")
        assert api.status_code == 500 and api.text == "Internal Server Error"


def test_a_page_address_that_names_no_record_is_said_in_words(
    client: TestClient, users: dict[str, Actor]
) -> None:
    sign_in(client, "nurse")
    for path, words in (
        ("/patients/abc", "The patient number must be a whole number."),
        ("/patients/0", "The patient number must be 1 or more."),
        ("/patients/99999999999", "The patient number must be 2,147,483,647 or less."),
    ):
        response = client.get(path)
        assert response.status_code == 422
        assert words in html.unescape(response.text), path
        assert "Input should" not in response.text


def test_a_character_no_record_can_hold_is_named_in_words_on_a_page(client: TestClient) -> None:
    response = client.post(
        "/login",
        content="username=a%00b&password=x&csrf_token=y",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert "What was entered contains a character no record can hold" in response.text
    assert "body:" not in response.text
