"""The controlled-drug ledger through the API, on SQLite and PostgreSQL: receipts, sessions
charted with pauses and stops, dispensed and wasted, reconciled exactly against the dose the
test computes itself; witnesses; a wrong count resolved as a loss; losses and corrections;
the append-only guard and the hash chain; who may do what; bad input answered 422."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from tests.integration.conftest import (
    TEST_PASSWORD,
    LedgerDesk,
    as_superuser,
    check_in_entry,
    scheduled_session,
    signed_order,
)
from tests.integration.test_api_sessions import Chart, _schedule

from ketapath.config import Settings
from ketapath.services.clock import clinic_clock
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

API = "/api/v1"
BAG_ML = 200  # 4 mL of 50 mg/mL made up to 200 mL: 1 mg/mL, the order's strength
DISPENSED_UG = 200_000


@pytest.fixture
def desk(client: TestClient, headers: dict[str, dict[str, str]]) -> LedgerDesk:
    return LedgerDesk(client, headers).stock_up()


# --- the dose the chart delivered, computed here --------------------------------------------


def exact(value: float) -> Fraction:
    """The decimal a JSON number was written as (26.66 -> 1333/50)."""
    return Fraction(Decimal(repr(value)))


def whole_ug(mg: Fraction) -> int:
    return round(mg * 1000)  # Fraction rounds half to even


def mg9(mg: Fraction) -> str:
    quotient = Decimal(mg.numerator) / Decimal(mg.denominator)
    return str(quotient.quantize(Decimal("1e-9"), rounding=ROUND_HALF_EVEN))


@dataclass
class ChartedSession:
    """A session charted through the API, and the dose its pump delivered by the test's own
    arithmetic: rate (mL/h) x running hours x the bag's concentration (mg/mL)."""

    session_id: int
    delivered_mg: Fraction
    chart_delivered_fraction: str


def chart_session(
    desk: LedgerDesk,
    database: Database,
    users: dict[str, Actor],
    *,
    chair: str,
    pump: list[tuple[str, float, dict[str, Any]]],
    protocol_id: str = "asra-initial",
) -> ChartedSession:
    """Check in, dispense a 200 mL bag, then chart ``pump`` (kind, fraction of the last hour,
    fields) through the sessions API; the delivered dose is computed from the times sent."""
    order_id = signed_order(database, users, protocol_id=protocol_id, name=f"Patient {chair}")
    session_id = _schedule(desk.client, desk.headers, order_id, chair)
    chart = Chart(desk.client, desk.headers, session_id)
    fields = check_in_entry(datetime.fromisoformat(chart.at(0.0)))
    fields.pop("kind"), fields.pop("occurred_at")
    programme = chart.ok("check_in", 0.0, **fields)["chart"]["programme"]
    desk.ok(desk.dispense(session_id))
    rate_mg_per_h = exact(programme["steps"][0]["rate_ml_per_h"]) * exact(
        programme["concentration_mg_per_ml"]
    )
    delivered, running_since = Fraction(0), None
    detail: dict[str, Any] = {}
    for kind, fraction, more in pump:
        detail = chart.ok(kind, fraction, **more)
        at = datetime.fromisoformat(chart.at(fraction))
        if kind in ("start", "resume"):
            running_since = at
        else:  # pause, stop
            assert running_since is not None
            span = at - running_since
            delivered += rate_mg_per_h * Fraction(span // timedelta(microseconds=1), 3600 * 10**6)
            running_since = None
    assert detail["chart"]["state"] == "stopped"
    return ChartedSession(session_id, delivered, detail["chart"]["delivered_mg_fraction"])


# --- sessions: dispensing, waste, reconciliation -------------------------------------------


def test_sessions_with_pauses_and_stops_reconcile_exactly_against_the_dose_computed_here(
    desk: LedgerDesk, database: Database, users: dict[str, Actor]
) -> None:
    assert desk.balance_mg() == 5000.0  # 10 vials x 10 mL x 50 mg/mL
    one_pause = chart_session(
        desk,
        database,
        users,
        chair="Chair 1",
        pump=[
            ("start", 0.05, {}),
            ("pause", 0.3, {"reason": "patient_request"}),
            ("resume", 0.45, {}),
            ("stop", 0.8, {"reason": "patient_request"}),
        ],
    )
    two_pauses = chart_session(
        desk,
        database,
        users,
        chair="Chair 2",
        protocol_id="mixed-kang-3session",
        pump=[
            ("start", 0.1, {}),
            ("pause", 0.2, {"reason": "equipment"}),
            ("resume", 0.25, {}),
            ("pause", 0.5, {"reason": "patient_request"}),
            ("resume", 0.6, {}),
            ("stop", 0.9, {"reason": "equipment"}),
        ],
    )
    short = chart_session(
        desk,
        database,
        users,
        chair="Chair 3",
        pump=[("start", 0.1, {}), ("stop", 0.7, {"reason": "patient_request"})],
    )
    for charted in (one_pause, two_pauses, short):
        assert Fraction(charted.chart_delivered_fraction) == charted.delivered_mg
    assert desk.balance_mg() == 5000.0 - 3 * 200.0

    # what the bag holds, by volume to 0.01 mL (1 mg/mL): reconciles to the 0.1 mg
    left_ml = (Fraction(BAG_ML) - one_pause.delivered_mg).limit_denominator(10**9)
    volume = Decimal(left_ml.numerator) / Decimal(left_ml.denominator)
    volume = volume.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    view = desk.ok(desk.waste(one_pause.session_id, volume_ml=str(volume)))
    _assert_reconciliation(view, one_pause, wasted_ug=round(Fraction(volume) * 1000))
    assert view["reconciliation"]["status"] == "reconciled"

    # the remainder in mg to the microgram: the difference is exactly zero
    remainder_ug = DISPENSED_UG - whole_ug(two_pauses.delivered_mg)
    view = desk.ok(desk.waste(two_pauses.session_id, amount_mg=str(Decimal(remainder_ug) / 1000)))
    _assert_reconciliation(view, two_pauses, wasted_ug=remainder_ug)
    assert view["reconciliation"]["difference_mg"] == 0.0
    assert view["reconciliation"]["status"] == "reconciled"

    # 100 mg wasted of a bag the chart left more in: a discrepancy until a pharmacist resolves
    view = desk.ok(desk.waste(short.session_id, amount_mg="100"))
    _assert_reconciliation(view, short, wasted_ug=100_000)
    assert view["reconciliation"]["status"] == "discrepancy"
    assert [f["code"] for f in view["findings"]] == ["ledger:session-discrepancy"]
    [open_one] = desk.ok(desk.get("/discrepancies", "nurse"), 200)
    assert open_one["source"] == "session" and open_one["session_id"] == short.session_id
    expected_difference = DISPENSED_UG - whole_ug(short.delivered_mg) - 100_000
    assert open_one["difference_mg"] == float(Decimal(expected_difference) / 1000)
    reason = {"reason": "Bag overfill measured at 10 mL"}
    path = f"/sessions/{short.session_id}/resolution"
    assert desk.post(path, reason, "nurse").status_code == 403
    resolved = desk.ok(desk.post(path, reason))
    assert resolved["reconciliation"]["status"] == "resolved"
    assert resolved["reconciliation"]["resolved_by"] == "pharmacist"
    assert desk.ok(desk.get("/discrepancies"), 200) == []
    again = desk.post(path, reason)
    assert again.status_code == 422 and again.json()["field"] == "session_id"

    lines = desk.ok(desk.get("/lines", "physician", session_id=short.session_id), 200)
    assert [x["kind"] for x in lines] == ["resolution", "waste", "administer", "dispense"]
    read = desk.ok(desk.get(f"/sessions/{one_pause.session_id}", "physician"), 200)
    assert read["reconciliation"]["status"] == "reconciled"
    assert read["lines"][-1]["witness_username"] == "pharmacist"


def _assert_reconciliation(view: dict[str, Any], charted: ChartedSession, wasted_ug: int) -> None:
    result = view["reconciliation"]
    administered_ug = whole_ug(charted.delivered_mg)
    assert result["administered_exact_mg"] == mg9(charted.delivered_mg)
    assert result["administered_mg"] == float(Decimal(administered_ug) / 1000)
    assert result["dispensed_mg"] == 200.0
    assert result["wasted_mg"] == float(Decimal(wasted_ug) / 1000)
    difference = DISPENSED_UG - administered_ug - wasted_ug
    assert result["difference_mg"] == float(Decimal(difference) / 1000)
    assert result["reconciled"] is (abs(difference) < 50)  # 0.05 mg: 0.0 at one decimal
    assert [x["kind"] for x in view["lines"]] == ["dispense", "administer", "waste"]
    assert view["lines"][1]["amount_mg"] == float(Decimal(administered_ug) / 1000)


def _stopped_session(desk: LedgerDesk, database: Database, users: dict[str, Actor]) -> int:
    return chart_session(
        desk,
        database,
        users,
        chair="Chair 4",
        pump=[("start", 0.1, {}), ("stop", 0.5, {"reason": "patient_request"})],
    ).session_id


def test_a_waste_needs_a_second_person_with_their_own_password_and_the_password_is_never_kept(
    desk: LedgerDesk,
    database: Database,
    users: dict[str, Actor],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    session_id = _stopped_session(desk, database, users)
    before = len(desk.ok(desk.get("/lines"), 200))
    wrong_password = "not-the-witness-password-4711"
    answers = []
    for witness, password, field in (
        ("nurse", TEST_PASSWORD, "witness_username"),  # the nurse who records it
        ("NURSE", TEST_PASSWORD, "witness_username"),
        ("pharmacist", wrong_password, "witness_password"),
        ("researcher", TEST_PASSWORD, "witness_username"),  # not of the clinical team
        ("nobody", TEST_PASSWORD, "witness_password"),
    ):
        refused = desk.waste(session_id, witness=witness, password=password, amount_mg="10")
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == field, refused.text
        answers.append(refused.text)
    assert len(desk.ok(desk.get("/lines"), 200)) == before  # nothing written
    accepted = desk.waste(session_id, witness="physician", amount_mg="10")
    view = desk.ok(accepted)
    answers.append(accepted.text)
    assert view["lines"][-1]["kind"] == "waste"
    assert view["lines"][-1]["witness_username"] == "physician"
    answers.append(desk.get(f"/sessions/{session_id}").text)
    answers.append(desk.get("/lines").text)

    with database.transaction() as session:
        stored = [
            str(row)
            for table in ("audit_log", "ledger_lines", "login_attempts")
            for row in session.execute(text(f"SELECT * FROM {table}")).all()
        ]
        witnessed = session.execute(
            text("SELECT username FROM audit_log WHERE action = 'ledger.witness'")
        ).all()
    assert [row[0] for row in witnessed] == ["physician"]
    for secret in (TEST_PASSWORD, wrong_password):
        assert not any(secret in answer for answer in answers)
        assert not any(secret in row for row in stored)
        assert secret not in caplog.text


def test_a_waste_waits_for_the_infusion_to_stop(
    desk: LedgerDesk, database: Database, users: dict[str, Actor]
) -> None:
    session_id = scheduled_session(database, users, chair="Chair 5")
    desk.ok(desk.dispense(session_id))  # before check-in: a strength the library stocks
    refused = desk.waste(session_id, amount_mg="10")
    assert refused.status_code == 422 and refused.json()["field"] == "session_id"
    assert "scheduled" in refused.json()["detail"]


# --- counts, losses, corrections ----------------------------------------------------------


def test_a_wrong_count_opens_a_discrepancy_that_a_pharmacist_resolves_as_a_loss(
    desk: LedgerDesk,
) -> None:
    count = {
        "product_id": desk.product_id,
        "location_id": desk.location_id,
        "lot": desk.lot,
        "full_containers": 9,
        "open_ml": "5",
        "witness_username": "nurse",
        "witness_password": "wrong password",
    }
    refused = desk.post("/counts", count)
    assert refused.status_code == 422 and refused.json()["field"] == "witness_password"
    line = desk.ok(desk.post("/counts", {**count, "witness_password": TEST_PASSWORD}))
    assert line["kind"] == "count" and line["witness_username"] == "nurse"
    assert line["amount_mg"] == 4750.0
    assert line["detail"]["difference_ug"] == -250_000
    [found] = desk.ok(desk.get("/discrepancies", "physician"), 200)
    assert found["source"] == "count" and found["seq"] == line["seq"]
    assert found["difference_mg"] == -250.0
    assert found["finding"]["code"] == "ledger:count-discrepancy"
    loss = {"outcome": "loss", "reason": "Vial broken in the safe, not recorded"}
    path = f"/counts/{line['seq']}/resolution"
    assert desk.post(path, loss, "nurse").status_code == 403
    resolved = desk.ok(desk.post(path, loss))
    assert resolved["kind"] == "loss" and resolved["resolves_seq"] == line["seq"]
    assert resolved["stock_change_mg"] == -250.0
    assert desk.balance_mg() == 4750.0
    assert desk.ok(desk.get("/discrepancies"), 200) == []
    again = desk.post(path, loss)
    assert again.status_code == 422 and again.json()["field"] == "count_seq"
    missing = desk.post("/counts/9999/resolution", loss)
    assert missing.status_code == 404 and missing.json()["field"] == "count_seq"


def test_a_loss_answers_what_must_be_reported_and_a_correction_is_a_new_line(
    desk: LedgerDesk,
) -> None:
    loss = {
        "kind": "theft",
        "product_id": desk.product_id,
        "location_id": desk.location_id,
        "lot": desk.lot,
        "volume_ml": "10",
        "reason": "Vial missing after the weekend; police informed",
    }
    recorded = desk.ok(desk.post("/losses", loss))
    assert recorded["line"]["kind"] == "theft" and recorded["line"]["stock_change_mg"] == -500.0
    assert recorded["finding"]["code"] == "ledger:loss-or-theft"
    assert recorded["finding"]["citations"]
    too_much = desk.post("/losses", {**loss, "volume_ml": "1000"})
    assert too_much.status_code == 422 and too_much.json()["field"] == "volume_ml"

    corrected = desk.ok(
        desk.post("/lines/1/corrections", {"containers": 8, "reason": "Two on back order"})
    )
    assert corrected["kind"] == "correction" and corrected["corrects_seq"] == 1
    assert corrected["stock_change_mg"] == -1000.0
    assert desk.balance_mg() == 5000.0 - 500.0 - 1000.0
    desk.ok(desk.post("/losses", {**loss, "kind": "loss", "volume_ml": "1"}))
    # 1 vial received instead of 10 would take 3500 mg from the 3450 mg the ledger holds
    below_zero = desk.post("/lines/1/corrections", {"containers": 1, "reason": "One vial only"})
    assert below_zero.status_code == 422, below_zero.text
    assert below_zero.json()["field"] == "containers"
    assert desk.balance_mg() == 3450.0
    wrong_unit = desk.post("/lines/1/corrections", {"volume_ml": "3", "reason": "wrong unit"})
    assert wrong_unit.status_code == 422 and wrong_unit.json()["field"] == "containers"
    assert (
        desk.post("/lines/99/corrections", {"containers": 1, "reason": "none"}).status_code == 404
    )
    receipts = desk.ok(desk.get("/lines", product_id=desk.product_id, limit=2), 200)
    assert [x["kind"] for x in receipts] == ["loss", "correction"]


# --- append-only, the chain -----------------------------------------------------------------


def test_ledger_lines_refuse_sql_updates_and_a_change_behind_the_back_is_named_by_verify(
    desk: LedgerDesk, database: Database
) -> None:
    assert desk.ok(desk.get("/verify"), 200)["intact"]
    for statement in (
        "UPDATE ledger_lines SET amount_ug = 1 WHERE seq = 1",
        "DELETE FROM ledger_lines WHERE seq = 1",
    ):
        with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
            session.execute(text(statement))
    desk.ok(desk.receive(3, lot="SECOND"))
    desk.ok(desk.receive(2, lot="THIRD"))
    with as_superuser(database) as connection:
        connection.execute(text("UPDATE ledger_lines SET amount_ug = 1 WHERE seq = 2"))
    report = desk.ok(desk.get("/verify", "admin"), 200)
    assert report["intact"] is False
    assert report["broken_seq"] == 2 and report["problem"] == "hash mismatch"
    assert "ledger line 2" in report["message"]
    assert report["lines_checked"] >= 1
    assert desk.get("/verify", "nurse").status_code == 403


# --- who may do what ------------------------------------------------------------------------

READ = {"physician", "nurse", "pharmacist"}
MANAGE = {"pharmacist"}
DISPENSE = {"nurse", "pharmacist"}
VERIFY = {"pharmacist", "admin"}
WITNESS = {"witness_username": "physician", "witness_password": TEST_PASSWORD}
STOCK = {"product_id": 1, "location_id": 1, "lot": "L1"}
ROLE_RULES: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/stock", None, READ),
    ("GET", "/lines?limit=5", None, READ),
    ("GET", "/sessions/1", None, READ),
    ("GET", "/discrepancies", None, READ),
    ("GET", "/verify", None, VERIFY),
    (
        "POST",
        "/products",
        {"name": "P", "strength_mg_per_ml": 50, "container_ml": 10, "manufacturer": "M"},
        MANAGE,
    ),
    ("POST", "/locations", {"name": "Safe"}, MANAGE),
    (
        "POST",
        "/receipts",
        {
            **STOCK,
            "expiry": "2099-01-01",
            "containers": 1,
            "received_on": "2020-01-01",
            "supplier_name": "S",
            "supplier_address": "1 Road",
            "invoice_number": "I1",
        },
        MANAGE,
    ),
    (
        "POST",
        "/dispensings",
        {**STOCK, "session_id": 1, "volume_ml": 4, "final_volume_ml": 200},
        DISPENSE,
    ),
    ("POST", "/wastes", {"session_id": 1, "amount_mg": 1, **WITNESS}, DISPENSE),
    ("POST", "/sessions/1/resolution", {"reason": "overfill"}, MANAGE),
    ("POST", "/counts", {**STOCK, "full_containers": 1, **WITNESS}, MANAGE),
    ("POST", "/counts/1/resolution", {"outcome": "loss", "reason": "broken"}, MANAGE),
    ("POST", "/losses", {**STOCK, "kind": "loss", "volume_ml": 1, "reason": "broken"}, MANAGE),
    ("POST", "/lines/1/corrections", {"containers": 2, "reason": "miscounted"}, MANAGE),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    ROLE_RULES,
    ids=[f"{method} {path}" for method, path, _, _ in ROLE_RULES],
)
def test_who_may_use_each_ledger_operation(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: set[str],
) -> None:
    assert "researcher" not in allowed
    for role, sent in headers.items():
        response = client.request(method, f"{API}/ledger{path}", json=body, headers=sent)
        if role in allowed:
            # allowed: the answer is about the (empty) ledger, never the role
            assert response.status_code in (200, 201, 404, 422), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["field"] is None
    anonymous = client.request(method, f"{API}/ledger{path}", json=body)
    assert anonymous.status_code == 401


def test_a_refused_role_is_audited_as_denied(
    client: TestClient, headers: dict[str, dict[str, str]], database: Database
) -> None:
    assert client.get(f"{API}/ledger/stock", headers=headers["researcher"]).status_code == 403
    with database.transaction() as session:
        rows = session.execute(
            text("SELECT action, outcome FROM audit_log WHERE username = 'researcher'")
        ).all()
    assert ("ledger.read", "denied") in [tuple(row) for row in rows]


# --- bad input ------------------------------------------------------------------------------


BAD_RECEIPTS: list[tuple[dict[str, Any], str]] = [
    ({"containers": -1}, "containers"),
    ({"containers": 0}, "containers"),
    ({"containers": 10**30}, "containers"),
    ({"containers": "ten"}, "containers"),
    ({"containers": 2.5}, "containers"),
    ({"product_id": 2**40}, "product_id"),
    ({"product_id": "abc"}, "product_id"),
    ({"lot": "<script>"}, "lot"),
    ({"lot": "A" * 41}, "lot"),
    ({"lot": ""}, "lot"),
    ({"expiry": "tomorrow"}, "expiry"),
    ({"supplier_name": ""}, "supplier_name"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD_RECEIPTS, ids=[f for _, f in BAD_RECEIPTS])
def test_a_bad_receipt_is_422_naming_the_field(
    desk: LedgerDesk, change: dict[str, Any], field: str
) -> None:
    response = desk.post("/receipts", desk.receipt(2, **change))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.text
    assert response.json()["detail"].startswith(field)


def test_nan_huge_and_negative_numbers_and_unknown_fields_are_422_naming_the_field(
    desk: LedgerDesk,
) -> None:
    product = {"name": "P2", "strength_mg_per_ml": "50", "container_ml": "10", "manufacturer": "M"}
    for change, field in (
        ({"strength_mg_per_ml": "NaN"}, "strength_mg_per_ml"),
        ({"strength_mg_per_ml": "Infinity"}, "strength_mg_per_ml"),
        ({"strength_mg_per_ml": "-5"}, "strength_mg_per_ml"),
        ({"strength_mg_per_ml": "1e308"}, "strength_mg_per_ml"),
        ({"container_ml": "0.001"}, "container_ml"),
        ({"form": "tablet"}, "form"),
        ({"id": 7}, "id"),
    ):
        response = desk.post("/products", {**product, **change})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field, response.text
    # a JSON NaN (not valid JSON, but Python's encoder writes it)
    raw = desk.client.post(
        f"{API}/ledger/products",
        content=b'{"name": "P3", "strength_mg_per_ml": NaN, "container_ml": 10, '
        b'"manufacturer": "M"}',
        headers={**desk.headers["pharmacist"], "Content-Type": "application/json"},
    )
    assert raw.status_code == 422 and raw.json()["field"] == "strength_mg_per_ml", raw.text
    for path, body, field in (
        ("/dispensings", {**desk.dispensing(1), "volume_ml": "-4"}, "volume_ml"),
        ("/dispensings", {**desk.dispensing(1), "final_volume_ml": "1e9"}, "final_volume_ml"),
        ("/dispensings", {**desk.dispensing(1), "session_id": 0}, "session_id"),
        ("/dispensings", {**desk.dispensing(1), "container": "bucket"}, "container"),
        ("/wastes", {"session_id": 1, "amount_mg": "NaN", **WITNESS}, "amount_mg"),
        ("/wastes", {"session_id": 1, "volume_ml": 1, "extra": 1, **WITNESS}, "extra"),
        (
            "/wastes",
            {"session_id": 1, "amount_mg": 1, **WITNESS, "witness_password": "x" * 2000},
            "witness_password",
        ),
        ("/wastes", {"session_id": 1, **WITNESS}, "volume_ml"),  # neither volume nor amount
        ("/wastes", {"session_id": 1, "amount_mg": 1, "volume_ml": 1, **WITNESS}, "volume_ml"),
        ("/counts", {**STOCK, "full_containers": -1, **WITNESS}, "full_containers"),
        ("/losses", {**STOCK, "kind": "misplaced", "volume_ml": 1, "reason": "x"}, "kind"),
        ("/lines/1/corrections", {"containers": 2, "reason": "ok"}, "reason"),
        ("/counts/1/resolution", {"outcome": "magic", "reason": "because"}, "outcome"),
    ):
        response = desk.post(path, body)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == field, (path, response.text)
        assert "x" * 1025 not in response.text


def test_bad_query_and_path_values_are_422_naming_the_parameter(desk: LedgerDesk) -> None:
    for path, field in (
        ("/lines?limit=0", "limit"),
        ("/lines?limit=100000", "limit"),
        ("/lines?product_id=-1", "product_id"),
        ("/lines?session_id=99999999999999", "session_id"),
        ("/lines?session_id=x", "session_id"),
        ("/sessions/0", "session_id"),
        ("/sessions/99999999999999", "session_id"),
    ):
        response = desk.get(path)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == field, (path, response.text)
    response = desk.post("/counts/99999999999999/resolution", {"outcome": "loss", "reason": "abc"})
    assert response.status_code == 422 and response.json()["field"] == "seq"
    assert desk.get("/sessions/999").status_code == 404


def test_an_expired_lot_is_neither_received_nor_dispensed(
    desk: LedgerDesk,
    client: TestClient,
    settings: Settings,
    database: Database,
    users: dict[str, Actor],
) -> None:
    today = clinic_clock(settings).today()
    expired = desk.receive(2, lot="OLD-1", expiry=(today - timedelta(days=1)).isoformat())
    assert expired.status_code == 422 and expired.json()["field"] == "expiry"
    future = desk.receive(2, lot="NEW-1", received_on=(today + timedelta(days=1)).isoformat())
    assert future.status_code == 422 and future.json()["field"] == "received_on"
    # A lot received on its expiry date where the clinic's day is earliest (UTC-12) has
    # expired where it is latest (UTC+14): the same instant, a day or two further on.
    west = settings.model_copy(update={"timezone": "Etc/GMT+12"})
    east = settings.model_copy(update={"timezone": "Pacific/Kiritimati"})
    session_id = scheduled_session(database, users, chair="Chair 6")
    client.app.state.settings = west  # type: ignore[attr-defined]
    last_day = clinic_clock(west).today().isoformat()
    desk.ok(desk.receive(2, lot="LAST-DAY", expiry=last_day, received_on=last_day))
    client.app.state.settings = east  # type: ignore[attr-defined]
    desk.lot = "LAST-DAY"
    refused = desk.dispense(session_id)
    assert refused.status_code == 422 and refused.json()["field"] == "lot", refused.text
    assert "expired" in refused.json()["detail"]
    [line] = [x for x in desk.ok(desk.get("/stock"), 200)["lines"] if x["lot"] == "LAST-DAY"]
    assert line["expiry_status"] == "expired"
    assert "ledger:expired-stock" in [f["code"] for f in line["findings"]]
