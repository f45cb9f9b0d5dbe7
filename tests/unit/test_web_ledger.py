"""The controlled-drug ledger's pages (issue 11): the pharmacist's stock, counts,
discrepancies, reconciliation, lines and reports pages, and the "Controlled drug" card of the
nurse's session page with its dispensing and waste steps; roles; every form's problems in
words beside its field, what was typed kept (never a password), nothing written.

The clinic clock is stopped at 12:00 UTC today, as for the session pages' tests.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from tests.unit.test_web_sessions import (
    CLOCK,
    TODAY,
    Chart,
    app,
    browser,
    element,
    scheduled,
    text,
    users,
)
from tests.unit.web_app import database, form_token, migrated

from ketapath.services import ledger
from ketapath.services.ledger import LocationInput, ProductInput, ReceiptInput
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

__all__ = ["app", "browser", "database", "migrated", "users"]  # fixtures used below

PAGES = (
    "/ledger",
    "/ledger/counts",
    "/ledger/discrepancies",
    "/ledger/lines",
    "/ledger/reports",
)
Browser = Callable[[str], TestClient]


def stocked(database: Database, users: dict[str, Actor], vials: int = 10) -> str:
    """One product (50 mg/mL, 10 mL vials) in "CD safe", ``vials`` received today; the
    lot-and-location choice of the forms."""
    pharmacist = users["pharmacist"]
    product = ledger.add_product(
        database,
        pharmacist,
        ProductInput(
            name="Ketamine 50 mg/mL, 10 mL vial",
            strength_mg_per_ml=Decimal(50),
            container_ml=Decimal(10),
            manufacturer="Example Pharma",
        ),
    )
    location = ledger.add_location(database, pharmacist, LocationInput(name="CD safe"))
    ledger.receive(
        database,
        pharmacist,
        ReceiptInput(
            product_id=product.id,
            location_id=location.id,
            lot="KET-1",
            expiry=CLOCK.today() + timedelta(days=400),
            containers=vials,
            received_on=CLOCK.today(),
            supplier_name="Wholesaler Ltd",
            supplier_address="1 Supply Road",
            invoice_number="INV-1",
        ),
        clock=CLOCK,
    )
    return f"{product.id}:{location.id}:KET-1"


def field_error(page: str, field_id: str) -> str:
    """The problem shown beside a field, in words (empty when it has none)."""
    match = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', page, re.S)
    return text(match.group(1)).removeprefix("Problem: ") if match else ""


def line_count(database: Database, users: dict[str, Actor]) -> int:
    return len(ledger.lines(database, users["pharmacist"]))


def post(client: TestClient, path: str, page: str, **fields: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": form_token(page), **fields})


# ------------------------------------------------------------------ pages and roles


def test_every_ledger_page_is_read_by_the_clinical_team_and_refused_to_others(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    stocked(database, users)
    session_id = scheduled(database, users)
    for role in ("pharmacist", "physician", "nurse"):
        client = browser(role)
        for path in (*PAGES, f"/ledger/sessions/{session_id}"):
            answer = client.get(path)
            assert answer.status_code == 200, (role, path)
            assert '<a href="/ledger"' in answer.text  # the navigation's link
        stock = client.get("/ledger").text
        assert "KET-1" in element(stock, "stock-1") and "5000" in element(stock, "stock-1")
        assert ('id="add-receipt"' in stock) == (role == "pharmacist")
    for role in ("researcher", "admin"):
        client = browser(role)
        home = client.get("/references").text
        assert '<a href="/ledger"' not in home
        for path in (*PAGES, f"/ledger/sessions/{session_id}"):
            answer = client.get(path)
            assert answer.status_code == 403, (role, path)
            assert "Not allowed for your role" in answer.text


def test_the_stock_page_shows_balance_containers_expiry_and_the_count_due_with_its_source(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    stocked(database, users, vials=3)
    page = browser("physician").get("/ledger").text
    row = element(page, "stock-1")
    assert "CD safe" in row and "1500" in row and "3 full vials" in row
    assert "In date" in row and "never" in row and "count due" in row
    assert 'data-code="ledger:count-due"' in page
    assert "has never been counted" in row and "Source:" in row


def test_a_pharmacist_adds_a_product_a_location_and_a_receipt_through_the_forms(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    pharmacist = browser("pharmacist")
    page = pharmacist.get("/ledger").text
    answer = post(
        pharmacist,
        "/ledger/products",
        page,
        name="Ketamine 10 mg/mL, 20 mL vial",
        strength_mg_per_ml="10",
        container_ml="20",
        form="vial",
        manufacturer="Example Pharma",
    )
    assert answer.status_code == 303
    answer = post(pharmacist, "/ledger/locations", page, name="CD safe", description="Room 2")
    assert answer.status_code == 303
    page = pharmacist.get(answer.headers["location"]).text
    assert "The storage location is added." in page
    [product] = ledger.stock(database, users["pharmacist"], clock=CLOCK).products
    [location] = ledger.stock(database, users["pharmacist"], clock=CLOCK).locations
    expiry = (CLOCK.today() + timedelta(days=300)).isoformat()
    answer = post(
        pharmacist,
        "/ledger/receipts",
        page,
        product_id=str(product.id),
        location_id=str(location.id),
        lot="A-77",
        expiry=expiry,
        containers="4",
        received_on=TODAY,
        supplier_name="Wholesaler Ltd",
        supplier_address="1 Supply Road",
        supplier_registration="RW1234567",
        invoice_number="INV-9",
    )
    assert answer.status_code == 303, html.unescape(answer.text)[-2000:]
    page = pharmacist.get(answer.headers["location"]).text
    assert "The receipt is recorded" in page
    assert "800" in element(page, "stock-1") and "A-77" in element(page, "stock-1")
    nurse = browser("nurse")
    refused = post(nurse, "/ledger/products", nurse.get("/ledger").text, name="X")
    assert refused.status_code == 403 and "Not allowed for your role" in refused.text


def test_a_receipt_with_bad_input_names_every_problem_beside_its_field_and_writes_nothing(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    stocked(database, users)
    before = line_count(database, users)
    pharmacist = browser("pharmacist")
    page = pharmacist.get("/ledger").text
    tomorrow = (CLOCK.today() + timedelta(days=1)).isoformat()
    answer = post(
        pharmacist,
        "/ledger/receipts",
        page,
        product_id="",
        location_id="1",
        lot="bad<lot>",
        expiry="someday",
        containers="-2",
        received_on=tomorrow,
        supplier_name="Wholesaler Ltd",
        supplier_address="",
        invoice_number="",
    )
    assert answer.status_code == 422
    page = answer.text
    assert field_error(page, "receipt-product_id") == "Product is required."
    assert "Lot" in field_error(page, "receipt-lot")
    assert field_error(page, "receipt-expiry").startswith("Expiry date must be a date")
    assert field_error(page, "receipt-containers") == "Containers received must be 1 or more."
    assert field_error(page, "receipt-supplier_address") == "Supplier's address is required."
    assert field_error(page, "receipt-invoice_number").endswith("is required.")
    assert 'value="bad&lt;lot&gt;"' in page and 'value="someday"' in page
    assert 'id="receipt-errors"' in page
    assert line_count(database, users) == before
    # a date the model accepts but the service refuses: beside its field too
    answer = post(
        pharmacist,
        "/ledger/receipts",
        pharmacist.get("/ledger").text,
        product_id="1",
        location_id="1",
        lot="B-1",
        expiry=(CLOCK.today() + timedelta(days=30)).isoformat(),
        containers="1",
        received_on=tomorrow,
        supplier_name="Wholesaler Ltd",
        supplier_address="1 Supply Road",
        invoice_number="INV-2",
    )
    assert answer.status_code == 422
    assert "is after today" in field_error(answer.text, "receipt-received_on")
    assert line_count(database, users) == before


def test_a_count_witnessed_by_the_counter_is_refused_and_a_wrong_count_opens_a_discrepancy(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    from tests.unit.web_app import PASSWORD

    choice = stocked(database, users)
    before = line_count(database, users)
    pharmacist = browser("pharmacist")
    page = pharmacist.get("/ledger/counts").text
    assert "KET-1" in element(page, "counts-due")
    answer = post(
        pharmacist,
        "/ledger/counts",
        page,
        stock=choice,
        full_containers="9",
        open_ml="",
        witness_username="pharmacist",
        witness_password=PASSWORD,
    )
    assert answer.status_code == 422
    assert "second person" in field_error(answer.text, "count-witness_username")
    assert PASSWORD not in answer.text and 'value="9"' in answer.text
    assert line_count(database, users) == before
    answer = post(
        pharmacist,
        "/ledger/counts",
        page,
        stock=choice,
        full_containers="9",
        witness_username="nurse",
        witness_password="not the password",
    )
    assert answer.status_code == 422
    assert "could not be confirmed" in field_error(answer.text, "count-witness_password")
    answer = post(
        pharmacist,
        "/ledger/counts",
        page,
        stock=choice,
        full_containers="9",
        open_ml="5",
        witness_username="nurse",
        witness_password=PASSWORD,
    )
    assert answer.status_code == 303
    result = element(pharmacist.get(answer.headers["location"]).text, "count-result")
    assert "4750" in result and "witnessed by nurse" in result and "-250" in result

    # the discrepancy, resolved with an outcome and a reason (both required)
    page = pharmacist.get("/ledger/discrepancies").text
    listed = element(page, "discrepancies")
    assert "counted 4750.000 mg, the ledger held 5000.000 mg" in listed
    seq = int(re.search(r'action="/ledger/counts/(\d+)/resolve"', page).group(1))  # type: ignore[union-attr]
    answer = post(pharmacist, f"/ledger/counts/{seq}/resolve", page, outcome="", reason="")
    assert answer.status_code == 422
    assert field_error(answer.text, f"resolve-count-{seq}-outcome") == "Outcome is required."
    assert field_error(answer.text, f"resolve-count-{seq}-reason") == "Reason is required."
    answer = post(
        pharmacist,
        f"/ledger/counts/{seq}/resolve",
        page,
        outcome="loss",
        reason="Half a vial broken during the count",
    )
    assert answer.status_code == 303
    page = pharmacist.get(answer.headers["location"]).text
    assert "Loss of 250 mg" in element(page, "loss-recorded")
    assert 'data-code="ledger:loss-or-theft"' in page
    assert 'id="no-discrepancies"' in page
    nurse = browser("nurse")
    refused = post(nurse, f"/ledger/counts/{seq}/resolve", page, outcome="loss", reason="x")
    assert refused.status_code == 403


def test_a_loss_and_a_correction_are_new_lines_and_a_bad_one_names_its_problem(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    choice = stocked(database, users)
    pharmacist = browser("pharmacist")
    page = pharmacist.get("/ledger/discrepancies").text
    answer = post(
        pharmacist, "/ledger/losses", page, kind="theft", stock=choice, volume_ml="1000", reason=""
    )
    assert answer.status_code == 422
    assert field_error(answer.text, "loss-reason") == "What happened is required."
    assert field_error(answer.text, "loss-volume_ml") == ""
    answer = post(
        pharmacist,
        "/ledger/losses",
        page,
        kind="loss",
        stock=choice,
        volume_ml="2",
        reason="Vial dropped and broken",
    )
    assert answer.status_code == 303
    page = pharmacist.get(answer.headers["location"]).text
    assert "Loss of 100 mg" in element(page, "loss-recorded")

    page = pharmacist.get("/ledger/lines").text
    lines = element(page, "ledger-lines")
    assert "Loss" in lines and "Received" in lines
    receipt_seq = int(
        re.search(r'action="/ledger/lines/(\d+)/correct"', page[page.index("Received") :]).group(1)
    )  # type: ignore[union-attr]
    before = line_count(database, users)
    answer = post(pharmacist, f"/ledger/lines/{receipt_seq}/correct", page, containers="x")
    assert answer.status_code == 422
    assert field_error(answer.text, f"correct-{receipt_seq}-containers") == (
        "Containers must be a whole number."
    )
    assert f'id="correct-{receipt_seq}" open' in answer.text
    assert line_count(database, users) == before
    answer = post(
        pharmacist,
        f"/ledger/lines/{receipt_seq}/correct",
        page,
        containers="12",
        reason="Two more vials were on the delivery note",
    )
    assert answer.status_code == 303
    page = pharmacist.get(answer.headers["location"]).text
    assert "corrects line" in element(page, "ledger-lines")
    assert line_count(database, users) == before + 1
    assert "/correct" not in browser("physician").get("/ledger/lines").text


def test_the_reports_page_links_to_the_three_report_downloads(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    stocked(database, users)
    page = browser("pharmacist").get("/ledger/reports").text
    for report in ("us-inventory", "us-records", "uk-register"):
        assert f'action="/api/v1/ledger/reports/{report}"' in page
    assert 'name="on"' in page and 'name="from"' in page and 'name="product_id"' in page
    assert 'id="reports-not-allowed"' in browser("nurse").get("/ledger/reports").text


# ------------------------------------------------------------------ the session page's card


def test_the_session_card_dispenses_checks_the_concentration_and_wastes_with_a_witness(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    from tests.unit.web_app import PASSWORD

    choice = stocked(database, users)
    session_id = scheduled(database, users)
    nurse = Chart(browser("nurse"), session_id)
    page = nurse.open()
    card = element(page, "controlled-drug")
    assert "Nothing has been dispensed for this session." in card
    assert 'id="dispense-form"' in page and "KET-1" in card
    nurse.check_in("09:00")
    page = nurse.open()
    assert "the pump is programmed for 1 mg/mL" in element(page, "bag-concentration")

    # the concentration as the form is filled in, beside the pump programme's
    shown = nurse.client.get(
        f"/sessions/{session_id}/ledger/concentration",
        params={"stock": choice, "volume_ml": "4", "final_volume_ml": "100", "programme": "1"},
    ).text
    assert "2 mg/mL" in text(shown) and "they differ" in text(shown)

    # a bag the pump is not programmed for, and a blank volume: beside their fields
    before = line_count(database, users)
    answer = nurse.client.post(
        f"/sessions/{session_id}/ledger/dispense",
        data={
            "csrf_token": form_token(page),
            "stock": choice,
            "volume_ml": "4",
            "container": "bag",
            "diluent": "sodium chloride 0.9%",
            "final_volume_ml": "100",
        },
    )
    assert answer.status_code == 422
    assert "programmed for 1 mg/mL" in field_error(answer.text, "dispense-final_volume_ml")
    assert 'value="100"' in answer.text and "2 mg/mL" in element(answer.text, "bag-concentration")
    answer = nurse.client.post(
        f"/sessions/{session_id}/ledger/dispense",
        data={"csrf_token": form_token(page), "stock": "", "volume_ml": ""},
    )
    assert field_error(answer.text, "dispense-stock") == "Lot and location is required."
    assert field_error(answer.text, "dispense-volume_ml") == "Volume drawn up (mL) is required."
    assert line_count(database, users) == before

    answer = nurse.client.post(
        f"/sessions/{session_id}/ledger/dispense",
        data={
            "csrf_token": form_token(page),
            "stock": choice,
            "volume_ml": "2",
            "container": "bag",
            "diluent": "sodium chloride 0.9%",
            "final_volume_ml": "100",
        },
    )
    assert answer.status_code == 303, html.unescape(answer.text)[-2000:]
    page = nurse.open(answer.headers["location"].removeprefix(f"/sessions/{session_id}"))
    card = element(page, "controlled-drug")
    assert "Dispensed 100 mg" in card and "100.000 mg dispensed" in card
    nurse.chart("start", "09:05")
    nurse.chart("stop", "09:35", reason="patient_request")
    page = nurse.open()
    assert 'id="dispense-form"' not in page and 'id="waste-form"' in page
    assert "will be recorded as administered" in element(page, "waste-administered")
    left = element(page, "waste-expected-ml")

    # the nurse cannot witness her own waste; the password is never shown again
    answer = nurse.client.post(
        f"/sessions/{session_id}/ledger/waste",
        data={
            "csrf_token": form_token(page),
            "volume_ml": left,
            "manner": "Rendered unrecoverable",
            "witness_username": "nurse",
            "witness_password": PASSWORD,
        },
    )
    assert answer.status_code == 422
    assert "second person" in field_error(answer.text, "waste-witness_username")
    assert PASSWORD not in answer.text and f'value="{left}"' in answer.text
    answer = nurse.client.post(
        f"/sessions/{session_id}/ledger/waste",
        data={
            "csrf_token": form_token(page),
            "volume_ml": left,
            "manner": "Rendered unrecoverable",
            "witness_username": "nurse2",
            "witness_password": PASSWORD,
        },
    )
    assert answer.status_code == 303, html.unescape(answer.text)[-2000:]
    card = element(nurse.open(), "controlled-drug")
    assert "Reconciled: 100.000 mg dispensed" in card and "witnessed by nurse2" in card

    reconciliation = browser("pharmacist").get(f"/ledger/sessions/{session_id}").text
    assert "Reconciled" in element(reconciliation, "reconciliation-words")
    assert "nurse2" in element(reconciliation, "session-lines")
    physician = element(browser("physician").get(f"/sessions/{session_id}").text, "controlled-drug")
    assert "Reconciled" in physician and "Record the waste" not in physician


def test_the_session_card_is_read_only_for_a_physician_and_a_pharmacist_may_dispense(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    stocked(database, users)
    session_id = scheduled(database, users)
    physician = browser("physician").get(f"/sessions/{session_id}").text
    assert 'id="controlled-drug"' in physician and 'id="dispense-form"' not in physician
    pharmacist = browser("pharmacist").get(f"/sessions/{session_id}").text
    assert 'id="dispense-form"' in pharmacist and 'id="read-only"' in pharmacist
    researcher = browser("researcher").get(f"/sessions/{session_id}")
    assert researcher.status_code == 403


@pytest.mark.parametrize("path", ["/ledger/sessions/0", "/ledger/sessions/99999"])
def test_a_session_that_does_not_exist_is_a_page_not_an_error(
    path: str, database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    answer = browser("pharmacist").get(path)
    assert answer.status_code in (404, 422)
    assert "<h1" in answer.text and "Traceback" not in answer.text


def test_the_browsers_cookie_session_may_ask_the_api_for_a_file_with_a_get(
    database: Database, users: dict[str, Actor], browser: Browser
) -> None:
    """The reports page's forms are plain GETs to the API: the signed-in browser's cookie is
    accepted there (no CSRF token is needed to read), and a signed-out one is not."""
    client = browser("pharmacist")
    assert client.get("/api/v1/patients").status_code == 200
    client.cookies.clear()
    assert client.get("/api/v1/patients").status_code == 401


def test_a_role_that_reads_sessions_but_not_the_ledger_sees_the_chart_without_the_card(
    database: Database, users: dict[str, Actor], browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ketapath.services import permissions

    stocked(database, users)
    session_id = scheduled(database, users)
    monkeypatch.setitem(permissions.PERMISSIONS, "ledger.read", frozenset({"pharmacist"}))
    answer = browser("physician").get(f"/sessions/{session_id}")
    assert answer.status_code == 200
    assert 'id="session-state"' in answer.text and 'id="controlled-drug"' not in answer.text
    assert '<a href="/ledger"' not in answer.text
