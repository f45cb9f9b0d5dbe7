"""The controlled-drug ledger (issue 11): stock, dispensing per session, witnessed waste,
reconciliation, counts, discrepancies, losses, corrections.

One function per user action, each in one transaction with its permission check and audit row
(``services.unit.action``); every line goes through ``ledger_chain.append`` and so joins the
hash chain. Nothing is updated or deleted: a correction is a new line that references the
line it corrects, a resolution a new line that references the discrepancy it closes.

Rules the services hold (the arithmetic is in ``ketapath.domain.ledger``):

- what was administered is the session chart's delivered dose at the time (never typed);
- a waste and a count are confirmed by a second, different person with their own user name
  and password at the time (``confirm_witness``; a failed password counts towards that
  account's lock-out like a sign-in);
- a lot past its expiry, or more than the ledger holds, is never dispensed;
- a bag's final concentration is one the active drug library stocks, and the session's own
  once its pump programme is set (check-in);
- a session whose dispensed amount is not its administered plus wasted amount (to the
  clinic's tolerance, ``ledger_rules.yaml``) is a discrepancy until a pharmacist resolves it
  with a reason; so is a count that differs from the balance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ketapath.config import Settings, get_settings
from ketapath.domain import ledger as arithmetic
from ketapath.domain.findings import Finding, finding
from ketapath.domain.ledger import LINE_LABELS, Line, LineKind, Reconciliation
from ketapath.domain.session_view import FindingData
from ketapath.knowledge.ledger import LedgerRules, ledger_rules
from ketapath.services import audit, ledger_chain
from ketapath.services.auth import authenticate
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import AuthenticationFailed, InvalidInput, NotFound
from ketapath.services.library import active_library
from ketapath.services.permissions import CLINICAL_READERS, Actor
from ketapath.services.unit import action, check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.store.models import (
    InfusionSession,
    LedgerLine,
    PatientVersion,
    SessionEvent,
    StockLocation,
    StockProduct,
)

# Who may witness a waste or a count: a member of the clinical team (not the person acting).
WITNESS_ROLES = CLINICAL_READERS
LOT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ./_-]*$"
MAX_CONTAINERS = 10_000
MAX_VOLUME_ML = Decimal(1000)
# Dates a receipt may carry: a slip of the year is refused, not stored (bounded input).
MAX_BACKDATE_DAYS = 5 * 365
MAX_SHELF_LIFE_DAYS = 10 * 365
# Words the clinic may type; bounded like every other text field.
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=REASON_LENGTH)
]
Lot = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=LOT_PATTERN),
]
RecordId = Annotated[int, Field(ge=1, le=2**31 - 1)]
Millilitres = Annotated[
    Decimal, Field(ge=0, le=MAX_VOLUME_ML, decimal_places=2, allow_inf_nan=False)
]
Milligrams = Annotated[Decimal, Field(ge=0, le=100_000, decimal_places=3, allow_inf_nan=False)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- inputs ----------------------------------------------------------------------------


class ProductInput(_Input):
    """A controlled-drug product the clinic stocks."""

    name: Text200 = Field(description="As on the pack, e.g. 'Ketamine 50 mg/mL, 10 mL vial'.")
    strength_mg_per_ml: Annotated[
        Decimal, Field(gt=0, le=500, decimal_places=3, allow_inf_nan=False)
    ]
    container_ml: Annotated[Decimal, Field(gt=0, le=250, decimal_places=2, allow_inf_nan=False)]
    form: Literal["vial", "ampoule", "prefilled syringe"] = "vial"
    manufacturer: Text200
    product_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = Field(
        default="", description="NDC or other national product code, if any."
    )


class LocationInput(_Input):
    name: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][^<>]*$"
        ),
    ]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class ReceiptInput(_Input):
    """Stock received: what, how many containers, from whom, on which invoice."""

    product_id: RecordId
    location_id: RecordId
    lot: Lot
    expiry: date
    containers: Annotated[int, Field(ge=1, le=MAX_CONTAINERS)]
    received_on: date
    supplier_name: Text200
    supplier_address: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)
    ]
    supplier_registration: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=40)
    ] = Field(default="", description="The supplier's DEA registration number (US).")
    invoice_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)
    ] = Field(description="Invoice, delivery note or order form number.")


class DispenseInput(_Input):
    """Drug taken from a lot for one session, and the bag or syringe made from it."""

    session_id: RecordId
    product_id: RecordId
    location_id: RecordId
    lot: Lot
    volume_ml: Annotated[Millilitres, Field(gt=0)] = Field(
        description="Volume of the stock product drawn up (mL)."
    )
    container: Literal["bag", "syringe"] = "bag"
    diluent: Literal["sodium chloride 0.9%", "glucose 5%", "none"] = "sodium chloride 0.9%"
    final_volume_ml: Annotated[Millilitres, Field(gt=0)] = Field(
        description="Volume of the bag or syringe made (mL)."
    )


class Witness(_Input):
    """A second person who confirms, with their own credentials, at the time."""

    witness_username: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
    ]
    witness_password: SecretStr = Field(min_length=1, max_length=1024)


class WasteInput(Witness):
    """What was left of a session's bag(s) and wasted, measured by volume (or mg)."""

    session_id: RecordId
    volume_ml: Millilitres | None = Field(
        default=None, description="Volume left in the bag and wasted (mL)."
    )
    amount_mg: Milligrams | None = Field(
        default=None, description="Or the amount wasted (mg); give one of the two."
    )
    manner: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)
    ] = "Rendered unrecoverable in the controlled-drug waste container"


class CountInput(Witness):
    """A count of one lot in one location, by two people."""

    product_id: RecordId
    location_id: RecordId
    lot: Lot
    full_containers: Annotated[int, Field(ge=0, le=MAX_CONTAINERS * 10)]
    open_ml: Millilitres = Field(
        default=Decimal(0), description="Volume left in an opened container (mL)."
    )


class LossInput(_Input):
    kind: Literal["loss", "theft"]
    product_id: RecordId
    location_id: RecordId
    lot: Lot
    volume_ml: Annotated[Millilitres, Field(gt=0)]
    reason: Reason


CountOutcome = Literal["loss", "theft", "recording error", "count error"]


class CountResolutionInput(_Input):
    """How a count's discrepancy is closed: the stock was lost or stolen, or the ledger was
    wrong (the balance is moved to what was counted), or the count was wrong (nothing moves;
    count again)."""

    outcome: CountOutcome
    reason: Reason


class SessionResolutionInput(_Input):
    reason: Reason


class CorrectionInput(_Input):
    """A corrected amount for a receipt (containers), a dispensing, loss or theft (mL), or a
    waste (mL or mg), with the reason."""

    containers: Annotated[int, Field(ge=1, le=MAX_CONTAINERS)] | None = None
    volume_ml: Millilitres | None = None
    amount_mg: Milligrams | None = None
    reason: Reason


# --- views -------------------------------------------------------------------------------

DetailValue = str | int | None


class ProductView(BaseModel):
    id: int
    drug: str
    name: str
    strength_mg_per_ml: float
    container_ml: float
    form: str
    manufacturer: str
    product_code: str


class LocationView(BaseModel):
    id: int
    name: str
    description: str


class LineView(BaseModel):
    """One ledger line as stored, in words and numbers (mg to 0.001)."""

    seq: int
    at: datetime
    kind: LineKind
    label: str
    product_id: int
    product_name: str
    lot: str
    expiry: date | None
    location_id: int | None
    location_name: str | None
    stock_change_mg: float
    amount_mg: float
    containers: int | None
    session_id: int | None
    patient_id: int | None
    username: str
    role: str
    witness_username: str | None
    corrects_seq: int | None
    resolves_seq: int | None
    reason: str | None
    detail: dict[str, DetailValue]
    row_hash: str


class StockLineView(BaseModel):
    """The balance of one lot in one location."""

    product: ProductView
    lot: str
    expiry: date | None
    expiry_status: arithmetic.ExpiryStatus
    location: LocationView
    balance_mg: float
    balance_ml: float
    full_containers: int
    open_ml: float
    last_counted_on: date | None
    count_due: bool
    findings: list[FindingData]


class StockView(BaseModel):
    today: date
    lines: list[StockLineView]
    products: list[ProductView]
    locations: list[LocationView]
    count_interval_days: int
    near_expiry_days: int


class ReconciliationView(BaseModel):
    """Dispensed = administered + wasted, to the tolerance, for one session."""

    status: arithmetic.Status
    reconciled: bool
    message: str
    dispensed_mg: float
    administered_mg: float
    administered_exact_mg: str = Field(description="The chart's delivered dose to 1e-9 mg.")
    wasted_mg: float
    difference_mg: float = Field(description="Dispensed - administered - wasted.")
    tolerance_mg: float
    recorded_administered_mg: float | None
    chart_changed: bool
    resolved_by: str | None
    resolution_reason: str | None
    bag_concentration_mg_per_ml: float | None
    left_in_bag_ml: float | None = Field(
        description="What the chart leaves in the bag(s), mL: dispensed - administered."
    )


class SessionLedgerView(BaseModel):
    session_id: int
    patient_id: int
    patient_name: str
    session_state: str
    lines: list[LineView]
    reconciliation: ReconciliationView
    findings: list[FindingData]


class DiscrepancyView(BaseModel):
    """A discrepancy a pharmacist must resolve: a session's or a count's."""

    source: Literal["session", "count"]
    seq: int | None = Field(description="The count line, for a count's discrepancy.")
    session_id: int | None
    patient_name: str | None
    product_name: str
    lot: str
    location_name: str | None
    difference_mg: float
    opened_at: datetime | None
    finding: FindingData


class VerifyView(BaseModel):
    intact: bool
    lines_checked: int
    head_seq: int | None
    head_hash: str | None
    problem: str | None
    message: str | None
    broken_seq: int | None


# --- reading helpers ---------------------------------------------------------------------


def rules() -> LedgerRules:
    return ledger_rules()


def _finding(code: str, message: str, source_name: str, **kwargs: Any) -> Finding:
    return finding(code, message, source=getattr(rules(), source_name), **kwargs)


def _product(session: Session, product_id: int) -> StockProduct:
    row = session.get(StockProduct, product_id)
    if row is None:
        raise NotFound(f"There is no product {product_id} in the ledger.", field="product_id")
    return row


def _location(session: Session, location_id: int) -> StockLocation:
    row = session.get(StockLocation, location_id)
    if row is None:
        raise NotFound(f"There is no storage location {location_id}.", field="location_id")
    return row


def _infusion(session: Session, session_id: int) -> InfusionSession:
    row = session.get(InfusionSession, session_id)
    if row is None:
        raise NotFound(f"There is no session {session_id}.", field="session_id")
    return row


def product_view(row: StockProduct) -> ProductView:
    return ProductView(
        id=row.id,
        drug=row.drug,
        name=row.name,
        strength_mg_per_ml=row.strength_ug_per_ml / 1000,
        container_ml=row.container_ul / 1000,
        form=row.form,
        manufacturer=row.manufacturer,
        product_code=row.product_code,
    )


def location_view(row: StockLocation) -> LocationView:
    return LocationView(id=row.id, name=row.name, description=row.description)


def _as_line(row: LedgerLine) -> Line:
    return Line(
        seq=row.seq,
        at=row.at,
        kind=row.kind,  # type: ignore[arg-type]  # written from LineKind only
        product_id=row.product_id,
        lot=row.lot,
        location_id=row.location_id,
        stock_change_ug=row.stock_change_ug,
        amount_ug=row.amount_ug,
        expiry=row.expiry,
        containers=row.containers,
        session_id=row.session_id,
        patient_id=row.patient_id,
        username=row.username,
        witness_username=row.witness_username,
        corrects_seq=row.corrects_seq,
        resolves_seq=row.resolves_seq,
        reason=row.reason,
        detail=row.detail or {},
    )


def _mg(ug: int) -> float:
    return float(arithmetic.mg_text(ug))


def line_view(
    row: LedgerLine, products: dict[int, StockProduct], locations: dict[int, StockLocation]
) -> LineView:
    product = products[row.product_id]
    location = locations.get(row.location_id) if row.location_id is not None else None
    return LineView(
        seq=row.seq,
        at=row.at,
        kind=row.kind,
        label=LINE_LABELS.get(row.kind, row.kind),
        product_id=row.product_id,
        product_name=product.name,
        lot=row.lot,
        expiry=row.expiry,
        location_id=row.location_id,
        location_name=location.name if location is not None else None,
        stock_change_mg=_mg(row.stock_change_ug),
        amount_mg=_mg(row.amount_ug),
        containers=row.containers,
        session_id=row.session_id,
        patient_id=row.patient_id,
        username=row.username,
        role=row.role,
        witness_username=row.witness_username,
        corrects_seq=row.corrects_seq,
        resolves_seq=row.resolves_seq,
        reason=row.reason,
        detail={k: v for k, v in (row.detail or {}).items() if isinstance(v, str | int | None)},
        row_hash=row.row_hash,
    )


def _catalogue(session: Session) -> tuple[dict[int, StockProduct], dict[int, StockLocation]]:
    products = {p.id: p for p in session.scalars(select(StockProduct))}
    locations = {x.id: x for x in session.scalars(select(StockLocation))}
    return products, locations


def _all_lines(session: Session) -> list[LedgerLine]:
    return list(session.scalars(select(LedgerLine).order_by(LedgerLine.seq)))


def _stock_lines(session: Session, product_id: int, lot: str, location_id: int) -> list[Line]:
    rows = session.scalars(
        select(LedgerLine)
        .where(
            LedgerLine.product_id == product_id,
            LedgerLine.lot == lot,
            LedgerLine.location_id == location_id,
        )
        .order_by(LedgerLine.seq)
    )
    return [_as_line(row) for row in rows]


def _balance(
    session: Session, product_id: int, lot: str, location_id: int
) -> tuple[int, date | None]:
    """The balance (ug) of a lot in a location, and the lot's expiry as received."""
    lines = _stock_lines(session, product_id, lot, location_id)
    expiry = next((x.expiry for x in lines if x.kind == "receipt"), None)
    return sum(x.stock_change_ug for x in lines), expiry


def _lot_expiry(session: Session, product_id: int, lot: str) -> date | None:
    return session.scalar(
        select(LedgerLine.expiry)
        .where(
            LedgerLine.product_id == product_id,
            LedgerLine.lot == lot,
            LedgerLine.kind == "receipt",
        )
        .order_by(LedgerLine.seq)
        .limit(1)
    )


def _fields(
    actor: Actor,
    clock: ClinicClock,
    kind: LineKind,
    *,
    product_id: int,
    lot: str,
    location_id: int | None,
    **values: Any,
) -> dict[str, Any]:
    return {
        "at": clock.now(),
        "kind": kind,
        "product_id": product_id,
        "lot": lot,
        "location_id": location_id,
        "stock_change_ug": 0,
        "amount_ug": 0,
        "user_id": actor.user_id,
        "username": actor.username,
        "role": actor.role,
        "detail": {},
        **values,
    }


def _audit(session: Session, actor: Actor, name: str, line: LedgerLine) -> None:
    audit.record(
        session,
        actor,
        name,
        entity="ledger_line",
        entity_id=line.seq,
        patient_id=line.patient_id,
        detail={"kind": line.kind, "amount_ug": line.amount_ug, "lot": line.lot},
    )


# --- the witness -------------------------------------------------------------------------


def confirm_witness(
    db: Database, settings: Settings, actor: Actor, witness: Witness, *, what: str
) -> Actor:
    """The second person, signed in with their own password now; refused in words when it is
    the acting user, a wrong password, or someone who may not witness."""
    name = witness.witness_username.strip()
    if name.casefold() == actor.username.casefold():
        raise InvalidInput(
            f"witness_username: {what} must be witnessed by a second person, not by "
            f"{actor.username} who records it.",
            field="witness_username",
        )
    try:
        person = authenticate(
            db, settings, name, witness.witness_password.get_secret_value(), channel="witness"
        )
    except AuthenticationFailed as error:
        raise InvalidInput(
            f"witness_password: the witness could not be confirmed: {error.message}",
            field="witness_password",
        ) from error
    if person.user_id == actor.user_id:
        raise InvalidInput(
            f"witness_username: {what} must be witnessed by a second person.",
            field="witness_username",
        )
    if person.role not in WITNESS_ROLES:
        raise InvalidInput(
            f"witness_username: {person.username} is a {person.role}; a witness is a "
            f"physician, nurse or pharmacist.",
            field="witness_username",
        )
    return person


# --- stock: products, locations, receipts ------------------------------------------------


def add_product(db: Database, actor: Actor, request: ProductInput) -> ProductView:
    with action(db, actor, "ledger.manage", entity="stock_product") as session:
        if session.scalar(select(StockProduct.id).where(StockProduct.name == request.name)):
            raise InvalidInput(f"name: a product named {request.name!r} exists.", field="name")
        row = StockProduct(
            drug=rules().drug,
            name=request.name,
            strength_ug_per_ml=arithmetic.ug_from_mg(request.strength_mg_per_ml),
            container_ul=arithmetic.ul_from_ml(request.container_ml),
            form=request.form,
            manufacturer=request.manufacturer,
            product_code=request.product_code,
            created_by_id=actor.user_id,
        )
        session.add(row)
        session.flush()
        audit.record(session, actor, "ledger.product", entity="stock_product", entity_id=row.id)
        return product_view(row)


def add_location(db: Database, actor: Actor, request: LocationInput) -> LocationView:
    with action(db, actor, "ledger.manage", entity="stock_location") as session:
        if session.scalar(select(StockLocation.id).where(StockLocation.name == request.name)):
            raise InvalidInput(f"name: a location named {request.name!r} exists.", field="name")
        row = StockLocation(
            name=request.name, description=request.description, created_by_id=actor.user_id
        )
        session.add(row)
        session.flush()
        audit.record(session, actor, "ledger.location", entity="stock_location", entity_id=row.id)
        return location_view(row)


def _refuse_receipt_dates(request: ReceiptInput, today: date) -> None:
    """A receipt's dates within bounds (after the permission check, so that a refusal reads
    the same whatever was sent)."""
    if request.received_on > today:
        raise InvalidInput(
            f"received_on: {request.received_on} is after today ({today}).", field="received_on"
        )
    if request.received_on < today - timedelta(days=MAX_BACKDATE_DAYS):
        raise InvalidInput(
            f"received_on: {request.received_on} is more than {MAX_BACKDATE_DAYS // 365} years "
            "ago; check the date.",
            field="received_on",
        )
    if request.expiry > request.received_on + timedelta(days=MAX_SHELF_LIFE_DAYS):
        raise InvalidInput(
            f"expiry: {request.expiry} is more than {MAX_SHELF_LIFE_DAYS // 365} years after "
            "the lot was received; check the date on the pack.",
            field="expiry",
        )
    if request.expiry < request.received_on:
        raise InvalidInput(
            f"expiry: the lot expired on {request.expiry}, before it was received; expired "
            "stock is not taken into the ledger.",
            field="expiry",
        )


def receive(
    db: Database, actor: Actor, request: ReceiptInput, *, clock: ClinicClock | None = None
) -> LineView:
    """Stock received into a location: adds containers x volume x strength to the lot."""
    clock = clock or clinic_clock()
    check(db, actor, "ledger.manage", entity="ledger_line")
    _refuse_receipt_dates(request, clock.today())
    with action(db, actor, "ledger.manage", entity="ledger_line") as session:
        ledger_chain.lock(session)
        product = _product(session, request.product_id)
        _location(session, request.location_id)
        known = _lot_expiry(session, product.id, request.lot)
        if known is not None and known != request.expiry:
            raise InvalidInput(
                f"expiry: lot {request.lot} of this product was received before with expiry "
                f"{known}; check the pack.",
                field="expiry",
            )
        amount = request.containers * product.container_ul * product.strength_ug_per_ml // 1000
        line = ledger_chain.append(
            session,
            _fields(
                actor,
                clock,
                "receipt",
                product_id=product.id,
                lot=request.lot,
                location_id=request.location_id,
                expiry=request.expiry,
                containers=request.containers,
                stock_change_ug=amount,
                amount_ug=amount,
                detail={
                    "received_on": request.received_on.isoformat(),
                    "supplier_name": request.supplier_name,
                    "supplier_address": request.supplier_address,
                    "supplier_registration": request.supplier_registration,
                    "invoice_number": request.invoice_number,
                },
            ),
        )
        _audit(session, actor, "ledger.receive", line)
        products, locations = _catalogue(session)
        return line_view(line, products, locations)


def stock(db: Database, actor: Actor, *, clock: ClinicClock | None = None) -> StockView:
    """Every lot in every location with its balance, expiry status and count due."""
    clock = clock or clinic_clock()
    today = clock.today()
    the_rules = rules()
    with action(db, actor, "ledger.read", entity="ledger") as session:
        products, locations = _catalogue(session)
        lines = [_as_line(row) for row in _all_lines(session)]
        audit.record(session, actor, "ledger.read", entity="ledger")
    balances = arithmetic.balances(lines)
    expiries: dict[tuple[int, str], date | None] = {}
    for line in lines:
        if line.kind == "receipt":
            expiries.setdefault((line.product_id, line.lot), line.expiry)
    counted = arithmetic.last_counted(lines)
    out: list[StockLineView] = []
    for key, balance in sorted(
        balances.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or 0)
    ):
        product_id, lot, location_id = key
        if location_id is None:
            continue
        product = products[product_id]
        expiry = expiries.get((product_id, lot))
        status = arithmetic.expiry_status(expiry, today, the_rules.near_expiry_days)
        last = counted.get(key)
        last_on = clock.date_of(last) if last is not None else None
        due = balance != 0 and arithmetic.count_due(last_on, today, the_rules.count_interval_days)
        held = arithmetic.as_containers(balance, product.strength_ug_per_ml, product.container_ul)
        findings: list[Finding] = []
        if balance > 0 and status == "expired":
            findings.append(
                _finding(
                    "ledger:expired-stock",
                    f"Lot {lot} of {product.name} expired on {expiry}: it may not be "
                    f"dispensed; {arithmetic.mg_text(balance)} mg is waiting to be destroyed.",
                    "near_expiry_source",
                    severity="warning",
                )
            )
        elif balance > 0 and status == "near expiry":
            findings.append(
                _finding(
                    "ledger:near-expiry",
                    f"Lot {lot} of {product.name} expires on {expiry}; use it first.",
                    "near_expiry_source",
                )
            )
        if due:
            findings.append(
                _finding(
                    "ledger:count-due",
                    f"Lot {lot} in {locations[location_id].name} "
                    + (
                        "has never been counted."
                        if last_on is None
                        else f"was last counted on {last_on}."
                    )
                    + f" Counts are due every {the_rules.count_interval_days} days.",
                    "count_interval_source",
                )
            )
        out.append(
            StockLineView(
                product=product_view(product),
                lot=lot,
                expiry=expiry,
                expiry_status=status,
                location=location_view(locations[location_id]),
                balance_mg=_mg(balance),
                balance_ml=float(
                    arithmetic.ml_text(arithmetic.ml_of(balance, product.strength_ug_per_ml) * 1000)
                ),
                full_containers=held.full,
                open_ml=float(arithmetic.ml_text(held.open_ul)),
                last_counted_on=last_on,
                count_due=due,
                findings=[FindingData.of(f) for f in findings],
            )
        )
    return StockView(
        today=today,
        lines=out,
        products=[product_view(p) for p in products.values()],
        locations=[location_view(x) for x in locations.values()],
        count_interval_days=the_rules.count_interval_days,
        near_expiry_days=the_rules.near_expiry_days,
    )


# --- the session: dispensing, waste, reconciliation --------------------------------------


def _session_lines(session: Session, session_id: int) -> list[Line]:
    rows = session.scalars(
        select(LedgerLine).where(LedgerLine.session_id == session_id).order_by(LedgerLine.seq)
    )
    return [_as_line(row) for row in rows]


@dataclass(frozen=True)
class _Chart:
    state: str
    delivered_mg: Fraction
    concentration_mg_per_ml: float | None
    route: str | None
    last_seq: int


def _chart(session: Session, session_id: int, clock: ClinicClock) -> _Chart:
    from ketapath.services.sessions import chart_in  # the chart service loads the PK engine

    _, view = chart_in(session, session_id, clock)
    programme = view.programme
    return _Chart(
        state=view.state,
        delivered_mg=Fraction(view.delivered_mg_fraction),
        concentration_mg_per_ml=programme.concentration_mg_per_ml if programme else None,
        route=programme.route if programme else None,
        last_seq=view.last_seq,
    )


def _patient_name(session: Session, patient_id: int) -> str:
    name = session.scalar(
        select(PatientVersion.full_name)
        .where(PatientVersion.patient_id == patient_id)
        .order_by(PatientVersion.version.desc())
        .limit(1)
    )
    return name or f"patient {patient_id}"


def _refuse_unusable_lot(
    session: Session, product: StockProduct, lot: str, location_id: int, amount_ug: int, today: date
) -> int:
    balance, expiry = _balance(session, product.id, lot, location_id)
    expiry = expiry or _lot_expiry(session, product.id, lot)
    if expiry is not None and expiry < today:
        raise InvalidInput(
            f"lot: lot {lot} of {product.name} expired on {expiry}; expired stock is never "
            "dispensed.",
            field="lot",
        )
    if amount_ug > balance:
        raise InvalidInput(
            f"volume_ml: the ledger holds {arithmetic.mg_text(balance)} mg of lot {lot} of "
            f"{product.name} in this location; {arithmetic.mg_text(amount_ug)} mg cannot be "
            "taken from it. Count the stock if the ledger is wrong.",
            field="volume_ml",
        )
    return balance


def dispense(
    db: Database, actor: Actor, request: DispenseInput, *, clock: ClinicClock | None = None
) -> SessionLedgerView:
    """Take drug from a lot for a session and record the bag or syringe made from it."""
    clock = clock or clinic_clock()
    with action(
        db, actor, "ledger.dispense", entity="session", entity_id=request.session_id
    ) as session:
        ledger_chain.lock(session)
        row = _infusion(session, request.session_id)
        chart = _chart(session, row.id, clock)
        if chart.state not in arithmetic.DISPENSABLE_STATES:
            raise InvalidInput(
                f"session_id: session {row.id} is {chart.state.replace('_', ' ')}; drug is "
                "dispensed for a session before or during its infusion.",
                field="session_id",
            )
        product = _product(session, request.product_id)
        _location(session, request.location_id)
        amount = arithmetic.ug_from_ml(request.volume_ml, product.strength_ug_per_ml)
        _refuse_unusable_lot(
            session, product, request.lot, request.location_id, amount, clock.today()
        )
        if request.final_volume_ml < request.volume_ml:
            raise InvalidInput(
                f"final_volume_ml: the {request.container} ({request.final_volume_ml} mL) "
                f"cannot hold less than the {request.volume_ml} mL drawn up.",
                field="final_volume_ml",
            )
        concentration = Fraction(amount, 1000) / Fraction(request.final_volume_ml)
        _check_concentration(session, concentration, chart)
        line = ledger_chain.append(
            session,
            _fields(
                actor,
                clock,
                "dispense",
                product_id=product.id,
                lot=request.lot,
                location_id=request.location_id,
                stock_change_ug=-amount,
                amount_ug=amount,
                session_id=row.id,
                patient_id=row.patient_id,
                detail={
                    "volume_ul": arithmetic.ul_from_ml(request.volume_ml),
                    "container": request.container,
                    "diluent": request.diluent,
                    "final_volume_ul": arithmetic.ul_from_ml(request.final_volume_ml),
                    "concentration_ug_per_ml": arithmetic.ug_from_mg(concentration),
                },
            ),
        )
        _audit(session, actor, "ledger.dispense", line)
        return _session_view(session, row, clock)


def _check_concentration(session: Session, concentration: Fraction, chart: _Chart) -> None:
    shown = arithmetic.mg_text(arithmetic.ug_from_mg(concentration))
    if chart.concentration_mg_per_ml is not None:
        if abs(concentration - Fraction(Decimal(repr(chart.concentration_mg_per_ml)))) > Fraction(
            1, 10**6
        ):
            raise InvalidInput(
                f"final_volume_ml: the bag would hold {shown} mg/mL, but this session's pump "
                f"is programmed for {chart.concentration_mg_per_ml:g} mg/mL.",
                field="final_volume_ml",
            )
        return
    library = active_library(session)
    stocked = library.stocked_strengths(chart.route)
    if not any(
        abs(concentration - Fraction(Decimal(repr(s)))) <= Fraction(1, 10**6) for s in stocked
    ):
        listed = ", ".join(f"{s:g}" for s in stocked)
        raise InvalidInput(
            f"final_volume_ml: the bag would hold {shown} mg/mL; the drug library stocks "
            f"{listed} mg/mL.",
            field="final_volume_ml",
        )


def waste(
    db: Database,
    actor: Actor,
    request: WasteInput,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> SessionLedgerView:
    """Record what was left of a session's bag and wasted, witnessed; the chart's delivered
    dose is recorded beside it as the amount administered."""
    clock = clock or clinic_clock()
    settings = settings or get_settings()
    check(db, actor, "ledger.waste", entity="session", entity_id=request.session_id)
    if (request.volume_ml is None) == (request.amount_mg is None):
        raise InvalidInput(
            "volume_ml: give the volume wasted (mL) or the amount (mg), one of the two.",
            field="volume_ml",
        )
    witness = confirm_witness(db, settings, actor, request, what="A waste")
    with action(
        db, actor, "ledger.waste", entity="session", entity_id=request.session_id
    ) as session:
        ledger_chain.lock(session)
        row = _infusion(session, request.session_id)
        chart = _chart(session, row.id, clock)
        if chart.state not in arithmetic.ENDED_STATES:
            raise InvalidInput(
                f"session_id: session {row.id} is {chart.state.replace('_', ' ')}; the "
                "remainder is wasted once the infusion has stopped.",
                field="session_id",
            )
        lines = _session_lines(session, row.id)
        dispensed = [x for x in lines if x.kind == "dispense"]
        if not dispensed:
            raise InvalidInput(
                f"session_id: nothing was dispensed for session {row.id}.", field="session_id"
            )
        first = dispensed[0]
        if request.volume_ml is not None:
            strengths = {int(x.detail.get("concentration_ug_per_ml", 0)) for x in dispensed}
            if len(strengths) != 1:
                raise InvalidInput(
                    "volume_ml: the session's bags differ in strength; give the amount in mg.",
                    field="volume_ml",
                )
            amount = arithmetic.ug_from_ml(request.volume_ml, strengths.pop())
        else:
            amount = arithmetic.ug_from_mg(request.amount_mg or Decimal(0))
        administered = arithmetic.ug_from_mg(chart.delivered_mg)
        common: dict[str, Any] = {
            "product_id": first.product_id,
            "lot": first.lot,
            "location_id": None,
            "session_id": row.id,
            "patient_id": row.patient_id,
        }
        recorded = [x for x in lines if x.kind == "administer"]
        if not recorded or recorded[-1].amount_ug != administered:
            given = ledger_chain.append(
                session,
                _fields(
                    actor,
                    clock,
                    "administer",
                    amount_ug=administered,
                    detail={
                        "from_chart_seq": chart.last_seq,
                        "delivered_mg_exact": _exact(chart.delivered_mg),
                        "delivered_mg_fraction": str(chart.delivered_mg),
                    },
                    **common,
                ),
            )
            _audit(session, actor, "ledger.administer", given)
        line = ledger_chain.append(
            session,
            _fields(
                actor,
                clock,
                "waste",
                amount_ug=amount,
                witness_id=witness.user_id,
                witness_username=witness.username,
                detail={
                    "manner": request.manner,
                    **(
                        {"volume_ul": arithmetic.ul_from_ml(request.volume_ml)}
                        if request.volume_ml is not None
                        else {}
                    ),
                },
                **common,
            ),
        )
        _audit(session, actor, "ledger.waste", line)
        audit.record(
            session,
            witness,
            "ledger.witness",
            entity="ledger_line",
            entity_id=line.seq,
            patient_id=row.patient_id,
            detail={"kind": "waste", "recorded_by": actor.username},
        )
        return _session_view(session, row, clock)


def _exact(value: Fraction) -> str:
    from ketapath.domain.session_dose import mg_text

    return mg_text(value)


def session_ledger(
    db: Database, actor: Actor, session_id: int, *, clock: ClinicClock | None = None
) -> SessionLedgerView:
    """A session's dispensing, administration and waste lines, and its reconciliation."""
    clock = clock or clinic_clock()
    with action(db, actor, "ledger.read", entity="session", entity_id=session_id) as session:
        row = _infusion(session, session_id)
        view = _session_view(session, row, clock)
        audit.record(
            session,
            actor,
            "ledger.read",
            entity="session",
            entity_id=row.id,
            patient_id=row.patient_id,
        )
        return view


def _reconcile(lines: Sequence[Line], chart: _Chart) -> Reconciliation:
    return arithmetic.reconcile(
        lines,
        delivered_mg=chart.delivered_mg,
        session_ended=chart.state in arithmetic.ENDED_STATES,
        tolerance_mg=rules().reconciliation_tolerance_mg,
    )


def _session_view(session: Session, row: InfusionSession, clock: ClinicClock) -> SessionLedgerView:
    chart = _chart(session, row.id, clock)
    lines = _session_lines(session, row.id)
    result = _reconcile(lines, chart)
    products, locations = _catalogue(session)
    stored = session.scalars(
        select(LedgerLine).where(LedgerLine.session_id == row.id).order_by(LedgerLine.seq)
    )
    findings = _session_findings(row.id, result)
    strengths = {
        int(x.detail.get("concentration_ug_per_ml", 0)) for x in lines if x.kind == "dispense"
    }
    strength = strengths.pop() if len(strengths) == 1 else None
    left = (
        float(
            arithmetic.ml_text(
                arithmetic.ml_of(result.dispensed_ug - result.administered_ug, strength) * 1000
            )
        )
        if strength
        else None
    )
    return SessionLedgerView(
        session_id=row.id,
        patient_id=row.patient_id,
        patient_name=_patient_name(session, row.patient_id),
        session_state=chart.state,
        lines=[line_view(x, products, locations) for x in stored],
        reconciliation=ReconciliationView(
            status=result.status,
            reconciled=result.status in ("reconciled", "resolved"),
            message=_reconciliation_words(row.id, result),
            dispensed_mg=_mg(result.dispensed_ug),
            administered_mg=_mg(result.administered_ug),
            administered_exact_mg=_exact(result.administered_exact_mg),
            wasted_mg=_mg(result.wasted_ug),
            difference_mg=_mg(result.difference_ug),
            tolerance_mg=float(rules().reconciliation_tolerance_mg),
            recorded_administered_mg=(
                _mg(result.recorded_administered_ug)
                if result.recorded_administered_ug is not None
                else None
            ),
            chart_changed=result.chart_changed,
            resolved_by=result.resolved_by.username if result.resolved_by else None,
            resolution_reason=result.resolved_by.reason if result.resolved_by else None,
            bag_concentration_mg_per_ml=strength / 1000 if strength else None,
            left_in_bag_ml=left,
        ),
        findings=[FindingData.of(f) for f in findings],
    )


def _reconciliation_words(session_id: int, result: Reconciliation) -> str:
    given = arithmetic.mg_text(result.administered_ug)
    out = arithmetic.mg_text(result.dispensed_ug)
    wasted = arithmetic.mg_text(result.wasted_ug)
    if result.status == "nothing dispensed":
        return "Nothing has been dispensed for this session."
    if result.status == "in progress":
        return f"{out} mg dispensed; the chart shows {given} mg given so far."
    if result.status == "awaiting waste":
        return (
            f"{out} mg dispensed, {given} mg given by the chart: record what is left in the "
            "bag as waste, with a witness."
        )
    sums = f"{out} mg dispensed = {given} mg given + {wasted} mg wasted"
    if result.status == "reconciled":
        return f"Reconciled: {sums} (to 0.1 mg)."
    difference = arithmetic.mg_text(abs(result.difference_ug))
    side = "unaccounted for" if result.difference_ug > 0 else "more given and wasted than dispensed"
    if result.status == "resolved":
        reason = result.resolved_by.reason if result.resolved_by else ""
        return f"Discrepancy of {difference} mg ({side}) resolved: {reason}"
    return (
        f"Discrepancy: {out} mg dispensed, {given} mg given, {wasted} mg wasted: "
        f"{difference} mg {side}."
    )


def _session_findings(session_id: int, result: Reconciliation) -> list[Finding]:
    findings: list[Finding] = []
    if result.status == "discrepancy":
        findings.append(
            _finding(
                "ledger:session-discrepancy",
                f"Session {session_id}: {_reconciliation_words(session_id, result)} A "
                "pharmacist resolves it with a reason.",
                "reconciliation_tolerance_source",
            )
        )
    if result.chart_changed:
        findings.append(
            _finding(
                "ledger:chart-changed",
                f"Session {session_id}: the chart now shows "
                f"{arithmetic.mg_text(result.administered_ug)} mg given; "
                f"{arithmetic.mg_text(result.recorded_administered_ug or 0)} mg was recorded "
                "when the waste was recorded. The reconciliation uses the chart as it is now.",
                "reconciliation_tolerance_source",
            )
        )
    return findings


def resolve_session(
    db: Database,
    actor: Actor,
    session_id: int,
    request: SessionResolutionInput,
    *,
    clock: ClinicClock | None = None,
) -> SessionLedgerView:
    """A pharmacist closes a session's discrepancy (as it stands now) with a reason."""
    clock = clock or clinic_clock()
    with action(db, actor, "ledger.manage", entity="session", entity_id=session_id) as session:
        ledger_chain.lock(session)
        row = _infusion(session, session_id)
        chart = _chart(session, row.id, clock)
        lines = _session_lines(session, row.id)
        result = _reconcile(lines, chart)
        if result.status != "discrepancy":
            raise InvalidInput(
                f"session {row.id} has no open discrepancy (it is {result.status}).",
                field="session_id",
            )
        first = next(x for x in lines if x.kind == "dispense")
        line = ledger_chain.append(
            session,
            _fields(
                actor,
                clock,
                "resolution",
                product_id=first.product_id,
                lot=first.lot,
                location_id=None,
                session_id=row.id,
                patient_id=row.patient_id,
                amount_ug=abs(result.difference_ug),
                reason=request.reason,
                detail={"difference_ug": result.difference_ug, "of": "session"},
            ),
        )
        _audit(session, actor, "ledger.resolve", line)
        return _session_view(session, row, clock)


# --- counts, losses, discrepancies -------------------------------------------------------


def count(
    db: Database,
    actor: Actor,
    request: CountInput,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> LineView:
    """Two people count a lot in a location; a count that differs from the balance opens a
    discrepancy (the count line's ``difference_ug``)."""
    clock = clock or clinic_clock()
    settings = settings or get_settings()
    check(db, actor, "ledger.count", entity="ledger")
    witness = confirm_witness(db, settings, actor, request, what="A count")
    with action(db, actor, "ledger.count", entity="ledger") as session:
        ledger_chain.lock(session)
        product = _product(session, request.product_id)
        _location(session, request.location_id)
        open_ul = arithmetic.ul_from_ml(request.open_ml)
        if open_ul >= product.container_ul:
            raise InvalidInput(
                f"open_ml: an opened {product.form} holds less than "
                f"{arithmetic.ml_text(product.container_ul)} mL; count full ones as full.",
                field="open_ml",
            )
        balance, expiry = _balance(session, product.id, request.lot, request.location_id)
        counted_ul = request.full_containers * product.container_ul + open_ul
        counted = counted_ul * product.strength_ug_per_ml // 1000
        line = ledger_chain.append(
            session,
            _fields(
                actor,
                clock,
                "count",
                product_id=product.id,
                lot=request.lot,
                location_id=request.location_id,
                expiry=expiry,
                amount_ug=counted,
                containers=request.full_containers,
                witness_id=witness.user_id,
                witness_username=witness.username,
                detail={
                    "expected_ug": balance,
                    "difference_ug": counted - balance,
                    "open_ul": open_ul,
                },
            ),
        )
        _audit(session, actor, "ledger.count", line)
        audit.record(
            session,
            witness,
            "ledger.witness",
            entity="ledger_line",
            entity_id=line.seq,
            detail={"kind": "count", "recorded_by": actor.username},
        )
        products, locations = _catalogue(session)
        return line_view(line, products, locations)


def resolve_count(
    db: Database,
    actor: Actor,
    count_seq: int,
    request: CountResolutionInput,
    *,
    clock: ClinicClock | None = None,
) -> LineView:
    """Close a count's discrepancy: a loss, a theft or a recording error moves the balance to
    what was counted (by the difference the count found); a count error moves nothing."""
    clock = clock or clinic_clock()
    with action(db, actor, "ledger.manage", entity="ledger_line", entity_id=count_seq) as session:
        ledger_chain.lock(session)
        row = session.scalar(select(LedgerLine).where(LedgerLine.seq == count_seq))
        if row is None or row.kind != "count":
            raise NotFound(f"There is no count at ledger line {count_seq}.", field="count_seq")
        lines = _stock_lines(session, row.product_id, row.lot, row.location_id or 0)
        if not any(x.seq == count_seq for x in arithmetic.open_count_discrepancies(lines)):
            raise InvalidInput(
                f"count_seq: the count at line {count_seq} has no open discrepancy.",
                field="count_seq",
            )
        difference = int(row.detail.get("difference_ug", 0))
        kind: LineKind = {
            "loss": "loss",
            "theft": "theft",
            "recording error": "adjustment",
            "count error": "resolution",
        }[request.outcome]  # type: ignore[assignment]
        moves = request.outcome != "count error"
        line = ledger_chain.append(
            session,
            _fields(
                actor,
                clock,
                kind,
                product_id=row.product_id,
                lot=row.lot,
                location_id=row.location_id,
                stock_change_ug=difference if moves else 0,
                amount_ug=abs(difference),
                resolves_seq=count_seq,
                reason=request.reason,
                detail={"difference_ug": difference, "of": "count", "outcome": request.outcome},
            ),
        )
        _audit(session, actor, "ledger.resolve", line)
        products, locations = _catalogue(session)
        return line_view(line, products, locations)


def record_loss(
    db: Database, actor: Actor, request: LossInput, *, clock: ClinicClock | None = None
) -> LineView:
    """A loss or theft found outside a count (a broken vial, a missing pack)."""
    clock = clock or clinic_clock()
    with action(db, actor, "ledger.manage", entity="ledger_line") as session:
        ledger_chain.lock(session)
        product = _product(session, request.product_id)
        _location(session, request.location_id)
        amount = arithmetic.ug_from_ml(request.volume_ml, product.strength_ug_per_ml)
        balance, _ = _balance(session, product.id, request.lot, request.location_id)
        if amount > balance:
            raise InvalidInput(
                f"volume_ml: the ledger holds {arithmetic.mg_text(balance)} mg of lot "
                f"{request.lot} here; a larger {request.kind} means the stock needs a count.",
                field="volume_ml",
            )
        line = ledger_chain.append(
            session,
            _fields(
                actor,
                clock,
                request.kind,
                product_id=product.id,
                lot=request.lot,
                location_id=request.location_id,
                stock_change_ug=-amount,
                amount_ug=amount,
                reason=request.reason,
                detail={"volume_ul": arithmetic.ul_from_ml(request.volume_ml)},
            ),
        )
        _audit(session, actor, f"ledger.{request.kind}", line)
        products, locations = _catalogue(session)
        return line_view(line, products, locations)


def loss_finding(line: LineView) -> FindingData:
    """What a loss or theft asks of the registrant (reporting it)."""
    return FindingData.of(
        _finding(
            "ledger:loss-or-theft",
            f"{line.label} of {line.amount_mg:g} mg of {line.product_name} (lot {line.lot}) "
            "recorded: a theft or significant loss is reported to the authorities as the "
            "rule says.",
            "loss_report",
        )
    )


# Chart entries that can still change a stopped session's delivered dose: a dose or state
# entry, or a correction of any entry (``amends_seq``).
DOSE_KINDS = (
    "start",
    "rate_change",
    "pause",
    "resume",
    "stop",
    "complete",
    "bolus",
    "cancel",
    "void",
)


def _chart_mark(lines: Sequence[Line]) -> int:
    """The chart entry the last administration line read the delivered dose at (0: none)."""
    recorded = [x for x in lines if x.kind == "administer"]
    return int(recorded[-1].detail.get("from_chart_seq", 0)) if recorded else 0


def _recorded_dose(lines: Sequence[Line]) -> Fraction | None:
    """The exact delivered dose the last administration line recorded, if it kept it."""
    recorded = [x for x in lines if x.kind == "administer"]
    text = recorded[-1].detail.get("delivered_mg_fraction") if recorded else None
    return Fraction(str(text)) if text else None


def _charts_changed_since(session: Session, marks: dict[int, int]) -> set[int]:
    """Sessions whose chart has a dose-relevant entry after the entry recorded at waste."""
    if not marks:
        return set()
    latest = session.execute(
        select(SessionEvent.session_id, func.max(SessionEvent.seq))
        .where(
            SessionEvent.session_id.in_(list(marks)),
            or_(SessionEvent.amends_seq.is_not(None), SessionEvent.kind.in_(DOSE_KINDS)),
        )
        .group_by(SessionEvent.session_id)
    ).all()
    return {session_id for session_id, seq in latest if seq is not None and seq > marks[session_id]}


def discrepancies(
    db: Database, actor: Actor, *, clock: ClinicClock | None = None
) -> list[DiscrepancyView]:
    """Every open discrepancy: sessions that do not reconcile and counts not yet resolved."""
    clock = clock or clinic_clock()
    with action(db, actor, "ledger.read", entity="ledger") as session:
        products, locations = _catalogue(session)
        rows = _all_lines(session)
        lines = [_as_line(x) for x in rows]
        by_seq = {x.seq: x for x in rows}
        out: list[DiscrepancyView] = []
        by_session: dict[int, list[Line]] = {}
        for x in lines:
            if x.session_id is not None:
                by_session.setdefault(x.session_id, []).append(x)
        # Only a session whose remainder was wasted can be a discrepancy; its chart is
        # replayed only if a dose-relevant entry came after the one read at the waste.
        wasted = {k: v for k, v in by_session.items() if any(x.kind == "waste" for x in v)}
        marks = {k: _chart_mark(v) for k, v in wasted.items()}
        changed = _charts_changed_since(session, marks)
        for session_id, mine in sorted(wasted.items()):
            infusion = _infusion(session, session_id)
            recorded = _recorded_dose(mine)
            if session_id in changed or recorded is None:
                chart = _chart(session, session_id, clock)
                result = _reconcile(mine, chart)
            else:
                result = arithmetic.reconcile(
                    mine,
                    delivered_mg=recorded,
                    session_ended=True,
                    tolerance_mg=rules().reconciliation_tolerance_mg,
                )
            if result.status != "discrepancy":
                continue
            first = next(x for x in mine if x.kind == "dispense")
            found = _session_findings(session_id, result)[0]
            out.append(
                DiscrepancyView(
                    source="session",
                    seq=None,
                    session_id=session_id,
                    patient_name=_patient_name(session, infusion.patient_id),
                    product_name=products[first.product_id].name,
                    lot=first.lot,
                    location_name=None,
                    difference_mg=_mg(result.difference_ug),
                    opened_at=max(x.at for x in mine if x.kind == "waste"),
                    finding=FindingData.of(found),
                )
            )
        for line in arithmetic.open_count_discrepancies(lines):
            difference = int(line.detail.get("difference_ug", 0))
            location = locations[line.location_id] if line.location_id else None
            words = (
                f"Count of lot {line.lot} of {products[line.product_id].name} in "
                f"{location.name if location else 'an unknown location'} on "
                f"{clock.date_of(line.at)}: counted {arithmetic.mg_text(line.amount_ug)} mg, "
                f"the ledger held {arithmetic.mg_text(int(line.detail.get('expected_ug', 0)))} "
                f"mg ({'+' if difference > 0 else ''}{arithmetic.mg_text(difference)} mg). "
                "A pharmacist resolves it as a loss, a theft, a recording error or a count error."
            )
            out.append(
                DiscrepancyView(
                    source="count",
                    seq=line.seq,
                    session_id=None,
                    patient_name=None,
                    product_name=products[line.product_id].name,
                    lot=line.lot,
                    location_name=location.name if location else None,
                    difference_mg=_mg(difference),
                    opened_at=by_seq[line.seq].at,
                    finding=FindingData.of(
                        _finding("ledger:count-discrepancy", words, "count_people_source")
                    ),
                )
            )
        audit.record(
            session, actor, "ledger.read", entity="ledger", detail={"view": "discrepancies"}
        )
        return out


# --- corrections -------------------------------------------------------------------------


def correct(
    db: Database,
    actor: Actor,
    seq: int,
    request: CorrectionInput,
    *,
    clock: ClinicClock | None = None,
) -> LineView:
    """A new line that corrects the amount of an earlier one, with the reason; the stock
    moves by the difference. The line corrected stays as it was written."""
    clock = clock or clinic_clock()
    with action(db, actor, "ledger.manage", entity="ledger_line", entity_id=seq) as session:
        ledger_chain.lock(session)
        row = session.scalar(select(LedgerLine).where(LedgerLine.seq == seq))
        if row is None:
            raise NotFound(f"There is no ledger line {seq}.", field="seq")
        if row.kind not in arithmetic.CORRECTABLE:
            raise InvalidInput(
                f"seq: a {LINE_LABELS[row.kind].lower()} line is not corrected here"
                + (
                    ": correct the session's chart instead."
                    if row.kind == "administer"
                    else ": count again or record a new line."
                ),
                field="seq",
            )
        product = _product(session, row.product_id)
        previous = session.scalars(
            select(LedgerLine)
            .where(LedgerLine.kind == "correction", LedgerLine.corrects_seq == seq)
            .order_by(LedgerLine.seq.desc())
            .limit(1)
        ).first()
        old_amount = previous.amount_ug if previous is not None else row.amount_ug
        new_amount, containers = _corrected_amount(row, product, request)
        sign = {"receipt": 1, "dispense": -1, "loss": -1, "theft": -1, "waste": 0}[row.kind]
        change = sign * (new_amount - old_amount)
        # a smaller receipt takes stock away as a larger dispensing does: never below zero
        if change < 0 and row.location_id is not None:
            balance, _ = _balance(session, product.id, row.lot, row.location_id)
            if -change > balance:
                field = "containers" if row.kind == "receipt" else "volume_ml"
                raise InvalidInput(
                    f"{field}: the ledger holds {arithmetic.mg_text(balance)} mg of lot "
                    f"{row.lot} there; the correction would take more.",
                    field=field,
                )
        line = ledger_chain.append(
            session,
            _fields(
                actor,
                clock,
                "correction",
                product_id=row.product_id,
                lot=row.lot,
                location_id=row.location_id,
                expiry=row.expiry,
                stock_change_ug=change,
                amount_ug=new_amount,
                containers=containers,
                session_id=row.session_id,
                patient_id=row.patient_id,
                corrects_seq=seq,
                reason=request.reason,
                detail={"corrects_kind": row.kind, "previous_ug": old_amount},
            ),
        )
        _audit(session, actor, "ledger.correct", line)
        products, locations = _catalogue(session)
        return line_view(line, products, locations)


def _corrected_amount(
    row: LedgerLine, product: StockProduct, request: CorrectionInput
) -> tuple[int, int | None]:
    given = [n for n in ("containers", "volume_ml", "amount_mg") if getattr(request, n) is not None]
    if row.kind == "receipt":
        if given != ["containers"]:
            raise InvalidInput(
                "containers: a receipt is corrected by its number of containers.",
                field="containers",
            )
        containers = request.containers or 0
        return containers * product.container_ul * product.strength_ug_per_ml // 1000, containers
    if row.kind == "waste" and given == ["amount_mg"]:
        return arithmetic.ug_from_mg(request.amount_mg or Decimal(0)), None
    if given != ["volume_ml"]:
        raise InvalidInput(
            f"volume_ml: a {LINE_LABELS[row.kind].lower()} line is corrected by its volume (mL).",
            field="volume_ml",
        )
    strength = product.strength_ug_per_ml
    if row.kind == "waste":
        strength = int(row.detail.get("concentration_ug_per_ml", 0)) or _waste_strength(row)
    return arithmetic.ug_from_ml(request.volume_ml or Decimal(0), strength), None


def _waste_strength(row: LedgerLine) -> int:
    volume = int(row.detail.get("volume_ul", 0))
    if volume <= 0:
        raise InvalidInput(
            "amount_mg: this waste was recorded in mg; correct it in mg.", field="amount_mg"
        )
    return round(Fraction(row.amount_ug * 1000, volume))


# --- reading the ledger ------------------------------------------------------------------


def lines(
    db: Database,
    actor: Actor,
    *,
    product_id: int | None = None,
    session_id: int | None = None,
    limit: int = 500,
) -> list[LineView]:
    """Ledger lines, newest first (a product's, a session's, or all)."""
    with action(db, actor, "ledger.read", entity="ledger") as session:
        query = select(LedgerLine).order_by(LedgerLine.seq.desc()).limit(limit)
        if product_id is not None:
            query = query.where(LedgerLine.product_id == product_id)
        if session_id is not None:
            query = query.where(LedgerLine.session_id == session_id)
        rows = list(session.scalars(query))
        products, locations = _catalogue(session)
        audit.record(session, actor, "ledger.read", entity="ledger", detail={"view": "lines"})
        return [line_view(row, products, locations) for row in rows]


def verify(db: Database, actor: Actor) -> VerifyView:
    """Walk the ledger's hash chain; the first broken line, named."""
    check(db, actor, "ledger.verify", entity="ledger")
    report = ledger_chain.verify(db)
    with db.transaction() as session:
        audit.record(
            session,
            actor,
            "ledger.verify",
            entity="ledger",
            outcome="ok",
            detail={"intact": report.intact, "lines": report.lines_checked},
        )
    return verify_view(report)


def verify_view(report: ledger_chain.ChainReport) -> VerifyView:
    broken = report.first_break
    return VerifyView(
        intact=report.intact,
        lines_checked=report.lines_checked,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        problem=broken.problem if broken else None,
        message=broken.message if broken else None,
        broken_seq=broken.seq if broken else None,
    )
