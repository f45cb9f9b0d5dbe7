"""Shared fixtures of the web page tests: an app on a fresh SQLite file with one user per role
(user name = role) and the demo patients; helpers to sign in through the form."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth, patients
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

PASSWORD = "web unit test password"

_READY: dict[str, Any] = {
    "consent": "given",
    "assessment": {
        "central_sensitisation": True,
        "opioid_context": {"poor_opioid_response": True},
    },
}
# Patients 1-3 of the web tests. Patient 2 has no stated purpose, so its screen needs a
# physician's override (FPM (ANZCA) ketamine proposal 2016, section 1).
PATIENTS: tuple[dict[str, Any], ...] = (
    {
        **_READY,
        "name": "Alex Example",
        "birth_date": "1968-02-14",
        "sex": "female",
        "pregnancy": "not_pregnant",
        "weight_kg": 72.0,
        "height_cm": 168.0,
        "diagnoses": ["crps-1"],
        "medications": [
            {"name": "oxycodone", "dose": 20, "unit": "mg", "frequency": "bd", "route": "oral"},
            {"name": "pregabalin", "dose": 150, "unit": "mg", "frequency": "bd", "route": "oral"},
        ],
        "purpose": ["pain_relief", "opioid_reduction"],
    },
    {
        **_READY,
        "name": "Sam Sample",
        "birth_date": "1955-09-03",
        "sex": "male",
        "weight_kg": 88.0,
        "height_cm": 181.0,
        "diagnoses": ["phantom-limb"],
        "medications": [
            {"name": "morphine", "dose": 30, "unit": "mg", "frequency": "bd", "route": "oral"}
        ],
    },
    {
        **_READY,
        "name": "Robin Testcase",
        "birth_date": "1979-06-21",
        "sex": "female",
        "pregnancy": "not_pregnant",
        "weight_kg": 61.0,
        "height_cm": 160.0,
        "diagnoses": ["sci-pain"],
        "purpose": ["pain_relief"],
    },
)


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
    for document in PATIENTS:
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
    token = form_token(client.get("/login").text)
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return form_token(client.get(response.headers["location"]).text)
