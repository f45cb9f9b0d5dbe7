"""The controlled-drug ledger through the services, on SQLite and PostgreSQL: receipts,
dispensing for a charted session, witnessed waste, reconciliation to the 0.1 mg, counts,
losses, corrections, the hash chain and its append-only guard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from tests.integration.conftest import (
    TEST_PASSWORD,
    as_superuser,
    clinic_noon,
    scheduled_session,
)
from tests.integration.test_services_sessions import Nurse

from ketapath.config import Settings
from ketapath.services import ledger
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import InvalidInput, PermissionDenied
from ketapath.services.ledger import (
    CorrectionInput,
    CountInput,
    CountResolutionInput,
    DispenseInput,
    LocationInput,
    LossInput,
    ProductInput,
    ReceiptInput,
    SessionResolutionInput,
    WasteInput,
)
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, LedgerLine

PASSWORD = "correct horse battery staple"


@dataclass
class Pharmacy:
    """A clinic's controlled-drug stock: one product (50 mg/mL, 10 mL vials) in one safe,
    ``vials`` of lot ``lot`` received today; builds sessions and wastes on it."""

    database: Database
    users: dict[str, Actor]
    settings: Settings
    clock: ClinicClock
    product_id: int = 0
    location_id: int = 0
    lot: str = "KET-2031A"

    def stock_up(self, vials: int = 10, expiry: date | None = None) -> Pharmacy:
        pharmacist = self.users["pharmacist"]
        self.product_id = ledger.add_product(
            self.database,
            pharmacist,
            ProductInput(
                name="Ketamine 50 mg/mL, 10 mL vial",
                strength_mg_per_ml=Decimal(50),
                container_ml=Decimal(10),
                manufacturer="Example Pharma",
            ),
        ).id
        self.location_id = ledger.add_location(
            self.database, pharmacist, LocationInput(name="CD safe 1")
        ).id
        self.receive(vials, expiry)
        return self

    def receive(self, vials: int, expiry: date | None = None, lot: str | None = None) -> int:
        return ledger.receive(
            self.database,
            self.users["pharmacist"],
            ReceiptInput(
                product_id=self.product_id,
                location_id=self.location_id,
                lot=lot or self.lot,
                expiry=expiry or self.clock.today() + timedelta(days=400),
                containers=vials,
                received_on=self.clock.today(),
                supplier_name="Wholesaler Ltd",
                supplier_address="1 Supply Road, Springfield",
                supplier_registration="RW1234567",
                invoice_number="INV-001",
            ),
            clock=self.clock,
        ).seq

    def dispense(self, session_id: int, ml: str = "4", bag_ml: str = "200", **kw: Any):  # type: ignore[no-untyped-def]
        request = DispenseInput(
            session_id=session_id,
            product_id=self.product_id,
            location_id=self.location_id,
            lot=kw.pop("lot", self.lot),
            volume_ml=Decimal(ml),
            final_volume_ml=Decimal(bag_ml),
        )
        return ledger.dispense(
            self.database, kw.pop("actor", self.users["nurse"]), request, clock=self.clock
        )

    def waste(self, session_id: int, *, witness: str = "pharmacist", **amount: Any):  # type: ignore[no-untyped-def]
        request = WasteInput(
            session_id=session_id,
            witness_username=witness,
            witness_password=amount.pop("password", PASSWORD),
            **amount,
        )
        return ledger.waste(
            self.database,
            amount.pop("actor", self.users["nurse"]),
            request,
            clock=self.clock,
            settings=self.settings,
        )

    def balance_mg(self) -> float:
        view = ledger.stock(self.database, self.users["pharmacist"], clock=self.clock)
        return sum(line.balance_mg for line in view.lines if line.lot == self.lot)


@pytest.fixture
def pharmacy(database: Database, users: dict[str, Actor], settings: Settings) -> Pharmacy:
    from ketapath.services import auth
    from ketapath.services.permissions import SYSTEM

    for role in ("nurse", "pharmacist", "physician"):
        auth.set_password(database, SYSTEM, role, PASSWORD)
    return Pharmacy(database, users, settings, clinic_noon()).stock_up()


def charted_session(pharmacy: Pharmacy, *, stop_at: float = 125) -> tuple[int, Fraction]:
    """A session checked in (1 mg/mL), started at 5 min, paused 31-91, stopped at
    ``stop_at``; its id and the exact dose the chart delivered (mg)."""
    session_id = scheduled_session(pharmacy.database, pharmacy.users, pharmacy.clock)
    nurse = Nurse(pharmacy.database, pharmacy.users["nurse"], session_id, pharmacy.clock)
    nurse.check_in()
    pharmacy.dispense(session_id)
    nurse.chart("start", 5)
    nurse.chart("pause", 31, reason="patient_request")
    nurse.chart("resume", 91)
    detail = nurse.chart("stop", stop_at, reason="patient_request")
    return session_id, Fraction(detail.chart.delivered_mg_fraction)


def test_stock_received_is_the_containers_times_volume_times_strength(pharmacy: Pharmacy) -> None:
    view = ledger.stock(pharmacy.database, pharmacy.users["pharmacist"], clock=pharmacy.clock)
    [line] = view.lines
    assert line.balance_mg == 5000.0  # 10 vials x 10 mL x 50 mg/mL
    assert line.balance_ml == 100.0
    assert (line.full_containers, line.open_ml) == (10, 0.0)
    assert line.count_due  # never counted
    assert [f.code for f in line.findings] == ["ledger:count-due"]


def test_a_session_reconciles_when_the_waste_is_what_the_chart_left(pharmacy: Pharmacy) -> None:
    session_id, delivered = charted_session(pharmacy)
    assert pharmacy.balance_mg() == 4800.0  # 4 mL of 50 mg/mL taken for a 200 mL bag
    left_ml = Fraction(200) - delivered  # 1 mg/mL: mL left = mg left
    view = pharmacy.waste(session_id, volume_ml=Decimal(f"{float(left_ml):.2f}"))
    result = view.reconciliation
    assert result.status == "reconciled", result.message
    assert result.dispensed_mg == 200.0
    assert result.administered_mg == pytest.approx(float(delivered), abs=0.001)
    assert abs(result.difference_mg) < 0.05
    assert [line.kind for line in view.lines] == ["dispense", "administer", "waste"]
    assert view.lines[-1].witness_username == "pharmacist"


def test_a_waste_that_leaves_drug_unaccounted_for_is_a_discrepancy_until_resolved(
    pharmacy: Pharmacy,
) -> None:
    session_id, delivered = charted_session(pharmacy)
    view = pharmacy.waste(session_id, amount_mg=Decimal(100))
    result = view.reconciliation
    assert result.status == "discrepancy"
    expected = 200 - 100 - delivered
    assert result.difference_mg == pytest.approx(float(expected), abs=0.0015)
    assert [f.code for f in view.findings] == ["ledger:session-discrepancy"]
    [open_one] = ledger.discrepancies(
        pharmacy.database, pharmacy.users["pharmacist"], clock=pharmacy.clock
    )
    assert open_one.source == "session" and open_one.session_id == session_id
    with pytest.raises(PermissionDenied):
        ledger.resolve_session(
            pharmacy.database,
            pharmacy.users["nurse"],
            session_id,
            SessionResolutionInput(reason="bag overfill"),
            clock=pharmacy.clock,
        )
    resolved = ledger.resolve_session(
        pharmacy.database,
        pharmacy.users["pharmacist"],
        session_id,
        SessionResolutionInput(reason="Bag overfill measured at 10 mL"),
        clock=pharmacy.clock,
    )
    assert resolved.reconciliation.status == "resolved"
    assert resolved.reconciliation.resolved_by == "pharmacist"
    assert (
        ledger.discrepancies(pharmacy.database, pharmacy.users["pharmacist"], clock=pharmacy.clock)
        == []
    )


def test_the_same_user_or_a_wrong_password_cannot_witness_a_waste_and_nothing_is_written(
    pharmacy: Pharmacy,
) -> None:
    session_id, _ = charted_session(pharmacy)
    before = _line_count(pharmacy.database)
    with pytest.raises(InvalidInput, match="second person") as same:
        pharmacy.waste(session_id, witness="nurse", amount_mg=Decimal(10))
    assert same.value.field == "witness_username"
    with pytest.raises(InvalidInput, match="could not be confirmed") as wrong:
        pharmacy.waste(session_id, amount_mg=Decimal(10), password="not the password")
    assert wrong.value.field == "witness_password"
    with pytest.raises(InvalidInput, match="physician, nurse or pharmacist"):
        pharmacy.waste(
            session_id, witness="researcher", amount_mg=Decimal(10), password=TEST_PASSWORD
        )
    assert _line_count(pharmacy.database) == before


def test_waste_waits_for_the_infusion_to_stop_and_needs_something_dispensed(
    pharmacy: Pharmacy,
) -> None:
    session_id = scheduled_session(pharmacy.database, pharmacy.users, pharmacy.clock)
    nurse = Nurse(pharmacy.database, pharmacy.users["nurse"], session_id, pharmacy.clock)
    nurse.check_in()
    pharmacy.dispense(session_id)
    nurse.chart("start", 5)
    with pytest.raises(InvalidInput, match="running"):
        pharmacy.waste(session_id, amount_mg=Decimal(10))


def test_dispensing_is_refused_for_an_expired_lot_more_than_the_balance_or_a_wrong_bag(
    pharmacy: Pharmacy,
) -> None:
    session_id = scheduled_session(pharmacy.database, pharmacy.users, pharmacy.clock)
    Nurse(pharmacy.database, pharmacy.users["nurse"], session_id, pharmacy.clock).check_in()
    with pytest.raises(InvalidInput, match=r"holds 5000\.000 mg"):
        pharmacy.dispense(session_id, ml="101", bag_ml="1000")
    with pytest.raises(InvalidInput, match="programmed for 1 mg/mL"):
        pharmacy.dispense(session_id, ml="4", bag_ml="100")  # 2 mg/mL
    with pytest.raises(PermissionDenied):
        pharmacy.dispense(session_id, actor=pharmacy.users["physician"])
    old = pharmacy.clock.today() - timedelta(days=1)
    with pytest.raises(InvalidInput, match="expired"):
        pharmacy.receive(2, expiry=old, lot="OLD-1")


def test_a_count_that_differs_opens_a_discrepancy_resolved_as_a_theft(pharmacy: Pharmacy) -> None:
    pharmacist = pharmacy.users["pharmacist"]
    request = CountInput(
        product_id=pharmacy.product_id,
        location_id=pharmacy.location_id,
        lot=pharmacy.lot,
        full_containers=9,
        open_ml=Decimal("5"),
        witness_username="nurse",
        witness_password=PASSWORD,
    )
    line = ledger.count(
        pharmacy.database, pharmacist, request, clock=pharmacy.clock, settings=pharmacy.settings
    )
    assert line.amount_mg == 4750.0
    assert line.detail["difference_ug"] == -250_000
    [found] = ledger.discrepancies(pharmacy.database, pharmacist, clock=pharmacy.clock)
    assert found.source == "count" and found.difference_mg == -250.0
    theft = ledger.resolve_count(
        pharmacy.database,
        pharmacist,
        line.seq,
        CountResolutionInput(outcome="theft", reason="Vial missing; police informed"),
        clock=pharmacy.clock,
    )
    assert theft.kind == "theft" and theft.stock_change_mg == -250.0
    assert pharmacy.balance_mg() == 4750.0
    assert ledger.discrepancies(pharmacy.database, pharmacist, clock=pharmacy.clock) == []
    with pytest.raises(InvalidInput, match="no open discrepancy"):
        ledger.resolve_count(
            pharmacy.database,
            pharmacist,
            line.seq,
            CountResolutionInput(outcome="loss", reason="again"),
            clock=pharmacy.clock,
        )


def test_a_correction_is_a_new_line_and_the_stock_moves_by_the_difference(
    pharmacy: Pharmacy,
) -> None:
    pharmacist = pharmacy.users["pharmacist"]
    receipt_seq = 1
    corrected = ledger.correct(
        pharmacy.database,
        pharmacist,
        receipt_seq,
        CorrectionInput(containers=8, reason="Two vials were on back order"),
        clock=pharmacy.clock,
    )
    assert corrected.kind == "correction" and corrected.corrects_seq == receipt_seq
    assert corrected.stock_change_mg == -1000.0
    assert pharmacy.balance_mg() == 4000.0
    with pytest.raises(InvalidInput, match="containers"):
        ledger.correct(
            pharmacy.database,
            pharmacist,
            receipt_seq,
            CorrectionInput(volume_ml=Decimal(3), reason="wrong"),
        )


def test_a_loss_is_recorded_and_asks_for_a_report(pharmacy: Pharmacy) -> None:
    line = ledger.record_loss(
        pharmacy.database,
        pharmacy.users["pharmacist"],
        LossInput(
            kind="loss",
            product_id=pharmacy.product_id,
            location_id=pharmacy.location_id,
            lot=pharmacy.lot,
            volume_ml=Decimal(10),
            reason="Vial dropped and broken",
        ),
        clock=pharmacy.clock,
    )
    assert line.stock_change_mg == -500.0
    assert ledger.loss_finding(line).code == "ledger:loss-or-theft"


def test_ledger_lines_refuse_update_and_delete_and_a_change_behind_the_back_is_named(
    pharmacy: Pharmacy,
) -> None:
    database = pharmacy.database
    assert ledger.verify(database, pharmacy.users["pharmacist"]).intact
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("UPDATE ledger_lines SET amount_ug = 1 WHERE seq = 1"))
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("DELETE FROM ledger_lines WHERE seq = 1"))
    pharmacy.receive(3, lot="SECOND")
    with as_superuser(database) as connection:
        connection.execute(text("UPDATE ledger_lines SET amount_ug = 1 WHERE seq = 2"))
    report = ledger.verify(database, pharmacy.users["admin"])
    assert not report.intact
    assert report.broken_seq == 2 and report.problem == "hash mismatch"
    assert "ledger line 2" in (report.message or "")
    with pytest.raises(PermissionDenied):
        ledger.verify(database, pharmacy.users["nurse"])


def test_researchers_see_nothing_of_the_ledger_and_every_action_is_audited(
    pharmacy: Pharmacy,
) -> None:
    with pytest.raises(PermissionDenied):
        ledger.stock(pharmacy.database, pharmacy.users["researcher"])
    with pharmacy.database.transaction() as session:
        actions = set(session.scalars(select(AuditEntry.action)))
    assert {"ledger.product", "ledger.location", "ledger.receive", "ledger.read"} <= actions


def _line_count(database: Database) -> int:
    with database.transaction() as session:
        return len(list(session.scalars(select(LedgerLine.id))))


def test_ledger_verify_on_the_command_line_names_the_line_changed_behind_the_back(
    pharmacy: Pharmacy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ketapath.cli import app as cli_app

    monkeypatch.setenv("KETAPATH_DATABASE_URL", pharmacy.database.url)
    runner = CliRunner()
    intact = runner.invoke(cli_app, ["ledger", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "ledger chain intact: 1 lines checked" in intact.output
    pharmacy.receive(2, lot="LATER")
    with as_superuser(pharmacy.database) as connection:
        connection.execute(text("UPDATE ledger_lines SET lot = 'FORGED' WHERE seq = 2"))
    broken = runner.invoke(cli_app, ["ledger", "verify", "--json"])
    assert broken.exit_code == 1, broken.output
    import json

    report = json.loads(broken.output)
    assert report["broken_seq"] == 2 and report["problem"] == "hash mismatch"


def test_two_dispensings_at_once_cannot_take_more_than_the_lot_holds(pharmacy: Pharmacy) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pharmacy.receive(2, lot="TIGHT")  # 1000 mg
    first = scheduled_session(pharmacy.database, pharmacy.users, pharmacy.clock)
    second = scheduled_session(pharmacy.database, pharmacy.users, pharmacy.clock, chair="Chair 2")

    def take(session_id: int) -> str:
        try:
            pharmacy.dispense(session_id, ml="12", bag_ml="600", lot="TIGHT")  # 600 mg each
        except InvalidInput as error:
            return error.message
        return "dispensed"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(take, [first, second]))
    assert outcomes[0] == "dispensed"
    assert "the ledger holds 400.000 mg" in outcomes[1]
    view = ledger.stock(pharmacy.database, pharmacy.users["pharmacist"], clock=pharmacy.clock)
    assert [line.balance_mg for line in view.lines if line.lot == "TIGHT"] == [400.0]
    assert ledger.verify(pharmacy.database, pharmacy.users["pharmacist"]).intact


@pytest.mark.parametrize(
    ("received_days", "expiry_days", "field"),
    [(1, 400, "received_on"), (-6 * 365, 400, "received_on"), (0, 11 * 365, "expiry")],
)
def test_a_receipt_with_an_impossible_date_is_refused_in_words(
    pharmacy: Pharmacy, received_days: int, expiry_days: int, field: str
) -> None:
    today = pharmacy.clock.today()
    request = ReceiptInput(
        product_id=pharmacy.product_id,
        location_id=pharmacy.location_id,
        lot="DATES",
        expiry=today + timedelta(days=expiry_days),
        containers=1,
        received_on=today + timedelta(days=received_days),
        supplier_name="Wholesaler Ltd",
        supplier_address="1 Supply Road",
        invoice_number="INV-9",
    )
    with pytest.raises(InvalidInput) as refused:
        ledger.receive(
            pharmacy.database, pharmacy.users["pharmacist"], request, clock=pharmacy.clock
        )
    assert refused.value.field == field


def test_a_chart_corrected_after_the_waste_reopens_the_reconciliation(pharmacy: Pharmacy) -> None:
    from pydantic import TypeAdapter

    from ketapath.domain.session_events import ChartEntry
    from ketapath.services import sessions
    from ketapath.services.sessions import Correction

    session_id, delivered = charted_session(pharmacy, stop_at=125)
    left = Fraction(200) - delivered
    pharmacy.waste(session_id, amount_mg=Decimal(f"{float(left):.3f}"))
    pharmacist = pharmacy.users["pharmacist"]
    assert ledger.discrepancies(pharmacy.database, pharmacist, clock=pharmacy.clock) == []
    log = sessions.session_log(pharmacy.database, pharmacist, session_id)
    stop = next(e for e in log if e.kind == "stop")
    nurse = Nurse(pharmacy.database, pharmacy.users["nurse"], session_id, pharmacy.clock)
    entry = TypeAdapter(ChartEntry).validate_python(
        {"kind": "stop", "occurred_at": nurse.at(95), "reason": "patient_request"}
    )
    sessions.correct(
        pharmacy.database,
        pharmacy.users["nurse"],
        session_id,
        stop.seq,
        Correction(expected_seq=log[-1].seq, entry=entry, reason="stopped at 10:35, not 11:05"),
        clock=pharmacy.clock,
    )
    [found] = ledger.discrepancies(pharmacy.database, pharmacist, clock=pharmacy.clock)
    assert found.session_id == session_id
    assert found.difference_mg > 0  # 30 minutes less given: drug unaccounted for
    view = ledger.session_ledger(pharmacy.database, pharmacist, session_id, clock=pharmacy.clock)
    assert view.reconciliation.chart_changed
    assert {f.code for f in view.findings} == {
        "ledger:session-discrepancy",
        "ledger:chart-changed",
    }
