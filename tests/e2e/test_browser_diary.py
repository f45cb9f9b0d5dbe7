"""The patient diary in a real browser, at a phone's size (360x640): a nurse makes a link on
the order page; the patient opens it, fills today's diary (failing once with a clear error
beside the field) and sees the entry; opening the same link again is refused; an expired
link is refused; the nurse reads the entry on the order page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.integration.conftest import clinic_noon, signed_order

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth, diary
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 640}


@dataclass
class Clinic:
    url: str
    database: Database
    users: dict[str, Actor]


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Clinic]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-diary') / 'ketapath.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database(url)
    users = {}
    for role in ROLES:
        view = auth.add_user(database, SYSTEM, role, role, E2E_PASSWORD, full_name=role.title())
        users[role] = Actor(view.id, view.username, view.role)
    settings = Settings(database_url=url, secret_key="browser-diary-secret-key")
    diary.reset_rate_limits()
    try:
        with serving(create_app(settings, database=database)) as base_url:
            yield Clinic(base_url, database, users)
    finally:
        diary.reset_rate_limits()
        database.dispose()
        monkeypatch.undo()


@pytest.fixture
def open_page(browser: Any, clinic: Clinic) -> Iterator[Any]:
    contexts = []

    def _open(viewport: dict[str, int], **options: Any) -> Any:
        context = browser.new_context(viewport=viewport, base_url=clinic.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


def _no_sideways_scroll(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px on {page.url}"


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_a_patient_fills_today_s_diary_on_a_phone_from_the_nurse_s_link_and_cannot_reuse_it(
    clinic: Clinic, open_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    order_id = signed_order(clinic.database, clinic.users, name="Diary Patient")
    nurse = open_page(LAPTOP, permissions=["clipboard-read", "clipboard-write"])
    sign_in(nurse, "nurse")
    nurse.goto(f"/orders/{order_id}")
    card = nurse.locator("#order-diary")
    expect(card.get_by_role("heading", name="Patient diary")).to_be_visible()
    expect(card.get_by_label("Days valid")).to_have_value("42")
    card.get_by_role("button", name="Make a diary link").click()
    nurse.wait_for_load_state()
    link = nurse.locator("#diary-link-url").input_value()
    assert "/diary/start/" in link
    nurse.get_by_role("button", name="Copy the link").click()
    expect(nurse.locator("#copy-diary-link")).to_have_text("Copied")
    screens.shot(nurse, "nurse-link-made")

    phone = open_page(PHONE)
    phone.goto(_path(link))
    expect(phone.get_by_role("heading", name="Your pain diary")).to_be_visible()
    assert_accessible_basics(phone)
    _no_sideways_scroll(phone)
    screens.shot(phone, "landing")
    phone.get_by_role("button", name="Open my diary").click()
    phone.wait_for_url("**/diary")
    expect(phone.get_by_role("heading", name="Today's diary")).to_be_visible()
    assert_accessible_basics(phone)
    _no_sideways_scroll(phone)
    button = phone.get_by_role("button", name="Save today's diary")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 44

    phone.get_by_label("Anything else").fill("stiff in the morning")
    button.click()
    phone.wait_for_load_state()
    expect(phone.locator("#pain_nrs-error")).to_contain_text("Pain today is required.")
    expect(phone.locator("#diary-errors")).to_be_visible()
    expect(phone.get_by_label("Anything else")).to_have_value("stiff in the morning")
    screens.shot(phone, "error")

    phone.locator("#pain_nrs .scale-point").nth(4).click()
    phone.locator("#sleep_quality .scale-point").nth(7).click()
    phone.get_by_label("Headache").check()
    phone.get_by_label("Medicine (medicine 1)").fill("oxycodone")
    phone.get_by_label("Dose (medicine 1)").fill("10")
    phone.get_by_label("Unit (medicine 1)").fill("mg")
    phone.get_by_label("Times taken (medicine 1)").fill("2")
    phone.get_by_role("button", name="Save today's diary").click()
    phone.wait_for_url("**/diary?saved=1")
    expect(phone.locator("#diary-saved")).to_be_visible()
    entries = phone.locator("#diary-entries li")
    expect(entries).to_have_count(1)
    expect(entries.first.locator(".pain")).to_have_text("4")
    expect(entries.first).to_contain_text("oxycodone 10 mg × 2")
    _no_sideways_scroll(phone)
    screens.shot(phone, "saved")

    phone.goto(_path(link))
    phone.get_by_role("button", name="Open my diary").click()
    phone.wait_for_load_state()
    expect(phone.locator("#refused-message")).to_have_text(
        "This link has already been used: ask the clinic for a new one."
    )
    assert_accessible_basics(phone)
    screens.shot(phone, "reused")

    nurse.goto(f"/orders/{order_id}")
    row = nurse.locator("#diary-entries-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".pain")).to_have_text("4")
    expect(nurse.locator("#diary-links tr[data-state='opened']")).to_have_count(1)
    screens.shot(nurse, "nurse-reads")


def test_an_expired_link_is_refused_on_the_phone(
    clinic: Clinic, open_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    order_id = signed_order(clinic.database, clinic.users, name="Late Patient")
    # a one-day link made three days ago (by the clinic's clock) has expired
    made = diary.create_link(
        clinic.database, clinic.users["nurse"], order_id, days_valid=1, clock=clinic_noon(-3)
    )
    phone = open_page(PHONE)
    phone.goto(_path(made.url))
    phone.get_by_role("button", name="Open my diary").click()
    phone.wait_for_load_state()
    expect(phone.locator("#refused-message")).to_have_text(
        "This link has expired: ask the clinic for a new one."
    )
    expect(phone.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    _no_sideways_scroll(phone)
    screens.shot(phone, "expired")
    phone.goto("/diary")
    expect(phone.locator("#refused-message")).to_contain_text("link the clinic gave you")
