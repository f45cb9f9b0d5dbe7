"""The regulators' reports of the controlled-drug ledger, on SQLite and PostgreSQL: the US
inventory, the US dispensing records and a UK register page, as data, CSV and PDF, from the
services, the command line and the API; every number checked against the ledger's lines."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from tests.integration.conftest import bearer, clinic_noon, scheduled_session
from tests.integration.test_services_ledger import PASSWORD, Pharmacy
from tests.integration.test_services_sessions import Nurse

from ketapath.config import Settings
from ketapath.domain.ledger import mg_text
from ketapath.reports.ledger import to_csv, to_pdf
from ketapath.services import ledger, ledger_reports
from ketapath.services.errors import InvalidInput, NotFound, PermissionDenied
from ketapath.services.ledger import CorrectionInput, CountInput, LossInput
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, LedgerLine

CLINIC = {
    "clinic_name": "Riverside Pain Clinic",
    "clinic_address": "12 River Street, Springfield",
    "dea_registration": "",
}


@dataclass
class Book:
    """The ledger the tests read: lot A received yesterday; today two charted sessions
    dispensed and wasted, lot B received, a count, a correction of lot B's receipt and a
    theft from lot A."""

    pharmacy: Pharmacy
    settings: Settings
    sessions: tuple[int, int]
    rows: list[LedgerLine]

    @property
    def pharmacist(self) -> Actor:
        return self.pharmacy.users["pharmacist"]


def _charted(pharmacy: Pharmacy, name: str, chair: str) -> tuple[int, Fraction]:
    session_id = scheduled_session(
        pharmacy.database, pharmacy.users, pharmacy.clock, chair=chair, name=name
    )
    nurse = Nurse(pharmacy.database, pharmacy.users["nurse"], session_id, pharmacy.clock)
    nurse.check_in()
    pharmacy.dispense(session_id)
    nurse.chart("start", 5)
    detail = nurse.chart("stop", 65, reason="patient_request")
    return session_id, Fraction(detail.chart.delivered_mg_fraction)


@pytest.fixture
def book(database: Database, users: dict[str, Actor], settings: Settings) -> Book:
    from ketapath.services import auth
    from ketapath.services.permissions import SYSTEM

    for role in ("nurse", "pharmacist", "physician"):
        auth.set_password(database, SYSTEM, role, PASSWORD)
    settings = settings.model_copy(update=CLINIC)
    pharmacy = Pharmacy(database, users, settings, clinic_noon(-1)).stock_up()  # lot A, 10 vials
    pharmacy.clock = clinic_noon()
    first, delivered = _charted(pharmacy, "Alice Example", "Chair 1")
    pharmacy.waste(first, volume_ml=Decimal(f"{float(Fraction(200) - delivered):.2f}"))
    second, _ = _charted(pharmacy, "Bob Example", "Chair 2")
    pharmacy.waste(second, amount_mg=Decimal(100))
    receipt_b = pharmacy.receive(2, lot="KET-2031B")
    pharmacist = users["pharmacist"]
    # lot A: 5000 - 200 - 200 = 4600 mg = 92 mL: nine full vials and 2 mL
    ledger.count(
        database,
        pharmacist,
        CountInput(
            product_id=pharmacy.product_id,
            location_id=pharmacy.location_id,
            lot=pharmacy.lot,
            full_containers=9,
            open_ml=Decimal(2),
            witness_username="nurse",
            witness_password=PASSWORD,
        ),
        clock=pharmacy.clock,
        settings=settings,
    )
    ledger.correct(
        database,
        pharmacist,
        receipt_b,
        CorrectionInput(containers=1, reason="One vial was on back order"),
        clock=pharmacy.clock,
    )
    ledger.record_loss(
        database,
        pharmacist,
        LossInput(
            kind="theft",
            product_id=pharmacy.product_id,
            location_id=pharmacy.location_id,
            lot=pharmacy.lot,
            volume_ml=Decimal(10),
            reason="Vial missing from the safe; police informed",
        ),
        clock=pharmacy.clock,
    )
    with database.transaction() as session:
        rows = list(session.scalars(select(LedgerLine).order_by(LedgerLine.seq)))
        session.expunge_all()
    return Book(pharmacy, settings, (first, second), rows)


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _in_order(text: str, values: list[str]) -> None:
    """Each value appears in the text after the one before it."""
    at = 0
    for value in values:
        found = text.find(value, at)
        assert found >= 0, f"{value!r} not found after position {at}"
        at = found + len(value)


def test_the_book_is_the_ledger_the_tests_expect(book: Book) -> None:
    kinds = [r.kind for r in book.rows]
    assert kinds == [
        "receipt",
        "dispense",
        "administer",
        "waste",
        "dispense",
        "administer",
        "waste",
        "receipt",
        "count",
        "correction",
        "theft",
    ]
    assert book.rows[8].detail["difference_ug"] == 0  # the count agreed


def test_the_inventory_at_the_close_holds_each_lots_balance_as_containers(book: Book) -> None:
    clock = book.pharmacy.clock
    report = ledger_reports.us_inventory(
        book.pharmacy.database,
        book.pharmacist,
        clock.today(),
        "close",
        clock=clock,
        settings=book.settings,
    )
    by_lot = {x.lot: x for x in report.lines}
    expected: dict[str, int] = {}
    for row in book.rows:
        if row.location_id is not None:
            expected[row.lot] = expected.get(row.lot, 0) + row.stock_change_ug
    assert expected == {"KET-2031A": 4_100_000, "KET-2031B": 500_000}
    assert {lot: x.balance_ug for lot, x in by_lot.items()} == expected
    a, b = by_lot["KET-2031A"], by_lot["KET-2031B"]
    assert (a.full_containers, a.opened_container_ml, a.balance_mg) == (8, "2.00", "4100.000")
    assert (b.full_containers, b.opened_container_ml, b.balance_mg) == (1, "0.00", "500.000")
    assert a.finished_form == "injection, 50.000 mg/mL" and a.container == "10.00 mL vial"
    assert report.total_mg == "4600.000"
    heading = report.heading
    assert heading.registrant.name == "Riverside Pain Clinic"
    assert heading.registrant.dea_registration == "not set: KETAPATH_DEA_REGISTRATION"
    assert "estimate" in report.opened_container_note
    assert {r.id for r in heading.requirements} >= {"opening-or-close", "container-count"}
    assert all("1304.11" in r.citation or "ketapath" in r.citation for r in heading.requirements)

    rows = _csv_rows(to_csv(report))
    columns = ("Lot", "Full containers", "Opened container (mL)", "Balance (mg)")
    assert [tuple(r[c] for c in columns) for r in rows] == [
        ("KET-2031A", "8", "2.00", "4100.000"),
        ("KET-2031B", "1", "0.00", "500.000"),
    ]
    assert {r["DEA registration"] for r in rows} == {"not set: KETAPATH_DEA_REGISTRATION"}
    text = _pdf_text(to_pdf(report))
    _in_order(text, ["KET-2031A", "8", "2.00", "4100.000", "KET-2031B", "1", "0.00", "500.000"])
    assert "not set: KETAPATH_DEA_REGISTRATION" in text
    assert "Total on hand: 4600.000 mg" in text
    assert "21 CFR 1304.11" in text or "1304.11" in text
    assert "Page 1 of" in text


def test_the_inventory_at_the_opening_counts_only_what_came_before_the_day(book: Book) -> None:
    clock = book.pharmacy.clock
    database, pharmacist = book.pharmacy.database, book.pharmacist
    today = clock.today()
    opening = ledger_reports.us_inventory(database, pharmacist, today, "opening", clock=clock)
    [line] = opening.lines
    assert (line.lot, line.full_containers, line.balance_mg) == ("KET-2031A", 10, "5000.000")
    yesterday = today - timedelta(days=1)
    close = ledger_reports.us_inventory(database, pharmacist, yesterday, "close", clock=clock)
    assert [x.balance_mg for x in close.lines] == ["5000.000"]
    before = ledger_reports.us_inventory(database, pharmacist, yesterday, "opening", clock=clock)
    [nothing] = before.lines
    assert (nothing.lot, nothing.balance_ug, nothing.full_containers) == ("none on hand", 0, 0)


def test_the_dispensing_records_list_every_line_in_order_with_patient_supplier_and_witness(
    book: Book,
) -> None:
    clock = book.pharmacy.clock
    today = clock.today()
    report = ledger_reports.us_records(
        book.pharmacy.database,
        book.pharmacist,
        today - timedelta(days=1),
        today,
        clock=clock,
        settings=book.settings,
    )
    entries = report.entries
    assert [e.seq for e in entries] == [r.seq for r in book.rows]
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    for entry, row in zip(entries, book.rows, strict=True):
        assert entry.quantity_mg == mg_text(row.amount_ug)
        assert entry.stock_change_ug == row.stock_change_ug
    receipt = entries[0]
    assert (receipt.supplier_name, receipt.supplier_registration, receipt.invoice_number) == (
        "Wholesaler Ltd",
        "RW1234567",
        "INV-001",
    )
    assert receipt.containers == 10 and receipt.quantity_mg == "5000.000"
    dispense, administer, waste = entries[1:4]
    assert dispense.patient_name == "Alice Example"
    assert dispense.patient_address == "address not recorded"
    assert dispense.prescriber == "Physician (physician)"
    assert administer.administered_by == "Nurse (nurse)"
    assert waste.witness == "Pharmacist (pharmacist)" and waste.manner
    assert entries[4].patient_name == "Bob Example"
    correction = entries[9]
    assert correction.kind == "correction" and correction.corrects_seq == book.rows[7].seq
    assert f"Corrects line {book.rows[7].seq}" in correction.note
    assert "1000.000 mg to 500.000 mg" in correction.note
    assert entries[10].label == "Theft" and entries[10].stock_change_mg == "-500.000"

    rows = _csv_rows(to_csv(report))
    assert len(rows) == len(book.rows)
    for csv_row, row in zip(rows, book.rows, strict=True):
        assert csv_row["Line"] == str(row.seq)
        assert csv_row["Quantity (mg)"] == mg_text(row.amount_ug)
        change = mg_text(row.stock_change_ug)
        assert csv_row["Stock change (mg)"] == (f"+{change}" if row.stock_change_ug > 0 else change)
    assert rows[9]["Corrects line"] == str(book.rows[7].seq)
    assert rows[1]["Patient address"] == "address not recorded"
    text = _pdf_text(to_pdf(report))
    _in_order(text, [mg_text(row.amount_ug) for row in book.rows])
    assert "Alice Example" in text and "Bob Example" in text
    assert "Wholesaler Ltd" in text and "RW1234567" in text
    assert f"Corrects line {book.rows[7].seq}" in text
    assert "1304.22" in text


def test_the_register_page_has_a_running_balance_and_corrections_as_their_own_lines(
    book: Book,
) -> None:
    report = ledger_reports.uk_register(
        book.pharmacy.database,
        book.pharmacist,
        book.pharmacy.product_id,
        clock=book.pharmacy.clock,
        settings=book.settings,
    )
    running, balances = 0, []
    for row in book.rows:
        running += row.stock_change_ug
        balances.append(mg_text(running))
    assert [e.balance_mg for e in report.entries] == balances
    assert balances[-1] == report.balance_mg == "4600.000"
    assert [e.seq for e in report.entries] == [r.seq for r in book.rows]
    receipt = report.entries[0]
    assert receipt.supplier_address == "1 Supply Road, Springfield"
    assert report.entries[1].prescriber == "Physician (physician)"
    assert report.entries[9].kind == "correction"  # its own dated line
    assert report.entries[7].quantity_mg == "1000.000"  # the receipt corrected is unchanged
    assert "Misuse of Drugs Regulations 2001" in report.heading.regulation or "2001" in (
        report.heading.regulation
    )

    rows = _csv_rows(to_csv(report))
    assert [r["Balance (mg)"] for r in rows] == balances
    text = _pdf_text(to_pdf(report))
    expected: list[str] = []
    for entry in report.entries:
        expected += [entry.quantity_mg, entry.stock_change_mg, entry.balance_mg]
    _in_order(text, expected)
    assert "running balance" in text.lower()
    assert "Riverside Pain Clinic" in text
    assert "DEA" not in text.split("What the regulation asks")[0]  # a UK page


def test_only_pharmacists_and_physicians_read_the_reports_and_each_reading_is_audited(
    book: Book,
) -> None:
    database, clock = book.pharmacy.database, book.pharmacy.clock
    for role in ("nurse", "researcher", "admin"):
        with pytest.raises(PermissionDenied):
            ledger_reports.uk_register(
                database, book.pharmacy.users[role], book.pharmacy.product_id, clock=clock
            )
    ledger_reports.us_inventory(
        database, book.pharmacy.users["physician"], clock.today(), "close", clock=clock
    )
    with database.transaction() as session:
        outcomes = [
            (a.outcome, a.username)
            for a in session.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.report"))
        ]
    assert ("ok", "physician") in outcomes
    assert {("denied", "nurse"), ("denied", "researcher")} <= set(outcomes)


def test_dates_are_bounded_and_refused_in_words(book: Book) -> None:
    database, pharmacist, clock = book.pharmacy.database, book.pharmacist, book.pharmacy.clock
    today = clock.today()
    with pytest.raises(InvalidInput, match="after the clinic's today") as future:
        ledger_reports.us_inventory(
            database, pharmacist, today + timedelta(1), "close", clock=clock
        )
    assert future.value.field == "on"
    with pytest.raises(InvalidInput, match="is after to") as backwards:
        ledger_reports.us_records(database, pharmacist, today, today - timedelta(1), clock=clock)
    assert backwards.value.field == "from"
    with pytest.raises(InvalidInput, match="at most 731 days"):
        ledger_reports.us_records(database, pharmacist, today - timedelta(800), today, clock=clock)
    with pytest.raises(NotFound):
        ledger_reports.uk_register(database, pharmacist, 999, clock=clock)


def test_the_command_line_writes_each_report_to_a_file(
    book: Book, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import Result
    from typer.testing import CliRunner

    from ketapath.cli import app as cli_app

    monkeypatch.setenv("KETAPATH_DATABASE_URL", book.pharmacy.database.url)
    monkeypatch.setenv("KETAPATH_TIMEZONE", "UTC")
    monkeypatch.setenv("KETAPATH_CLINIC_NAME", "Riverside Pain Clinic")
    runner = CliRunner()

    def report(*args: str) -> Result:
        return runner.invoke(cli_app, ["ledger", "report", *args])

    today = book.pharmacy.clock.today()
    yesterday = today - timedelta(days=1)
    inventory = tmp_path / "inventory.csv"
    done = report(
        "us-inventory",
        "--on",
        str(today),
        "--time",
        "close",
        "--format",
        "csv",
        "--out",
        str(inventory),
        "--user",
        "pharmacist",
    )
    assert done.exit_code == 0, done.output
    assert [r["Balance (mg)"] for r in _csv_rows(inventory.read_text())] == ["4100.000", "500.000"]
    records = tmp_path / "records.pdf"
    done = report(
        "us-records",
        "--from",
        str(yesterday),
        "--to",
        str(today),
        "--out",
        str(records),
        "--user",
        "physician",
    )
    assert done.exit_code == 0, done.output
    assert "Alice Example" in _pdf_text(records.read_bytes())
    register = tmp_path / "register.json"
    done = report(
        "uk-register",
        "--product",
        str(book.pharmacy.product_id),
        "--format",
        "json",
        "--out",
        str(register),
        "--user",
        "pharmacist",
    )
    assert done.exit_code == 0, done.output
    assert '"balance_mg": "4600.000"' in register.read_text()
    refused = report("uk-register", "--product", "1", "--out", str(register), "--user", "nurse")
    assert refused.exit_code == 2 and "Not allowed" in refused.output
    backwards = report(
        "us-records",
        "--from",
        str(today),
        "--to",
        str(yesterday),
        "--out",
        str(tmp_path / "x.csv"),
        "--user",
        "pharmacist",
    )
    assert backwards.exit_code == 2 and "--from" in backwards.output


def test_the_api_answers_json_and_downloads_csv_and_pdf(book: Book, client: TestClient) -> None:
    auth = bearer(client, "pharmacist", PASSWORD)
    today = book.pharmacy.clock.today()
    base = "/api/v1/ledger/reports"
    answer = client.get(f"{base}/us-inventory", params={"on": str(today)}, headers=auth)
    assert answer.status_code == 200, answer.text
    assert [x["balance_mg"] for x in answer.json()["lines"]] == ["4100.000", "500.000"]
    csv_file = client.get(
        f"{base}/us-records",
        params={"from": str(today - timedelta(1)), "to": str(today), "format": "csv"},
        headers=auth,
    )
    assert csv_file.status_code == 200, csv_file.text
    assert csv_file.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_file.headers["content-disposition"]
    assert len(_csv_rows(csv_file.text)) == len(book.rows)
    pdf_file = client.get(
        f"{base}/uk-register",
        params={"product_id": book.pharmacy.product_id, "format": "pdf"},
        headers=auth,
    )
    assert pdf_file.status_code == 200, pdf_file.text
    assert pdf_file.headers["content-type"] == "application/pdf"
    assert 'filename="uk-register-product-' in pdf_file.headers["content-disposition"]
    assert "4600.000" in _pdf_text(pdf_file.content)
    for params, words in (
        ({"on": "2026-02-30"}, "on"),
        ({"on": str(today), "time": "noon"}, "time"),
        ({"on": str(today + timedelta(days=3))}, "after the clinic's today"),
    ):
        bad = client.get(f"{base}/us-inventory", params=params, headers=auth)
        assert bad.status_code == 422 and words in bad.json()["detail"], bad.text
    for params in (
        {"from": str(today), "to": str(today - timedelta(1))},
        {"from": "1900-01-01", "to": str(today)},
        {"from": str(today)},
    ):
        bad = client.get(f"{base}/us-records", params=params, headers=auth)
        assert bad.status_code == 422, bad.text
    huge = client.get(f"{base}/uk-register", params={"product_id": 2**40}, headers=auth)
    assert huge.status_code == 422
    nurse = bearer(client, "nurse", PASSWORD)
    refused = client.get(f"{base}/uk-register", params={"product_id": 1}, headers=nurse)
    assert refused.status_code == 403
