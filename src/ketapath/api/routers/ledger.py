"""The controlled-drug ledger (issue 11): stock, receipts, dispensing for a session, witnessed
waste, the session's reconciliation, counts, losses, corrections, discrepancies and the hash
chain's check.

Every operation is one service call of ``ketapath.services.ledger``, which checks the role
and writes the audit row: pharmacists manage stock, counts, discrepancies and corrections;
nurses and pharmacists dispense and waste; physicians, nurses and pharmacists read; a
pharmacist or an administrator verifies the chain; researchers see nothing of it. A witness's
password is read from the body, checked, and never answered, logged or audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from ketapath.api.deps import CurrentUser, DatabaseDep, SettingsDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.session_view import FindingData
from ketapath.services import ledger
from ketapath.services.ledger import (
    CorrectionInput,
    CountInput,
    CountResolutionInput,
    DiscrepancyView,
    DispenseInput,
    LineView,
    LocationInput,
    LocationView,
    LossInput,
    ProductInput,
    ProductView,
    ReceiptInput,
    SessionLedgerView,
    SessionResolutionInput,
    StockView,
    VerifyView,
    WasteInput,
)

router = APIRouter(prefix="/ledger", tags=["controlled-drug ledger"], responses=SIGNED_IN)

MAX_LINES = 1000


class LossRecorded(BaseModel):
    """A loss or theft as written in the ledger, and what it asks of the registrant."""

    line: LineView
    finding: FindingData = Field(description="The report the rule asks for (ledger:loss-or-theft).")


@router.get(
    "/stock",
    response_model=StockView,
    summary="Every lot in every location: balance, expiry, count due",
    description=(
        "The balance of each lot in each storage location (mg, mL, full and opened "
        "containers), its expiry status (expired or near expiry, by the clinic's days), when "
        "it was last counted and whether a count is due, with the products and locations the "
        "ledger knows. Physicians, nurses and pharmacists."
    ),
    responses=responses(422),
)
def stock(actor: CurrentUser, db: DatabaseDep, clock: ClockDep) -> StockView:
    return ledger.stock(db, actor, clock=clock)


@router.get(
    "/lines",
    response_model=list[LineView],
    summary="Ledger lines, newest first: all, a product's or a session's",
    description=(
        "The lines as written (receipts, dispensings, administrations, wastes, counts, "
        "losses, thefts, resolutions, corrections), each with who wrote it, its witness and "
        "its hash. At most `limit` lines. Physicians, nurses and pharmacists."
    ),
    responses=responses(422),
)
def lines(
    actor: CurrentUser,
    db: DatabaseDep,
    product_id: Annotated[RecordId | None, Query(description="One product only.")] = None,
    session_id: Annotated[RecordId | None, Query(description="One session only.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LINES, description="At most this many lines.")] = 200,
) -> list[LineView]:
    return ledger.lines(db, actor, product_id=product_id, session_id=session_id, limit=limit)


@router.post(
    "/products",
    response_model=ProductView,
    status_code=status.HTTP_201_CREATED,
    summary="Add a product the clinic stocks (strength per mL, container volume, maker)",
    description="A pharmacist adds a product; a product is never changed (a new one is added).",
    responses=responses(400, 422),
)
def add_product(body: ProductInput, actor: CurrentUser, db: DatabaseDep) -> ProductView:
    return ledger.add_product(db, actor, body)


@router.post(
    "/locations",
    response_model=LocationView,
    status_code=status.HTTP_201_CREATED,
    summary="Add a storage location (a safe, a cabinet)",
    description="A pharmacist adds a place where controlled drugs are kept, by a unique name.",
    responses=responses(400, 422),
)
def add_location(body: LocationInput, actor: CurrentUser, db: DatabaseDep) -> LocationView:
    return ledger.add_location(db, actor, body)


@router.post(
    "/receipts",
    response_model=LineView,
    status_code=status.HTTP_201_CREATED,
    summary="Receive stock: a lot, its expiry, the containers, the supplier and invoice",
    description=(
        "A pharmacist records stock received into a location; the lot's balance grows by "
        "containers x container volume x strength. An expired lot, a date after today or a "
        "lot received before with another expiry is refused (422)."
    ),
    responses=responses(400, 404, 422),
)
def receive(body: ReceiptInput, actor: CurrentUser, db: DatabaseDep, clock: ClockDep) -> LineView:
    return ledger.receive(db, actor, body, clock=clock)


@router.post(
    "/dispensings",
    response_model=SessionLedgerView,
    status_code=status.HTTP_201_CREATED,
    summary="Dispense from a lot for a session, and the bag or syringe made from it",
    description=(
        "A nurse or pharmacist takes a volume of a product from a lot for a session before "
        "or during its infusion, and says the bag or syringe it went into. Refused (422) for "
        "an expired lot, more than the ledger holds, or a bag whose strength is not the "
        "session's pump programme (or one the drug library stocks). Answers the session's "
        "ledger and reconciliation."
    ),
    responses=responses(400, 404, 422),
)
def dispense(
    body: DispenseInput, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> SessionLedgerView:
    return ledger.dispense(db, actor, body, clock=clock)


@router.post(
    "/wastes",
    response_model=SessionLedgerView,
    status_code=status.HTTP_201_CREATED,
    summary="Waste what was left of a session's bag, confirmed by a witness",
    description=(
        "A nurse or pharmacist records the remainder wasted (mL or mg, one of the two) once "
        "the infusion has stopped; the chart's delivered dose is recorded beside it as the "
        "amount administered (never typed). A second, different person of the clinical team "
        "confirms it with their own user name and password in the body; the same user, a "
        "wrong password or a researcher or administrator as witness is refused (422) and "
        "nothing is written. A wrong password counts towards the witness's lock-out. The "
        "password is never answered, logged or audited."
    ),
    responses=responses(400, 404, 422),
)
def waste(
    body: WasteInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SessionLedgerView:
    return ledger.waste(db, actor, body, clock=clock, settings=settings)


@router.get(
    "/sessions/{session_id}",
    response_model=SessionLedgerView,
    summary="A session's ledger lines and its reconciliation",
    description=(
        "What was dispensed, administered (the chart's delivered dose) and wasted for a "
        "session, and whether dispensed = administered + wasted to the clinic's tolerance. "
        "Physicians, nurses and pharmacists."
    ),
    responses=responses(404, 422),
)
def session_ledger(
    session_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> SessionLedgerView:
    return ledger.session_ledger(db, actor, session_id, clock=clock)


@router.post(
    "/sessions/{session_id}/resolution",
    response_model=SessionLedgerView,
    status_code=status.HTTP_201_CREATED,
    summary="Resolve a session's discrepancy with a reason (pharmacist)",
    description=(
        "A pharmacist closes a session that does not reconcile, as it stands now, with the "
        "reason; refused (422) when the session has no open discrepancy."
    ),
    responses=responses(400, 404, 422),
)
def resolve_session(
    session_id: RecordId,
    body: SessionResolutionInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> SessionLedgerView:
    return ledger.resolve_session(db, actor, session_id, body, clock=clock)


@router.post(
    "/counts",
    response_model=LineView,
    status_code=status.HTTP_201_CREATED,
    summary="Count a lot in a location, by two people",
    description=(
        "A pharmacist records the full and opened containers of a lot counted in a location, "
        "with a second person of the clinical team who confirms it with their own user name "
        "and password in the body (never answered, logged or audited). A count that differs "
        "from the balance opens a discrepancy (`detail.difference_ug`)."
    ),
    responses=responses(400, 404, 422),
)
def count(
    body: CountInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> LineView:
    return ledger.count(db, actor, body, clock=clock, settings=settings)


@router.post(
    "/counts/{seq}/resolution",
    response_model=LineView,
    status_code=status.HTTP_201_CREATED,
    summary="Resolve a count's discrepancy: loss, theft, recording error or count error",
    description=(
        "A pharmacist closes the discrepancy a count opened: a loss, a theft or a recording "
        "error moves the balance to what was counted; a count error moves nothing (count "
        "again). `seq` is the count's ledger line."
    ),
    responses=responses(400, 404, 422),
)
def resolve_count(
    seq: RecordId,
    body: CountResolutionInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> LineView:
    return ledger.resolve_count(db, actor, seq, body, clock=clock)


@router.post(
    "/losses",
    response_model=LossRecorded,
    status_code=status.HTTP_201_CREATED,
    summary="Record a loss or theft found outside a count, and what must be reported",
    description=(
        "A pharmacist records a volume of a lot lost (a broken vial) or stolen, with the "
        "reason; the answer holds the line and the finding saying how a theft or significant "
        "loss is reported, with its source."
    ),
    responses=responses(400, 404, 422),
)
def record_loss(
    body: LossInput, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> LossRecorded:
    line = ledger.record_loss(db, actor, body, clock=clock)
    return LossRecorded(line=line, finding=ledger.loss_finding(line))


@router.post(
    "/lines/{seq}/corrections",
    response_model=LineView,
    status_code=status.HTTP_201_CREATED,
    summary="Correct a line's amount: a new line that references it, with the reason",
    description=(
        "A pharmacist corrects a receipt (containers), a dispensing, loss or theft (mL), or a "
        "waste (mL or mg); the stock moves by the difference and the line corrected stays as "
        "it was written. Administrations are corrected in the session's chart, counts by "
        "counting again."
    ),
    responses=responses(400, 404, 422),
)
def correct(
    seq: RecordId,
    body: CorrectionInput,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> LineView:
    return ledger.correct(db, actor, seq, body, clock=clock)


@router.get(
    "/discrepancies",
    response_model=list[DiscrepancyView],
    summary="Open discrepancies: sessions that do not reconcile, counts not yet resolved",
    description="Physicians, nurses and pharmacists read them; a pharmacist resolves them.",
    responses=responses(422),
)
def discrepancies(actor: CurrentUser, db: DatabaseDep, clock: ClockDep) -> list[DiscrepancyView]:
    return ledger.discrepancies(db, actor, clock=clock)


@router.get(
    "/verify",
    response_model=VerifyView,
    summary="Walk the ledger's hash chain and name the first line changed or removed",
    description=(
        "As `ketapath ledger verify`: every line's hash is recomputed and checked against the "
        "next; the first line changed, removed or unreadable behind the application's back "
        "is named. Pharmacists and administrators."
    ),
    responses=responses(422),
)
def verify(actor: CurrentUser, db: DatabaseDep) -> VerifyView:
    return ledger.verify(db, actor)
