"""The registry in a real browser (issue 13): a researcher opens it from the navigation,
filters it (a protocol, grouped by dose band), reads the curves and the tables, and downloads
the courses as CSV through the signed-in session; the file is de-identified. A physician's
page names the patients; a nurse has no registry.

The server has its own SQLite database holding a small synthetic registry (60 patients,
``services.registry_synth``). Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from tests.e2e.conftest import (
    E2E_PASSWORD,
    LAPTOP,
    Screens,
    assert_accessible_basics,
    serving,
    sign_in,
)

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth
from ketapath.services.clock import ClinicClock
from ketapath.services.permissions import ROLES, SYSTEM
from ketapath.services.registry_synth import Config, synthesise
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

pytestmark = pytest.mark.browser
PROTOCOL = "crps-schwartzman-10day"


@dataclass
class Registry:
    url: str
    database: Database


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Registry]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-registry') / 'ketapath.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database(url)
    synthesise(database, Config(patients=60, seed=5, end=date(2026, 6, 30)), ClinicClock(UTC))
    for role in ROLES:
        auth.add_user(database, SYSTEM, role, role, E2E_PASSWORD, full_name=role.title())
    settings = Settings(database_url=url, secret_key="browser-test-secret-key", timezone="UTC")
    try:
        with serving(create_app(settings, database=database)) as base_url:
            yield Registry(base_url, database)
    finally:
        database.dispose()
        monkeypatch.undo()


@pytest.fixture
def open_page(browser: Any, registry_server: Registry) -> Iterator[Any]:
    contexts = []

    def _open() -> Any:
        context = browser.new_context(
            viewport=LAPTOP, base_url=registry_server.url, accept_downloads=True
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


def test_a_researcher_filters_the_registry_and_downloads_the_courses(
    open_page: Any, screens: Screens
) -> None:
    page = open_page()
    sign_in(page, "researcher")
    page.get_by_role("link", name="Registry").click()
    page.wait_for_load_state()
    assert page.url.endswith("/registry")
    assert page.locator("#deidentified").is_visible()
    total = int(page.get_by_test_id("courses-total").inner_text())
    assert total > 0
    assert_accessible_basics(page)

    page.get_by_label("Protocol", exact=True).select_option(PROTOCOL)
    page.get_by_label("Group by", exact=True).select_option("dose_band")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    assert f"protocol={PROTOCOL}" in page.url and "group_by=dose_band" in page.url
    filtered = int(page.get_by_test_id("courses-total").inner_text())
    assert 0 < filtered < total
    assert page.locator("#relief-chart").is_visible()
    assert page.locator("#responder-table tbody tr").count() >= 1
    assert "mg/kg" in page.locator("#responder-table tbody").inner_text()
    assert page.locator("#regression-message").is_visible()
    screens.shot(page, "filtered")

    with page.expect_download() as download:
        page.locator("#download-courses").click()
    assert download.value.suggested_filename == "registry-courses.csv"
    with Path(download.value.path()).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == filtered
    assert {row["protocol_id"] for row in rows} == {PROTOCOL}
    header = set(rows[0])
    assert not header & {"patient_id", "order_id", "first_session_on", "last_session_on"}
    assert all(row["patient_code"].startswith("P-") for row in rows)
    assert not any("KP-" in value for row in rows for value in row.values())
    assert page.locator("#course-table a").count() == 0  # no link to a patient or an order


def test_a_physician_sees_whose_courses_and_a_nurse_has_no_registry(
    open_page: Any, screens: Screens
) -> None:
    physician = open_page()
    sign_in(physician, "physician")
    physician.goto("/registry?group_by=indication")
    assert physician.locator("#deidentified").count() == 0
    assert physician.locator("#relief-table tbody tr").count() >= 1
    first = physician.locator("#course-table a[href^='/patients/']").first
    assert first.is_visible()
    first.click()
    physician.wait_for_load_state()
    assert "/patients/" in physician.url and "Synthetic Patient" in physician.content()
    physician.go_back()
    screens.shot(physician, "physician")
    nurse = open_page()
    sign_in(nurse, "nurse")
    assert nurse.get_by_role("link", name="Registry").count() == 0
    response = nurse.goto("/registry")
    assert response is not None and response.status == 403
