"""The controlled-drug ledger in a real browser (issue 11): a pharmacist stocks a product; a
nurse dispenses a bag for a session from its page, charts the infusion (start, pause, resume,
stop), and wastes the remainder with a second nurse as witness (herself as witness is refused
on the page); the pharmacist sees the session reconciled and prints the register (CSV and
PDF) from the reports page.

The server has its own database and a clinic clock stopped at 12:00 UTC today, as for the
session pages' browser tests. Screenshots of the stock page and the session's card go to
``test-artifacts/e2e/`` (and to /tmp for a look by hand).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
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
from tests.e2e.test_browser_sessions import _chart, _state
from tests.integration.conftest import check_in_entry, clinic_noon, signed_order

from ketapath.api.app import create_app
from ketapath.api.params import clinic_clock_of
from ketapath.config import Settings
from ketapath.services import auth, sessions
from ketapath.services.permissions import NURSE, ROLES, SYSTEM, Actor
from ketapath.services.sessions import ChartWrite, ScheduleRequest
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

pytestmark = pytest.mark.browser

CLOCK = clinic_noon()
EXPIRY = (CLOCK.today() + timedelta(days=700)).isoformat()


@dataclass
class Clinic:
    url: str
    database: Database
    users: dict[str, Actor]

    def checked_in_session(self, chair: str) -> int:
        """A signed order scheduled today in ``chair``, its patient checked in at 09:00."""
        order_id = signed_order(self.database, self.users, name="Ledger Patient")
        request = ScheduleRequest(first_date=CLOCK.today(), chair=chair)
        nurse = self.users["nurse"]
        [first, *_] = sessions.schedule_course(self.database, nurse, order_id, request, clock=CLOCK)
        assert CLOCK.fixed is not None
        entry = check_in_entry(CLOCK.fixed.replace(hour=9, minute=0))
        write = ChartWrite.model_validate({"expected_seq": 0, "entry": entry})
        sessions.chart(self.database, nurse, first.id, write, clock=CLOCK)
        return first.id


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Clinic]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-ledger') / 'ketapath.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database(url)
    users = {}
    for role in ROLES:
        view = auth.add_user(database, SYSTEM, role, role, E2E_PASSWORD, full_name=role.title())
        users[role] = Actor(view.id, view.username, view.role)
    view = auth.add_user(database, SYSTEM, "nurse2", NURSE, E2E_PASSWORD, full_name="Nurse Two")
    users["nurse2"] = Actor(view.id, view.username, view.role)
    settings = Settings(database_url=url, secret_key="browser-ledger-secret", timezone="UTC")
    app = create_app(settings, database=database)
    app.dependency_overrides[clinic_clock_of] = lambda: CLOCK
    try:
        with serving(app) as base_url:
            yield Clinic(base_url, database, users)
    finally:
        database.dispose()
        monkeypatch.undo()


@pytest.fixture
def open_page(browser: Any, clinic: Clinic) -> Iterator[Any]:
    contexts = []

    def _open() -> Any:
        context = browser.new_context(viewport=LAPTOP, base_url=clinic.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


def _fill(form: Any, **fields: str) -> None:
    for name, value in fields.items():
        control = form.locator(f'[name="{name}"]')
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def _stock_up(page: Any) -> None:
    """The pharmacist's forms: a product, a storage location, a receipt of ten vials."""
    from playwright.sync_api import expect

    page.get_by_role("link", name="Controlled drugs").click()
    expect(page.locator("#no-stock")).to_be_visible()
    _fill(
        page.locator("#add-product"),
        name="Ketamine 50 mg/mL, 10 mL vial",
        strength_mg_per_ml="50",
        container_ml="10",
        manufacturer="Example Pharma",
    )
    page.locator("#add-product").get_by_role("button", name="Add the product").click()
    expect(page.locator("#ledger-saved")).to_contain_text("The product is added.")
    _fill(page.locator("#add-location"), name="CD safe", description="Treatment room")
    page.locator("#add-location").get_by_role("button", name="Add the location").click()
    expect(page.locator("#locations")).to_contain_text("CD safe")
    receipt = page.locator("#add-receipt")
    receipt.get_by_label("Product").select_option(label="Ketamine 50 mg/mL, 10 mL vial")
    receipt.get_by_label("Storage location").select_option(label="CD safe")
    # a receipt sent without its lot is refused beside the field, with the rest kept
    _fill(receipt, expiry=EXPIRY, containers="10", supplier_name="Wholesaler Ltd")
    _fill(receipt, supplier_address="1 Supply Road, Springfield", invoice_number="INV-001")
    receipt.get_by_role("button", name="Record the receipt").click()
    expect(page.locator("#receipt-lot-error")).to_contain_text("Lot is required")
    expect(page.locator("#receipt-invoice_number")).to_have_value("INV-001")
    page.locator("#receipt-lot").fill("KET-2031A")
    page.locator("#add-receipt").get_by_role("button", name="Record the receipt").click()
    expect(page.locator("#ledger-saved")).to_contain_text("The receipt is recorded")


def test_a_nurse_dispenses_charts_and_wastes_with_a_witness_and_the_pharmacist_sees_it_reconciled(
    clinic: Clinic, open_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    pharmacist = open_page()
    sign_in(pharmacist, "pharmacist")
    _stock_up(pharmacist)
    stock = pharmacist.locator("#stock-1")
    expect(stock).to_contain_text("KET-2031A")
    expect(stock).to_contain_text("5000")
    expect(stock).to_contain_text("10 full vials")
    expect(stock.locator('[data-code="ledger:count-due"]')).to_contain_text("never been counted")
    assert_accessible_basics(pharmacist)
    shutil.copy(screens.shot(pharmacist, "stock"), "/tmp/ledger-stock.png")

    session_id = clinic.checked_in_session("Chair L")
    nurse = open_page()
    sign_in(nurse, "nurse")
    nurse.goto(f"/sessions/{session_id}")
    _state(nurse, "checked_in")
    card = nurse.locator("#controlled-drug")
    expect(card).to_contain_text("Nothing has been dispensed for this session.")
    card.get_by_label("Lot and location").select_option(index=1)
    card.get_by_label("Volume drawn up (mL)").fill("2")
    card.get_by_label("Final volume (mL)").fill("100")
    card.get_by_label("Final volume (mL)").press("Tab")
    expect(nurse.locator("#bag-words")).to_contain_text("1 mg/mL")
    expect(nurse.locator("#bag-words")).to_contain_text("they agree")
    card.screenshot(path="/tmp/ledger-dispense-form.png")
    card.get_by_role("button", name="Dispense").click()
    nurse.wait_for_load_state()
    expect(nurse.locator("#ledger-card-saved")).to_be_visible()
    expect(card).to_contain_text("Dispensed 100 mg")
    expect(card).to_contain_text("100.000 mg dispensed")

    # the infusion, charted on the page with typed times
    _chart(nurse, "form-start", "09:05")
    _state(nurse, "running")
    _chart(nurse, "form-pause", "09:35", reason="patient_request")
    _state(nurse, "paused")
    _chart(nurse, "form-resume", "09:45")
    _state(nurse, "running")
    _chart(nurse, "form-stop", "10:15", reason="patient_request")
    _state(nurse, "stopped")
    expect(card).to_contain_text("record what is left in the bag as waste")
    expect(nurse.locator("#waste-administered")).to_contain_text("will be recorded as administered")
    left = nurse.locator("#waste-expected-ml").inner_text()

    # herself as witness: refused beside the witness's name, nothing recorded
    waste = nurse.locator("#waste-form")
    _fill(waste, volume_ml=left, witness_username="nurse", witness_password=E2E_PASSWORD)
    waste.get_by_role("button", name="Record the waste").click()
    expect(nurse.locator("#waste-witness_username-error")).to_contain_text("second person")
    expect(nurse.locator("#waste-volume_ml")).to_have_value(left)
    expect(nurse.locator("#waste-witness_password")).to_have_value("")
    # a second nurse confirms with her own password
    _fill(waste, witness_username="nurse2", witness_password=E2E_PASSWORD)
    waste.get_by_role("button", name="Record the waste").click()
    nurse.wait_for_load_state()
    expect(card).to_contain_text("Reconciled: 100.000 mg dispensed")
    expect(card).to_contain_text("witnessed by nurse2")
    assert_accessible_basics(nurse)
    card.screenshot(path="/tmp/ledger-session-card.png")
    screens.shot(nurse, "session-card")

    # the pharmacist sees the session reconciled, and the reports
    pharmacist.goto(f"/ledger/sessions/{session_id}")
    expect(pharmacist.locator("#reconciliation-words")).to_contain_text("Reconciled")
    expect(pharmacist.locator('[data-status="reconciled"]')).to_be_visible()
    expect(pharmacist.locator("#session-lines")).to_contain_text("nurse2")
    pharmacist.get_by_role("link", name="Reports").click()
    for report in ("us-inventory", "us-records", "uk-register"):
        form = pharmacist.locator(f"#report-{report}")
        expect(form).to_have_attribute("action", f"/api/v1/ledger/reports/{report}")
    assert_accessible_basics(pharmacist)
    # the register is printed: the browser's signed-in session downloads it from the API
    register = pharmacist.locator("#report-uk-register")
    register.get_by_label("File").select_option("csv")
    with pharmacist.expect_download() as download:
        register.get_by_role("button", name="Download the register").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".csv")
    register_text = Path(path).read_text(encoding="utf-8")
    assert "KET-2031A" in register_text and "nurse2" in register_text
    pharmacist.locator("#report-uk-register").get_by_label("File").select_option("pdf")
    with pharmacist.expect_download() as download:
        register.get_by_role("button", name="Download the register").click()
    assert download.value.suggested_filename.endswith(".pdf")
    assert Path(download.value.path()).read_bytes()[:5] == b"%PDF-"
