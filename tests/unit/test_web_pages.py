"""Web pages through FastAPI's test client: sign-in, CSRF, roles, errors as pages."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth, patients
from ketapath.services.demo import DEMO_PATIENTS
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine
from ketapath.web.pages import safe_next

PASSWORD = "web unit test password"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def database(migrated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    path = tmp_path / "ketapath.sqlite3"
    shutil.copyfile(migrated, path)
    db = Database(f"sqlite:///{path}")
    actors = {}
    for role in ROLES:
        view = auth.add_user(db, SYSTEM, role, role, PASSWORD)
        actors[role] = Actor(view.id, view.username, view.role)
    for document in DEMO_PATIENTS:
        patients.create_patient(db, actors["nurse"], document)
    yield db
    db.dispose()


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    settings = Settings(database_url=database.url, secret_key="web-unit-test-secret")
    app = create_app(settings, database=database)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        yield c


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no csrf_token field"
    return match.group(1)


def signed_in(client: TestClient, username: str) -> str:
    """Sign in through the form; returns the session's CSRF token from the next page."""
    token = form_token(client.get("/sign-in").text)
    response = client.post(
        "/sign-in", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return form_token(client.get(response.headers["location"]).text)


def test_a_page_asked_for_before_sign_in_redirects_to_sign_in_and_back(client: TestClient):
    response = client.get("/patients/1")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/patients/1"


def test_signing_in_lands_a_nurse_on_the_patient_list(client: TestClient):
    token = form_token(client.get("/sign-in").text)
    response = client.post(
        "/sign-in", data={"username": "nurse", "password": PASSWORD, "csrf_token": token}
    )
    assert response.headers["location"] == "/patients"
    page = client.get("/patients")
    assert page.status_code == 200
    assert "Jordan Demo" in page.text and "Casey Sample" in page.text


def test_a_researcher_lands_on_the_de_identified_page_and_sees_no_names(client: TestClient):
    signed_in(client, "researcher")
    page = client.get("/research")
    assert page.status_code == 200
    assert "KP-" in page.text
    assert "Jordan" not in page.text and "1968" not in page.text


def test_a_researcher_is_refused_the_identified_patient_page(client: TestClient):
    signed_in(client, "researcher")
    page = client.get("/patients/1")
    assert page.status_code == 403
    assert "researcher may not patient read" in page.text
    assert "Jordan" not in page.text


def test_a_wrong_password_shows_the_message_on_the_form(client: TestClient):
    token = form_token(client.get("/sign-in").text)
    response = client.post(
        "/sign-in", data={"username": "nurse", "password": "wrong one", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "The user name or password is not right." in response.text
    assert 'value="nurse"' in response.text


def test_an_empty_user_name_is_named_in_the_message(client: TestClient):
    token = form_token(client.get("/sign-in").text)
    response = client.post("/sign-in", data={"username": "", "password": "x", "csrf_token": token})
    assert response.status_code == 422
    assert "User name: please fill this in." in response.text


def test_the_sign_in_form_without_its_csrf_token_is_refused(client: TestClient):
    client.get("/sign-in")
    response = client.post("/sign-in", data={"username": "nurse", "password": PASSWORD})
    assert response.status_code == 403
    assert "csrf_token" in response.text


def test_a_form_post_without_the_session_csrf_token_is_refused(client: TestClient):
    signed_in(client, "nurse")
    response = client.post("/sign-out", data={})
    assert response.status_code == 403
    assert "csrf_token" in response.text


def test_signing_out_ends_the_session(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post("/sign-out", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get("/patients").status_code == 303


def test_patient_search_answers_htmx_with_only_the_rows(client: TestClient):
    signed_in(client, "nurse")
    response = client.get(
        "/patients",
        params={"q": "riley"},
        headers={"HX-Request": "true", "HX-Target": "patient-results"},
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "Riley Testcase" in response.text and "Jordan Demo" not in response.text


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
    assert "no patient 999" in page.text


def test_pages_carry_security_headers(client: TestClient):
    response = client.get("/sign-in")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/patients/3", "/patients/3"),
        ("https://evil.example/", "/patients"),
        ("//evil.example/", "/patients"),
        ("/\\evil.example", "/patients"),
        ("", "/patients"),
    ],
)
def test_only_a_local_path_may_follow_sign_in(target: str, expected: str):
    assert safe_next(target) == expected
