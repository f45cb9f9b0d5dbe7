"""Letters in a real browser (issue 12 item 6): a physician produces a GP letter for a course
with two sessions given, reads it, signs it and downloads the PDF, whose text gives the
charts' delivered doses and dates exactly.

The server has its own database, a course charted on its first two days (the builder of the
service tests) and a clinic clock stopped at 12:00 UTC three days later.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from pypdf import PdfReader
from tests.e2e.conftest import (
    E2E_PASSWORD,
    LAPTOP,
    Screens,
    assert_accessible_basics,
    serving,
    sign_in,
)
from tests.integration.conftest import clinic_noon, given_course

from ketapath.api.app import create_app
from ketapath.api.params import clinic_clock_of
from ketapath.config import Settings
from ketapath.domain.outcomes import follow_up_schedule
from ketapath.domain.session_dose import mg_text
from ketapath.domain.sessions import delivered_fraction
from ketapath.services import auth, sessions
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

pytestmark = pytest.mark.browser

CLOCK = clinic_noon(3)
AFTER_HOURS = "Ward 7, 0161 555 0123 (24 hours)"


@dataclass
class Clinic:
    url: str
    database: Database
    users: dict[str, Actor]
    order_id: int
    session_ids: list[int]


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Clinic]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-letters') / 'ketapath.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database(url)
    users = {}
    for role in ROLES:
        view = auth.add_user(database, SYSTEM, role, role, E2E_PASSWORD, full_name=role.title())
        users[role] = Actor(view.id, view.username, view.role)
    order_id, session_ids = given_course(
        database, users, name="Jordan Letters", gp="Dr Grace Hopper, Riverside Surgery"
    )
    settings = Settings(
        database_url=url,
        secret_key="browser-letters-secret",
        timezone="UTC",
        clinic_name="Riverside Pain Clinic",
        clinic_address="2 Hospital Road, Springfield",
        clinic_after_hours=AFTER_HOURS,
    )
    app = create_app(settings, database=database)
    app.dependency_overrides[clinic_clock_of] = lambda: CLOCK
    try:
        with serving(app) as base_url:
            yield Clinic(base_url, database, users, order_id, session_ids)
    finally:
        database.dispose()
        monkeypatch.undo()


@pytest.fixture
def page(browser: Any, clinic: Clinic) -> Iterator[Any]:
    context = browser.new_context(viewport=LAPTOP, base_url=clinic.url, accept_downloads=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _given(clinic: Clinic) -> list[tuple[str, Fraction]]:
    """(date, exact delivered mg) of each session the charts say was given."""
    out = []
    for session_id in clinic.session_ids:
        detail = sessions.get_session(
            clinic.database, clinic.users["nurse"], session_id, clock=CLOCK
        )
        if detail.chart.dose.started_at is not None:
            out.append((detail.scheduled_on.isoformat(), delivered_fraction(detail.chart)))
    return out


def test_a_physician_produces_signs_and_downloads_a_gp_letter(
    page: Any, clinic: Clinic, screens: Screens
) -> None:
    from playwright.sync_api import expect

    given = _given(clinic)
    assert len(given) == 2
    total = mg_text(sum((mg for _, mg in given), Fraction(0)), 1)

    sign_in(page, "physician")
    page.goto(f"/orders/{clinic.order_id}")
    card = page.locator("#order-letters")
    expect(card).to_contain_text("Letter to the general practitioner")
    card.scroll_into_view_if_needed()
    screens.shot(page, "course-letters-card")
    page.locator("#draft-gp_letter").click()
    page.wait_for_load_state()

    expect(page.locator("#letter-status")).to_have_text("draft: not signed")
    body = page.locator("#letter-body")
    expect(body).to_contain_text(f"Total ketamine delivered: {total} mg")
    for day, mg in given:
        row = body.locator("table").first.locator("tr", has_text=day)
        expect(row).to_contain_text(mg_text(mg, 1))
    expect(body).to_contain_text(AFTER_HOURS)
    expect(page.locator("#letter-findings")).to_contain_text("Session 3")
    assert_accessible_basics(page)
    screens.shot(page, "gp-letter-draft")

    page.locator("#sign-letter").click()
    page.wait_for_load_state()
    expect(page.locator("#letter-status")).to_have_text("signed")
    expect(page.locator("#letter-signed-by")).to_have_text("Physician (physician)")
    expect(page.locator("#letter-versions tbody tr")).to_have_count(2)
    expect(page.locator("#sign-form")).to_have_count(0)
    screens.shot(page, "gp-letter-signed")

    with page.expect_download() as download:
        page.locator("#letter-pdf").click()
    assert download.value.suggested_filename.startswith("gp-letter-order-")
    content = Path(download.value.path()).read_bytes()
    assert content[:5] == b"%PDF-"
    reader = PdfReader(io.BytesIO(content))
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    assert f"Total ketamine delivered: {total} mg" in text
    for day, mg in given:
        assert f"{day} {mg_text(mg, 1)}" in text
    last = max(day for day, _ in given)
    from datetime import date

    for timepoint in follow_up_schedule(date.fromisoformat(last)):
        assert timepoint.due_on.isoformat() in text
    assert "Signed by Physician (physician)" in text and "DRAFT" not in text
    assert "Jordan Letters" in text and AFTER_HOURS in text
