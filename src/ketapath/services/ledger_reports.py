"""The regulators' reports of the controlled-drug ledger (issue 11), as typed data.

- :func:`us_inventory`: the DEA biennial inventory (21 CFR 1304.11) as of the opening or the
  close of business of a clinic date: every product, lot and location on hand, as full
  containers, the volume left in an opened one, and the balance in mg.
- :func:`us_records`: the DEA records of a dispenser (21 CFR 1304.22(c)) for a range of clinic
  dates: every ledger line in order (receipts with the supplier, dispensings and
  administrations with the patient, wastes with their manner and witness, losses and thefts,
  corrections naming the line they correct).
- :func:`uk_register`: a controlled drugs register page for one product (Misuse of Drugs
  Regulations 2001, regulations 19 and 20): every line in order with a running balance.

Each report carries the registrant (``KETAPATH_CLINIC_NAME``, ``KETAPATH_CLINIC_ADDRESS``,
``KETAPATH_DEA_REGISTRATION``; a missing one is printed as "not set: ..." rather than left
blank) and the regulation's requirements it answers, with their short citations from
``ledger_rules.yaml``. Reading a report needs ``ledger.report`` (pharmacist, physician) and
is audited as ``ledger.report``. Amounts are whole micrograms with their mg text to 0.001;
nothing is rounded before it is summed. Rendering (CSV, PDF) is in ``ketapath.reports.ledger``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.config import Settings, get_settings
from ketapath.domain import ledger as arithmetic
from ketapath.domain.findings import citation_text
from ketapath.domain.ledger import LINE_LABELS, LineKind
from ketapath.knowledge.bounds import input_bounds
from ketapath.knowledge.ledger import LedgerReport, ReportId, ledger_rules
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import InvalidInput, NotFound
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import (
    InfusionSession,
    LedgerLine,
    Order,
    PatientVersion,
    SessionEvent,
    StockLocation,
    StockProduct,
    User,
)

TimeOfDay = Literal["opening", "close"]
NOT_RECORDED = "address not recorded"
# The longest period one dispensing-records report covers: two years, the time every record
# is kept for inspection (21 CFR 1304.04(a), ledger_rules.yaml `two-years`); a longer range
# is refused rather than read in one request.
MAX_RANGE_DAYS = 731
# Chart entries that mean someone ran the infusion (who administered the dose).
ADMINISTERING_ENTRIES = ("start", "resume", "rate_change", "bolus")


def not_set(variable: str) -> str:
    return f"not set: {variable}"


# --- the typed reports -------------------------------------------------------------------


class Registrant(BaseModel):
    """Who holds the stock: name, address and (US) DEA registration number, as configured."""

    name: str
    address: str
    dea_registration: str


class RequirementView(BaseModel):
    """One thing the regulation asks of the report, with its short citations."""

    id: str
    text: str
    citation: str


class ReportHeading(BaseModel):
    """What every report prints at its head: what it is, whose, when, for whom, and why."""

    report: ReportId
    title: str
    jurisdiction: Literal["US", "UK"]
    regulation: str = Field(description="The short citations of the regulation behind it.")
    registrant: Registrant
    generated_at: datetime = Field(description="When it was made, in the clinic's time zone.")
    generated_at_text: str
    generated_by: str
    requirements: list[RequirementView]


class InventoryLine(BaseModel):
    """One product, lot and location on hand (21 CFR 1304.11(e)(3))."""

    product_id: int
    substance: str
    product_name: str
    product_code: str
    finished_form: str = Field(description="E.g. 'injection, 50 mg/mL'.")
    strength_mg_per_ml: str
    container: str = Field(description="E.g. '10.00 mL vial'.")
    lot: str
    expiry: date | None
    location: str
    full_containers: int
    opened_container_ml: str = Field(
        description="Volume left in an opened container (mL): the ledger's own measure."
    )
    balance_ug: int
    balance_mg: str


class UsInventory(BaseModel):
    """The DEA inventory as of the opening or the close of business of a clinic date."""

    heading: ReportHeading
    on: date
    time_of_day: TimeOfDay
    as_of: datetime = Field(description="The instant the balances are taken at (clinic zone).")
    lines: list[InventoryLine]
    total_ug: int
    total_mg: str
    opened_container_note: str


class Entry(BaseModel):
    """One ledger line as the records and the register print it (mg to 0.001 as text)."""

    seq: int
    at: datetime = Field(description="When it was recorded, in the clinic's time zone.")
    day: date = Field(description="The clinic date it was recorded on.")
    time: str
    kind: LineKind
    label: str
    product_id: int
    product_name: str
    finished_form: str
    lot: str
    location: str | None
    containers: int | None
    quantity_ug: int
    quantity_mg: str
    volume_ml: str | None
    stock_change_ug: int
    stock_change_mg: str
    patient_id: int | None
    patient_name: str | None
    patient_address: str | None
    prescriber: str | None
    session_id: int | None
    supplier_name: str | None
    supplier_address: str | None
    supplier_registration: str | None
    invoice_number: str | None
    received_on: date | None
    recorded_by: str
    administered_by: str | None
    witness: str | None
    manner: str | None
    reason: str | None
    corrects_seq: int | None
    resolves_seq: int | None
    note: str = Field(description="The line in words: a correction names the line it corrects.")


class UsRecords(BaseModel):
    """The DEA dispensing records of a range of clinic dates, in the order they were made."""

    heading: ReportHeading
    date_from: date
    date_to: date
    entries: list[Entry]


class RegisterEntry(Entry):
    balance_ug: int
    balance_mg: str


class UkRegister(BaseModel):
    """One product's page of the controlled drugs register, with a running balance."""

    heading: ReportHeading
    product_id: int
    drug: str
    product_name: str
    finished_form: str
    entries: list[RegisterEntry]
    balance_ug: int
    balance_mg: str


Report = UsInventory | UsRecords | UkRegister


# --- building blocks ---------------------------------------------------------------------


def _heading(
    report_id: ReportId, actor: Actor, settings: Settings, clock: ClinicClock
) -> ReportHeading:
    rules: LedgerReport = ledger_rules().reports[report_id]
    now = clock.local(clock.now())
    registrant = Registrant(
        name=settings.clinic_name.strip() or not_set("KETAPATH_CLINIC_NAME"),
        address=settings.clinic_address.strip() or not_set("KETAPATH_CLINIC_ADDRESS"),
        dea_registration=(
            settings.dea_registration.strip() or not_set("KETAPATH_DEA_REGISTRATION")
        ),
    )
    return ReportHeading(
        report=report_id,
        title=rules.title,
        jurisdiction=rules.jurisdiction,
        regulation=citation_text(rules.source),
        registrant=registrant,
        generated_at=now,
        generated_at_text=f"{now:%Y-%m-%d %H:%M} {now.tzname() or ''}".strip(),
        generated_by=actor.username,
        requirements=[
            RequirementView(id=r.id, text=r.text, citation=citation_text(r.source))
            for r in rules.requirements
        ],
    )


def _check_date(day: date, name: str, clock: ClinicClock) -> None:
    years = input_bounds()["chart_year"]
    if not years.minimum <= day.year <= years.maximum:
        raise InvalidInput(
            f"{name}: {day} is outside the years {years.minimum:g} to {years.maximum:g}.",
            field=name,
        )
    today = clock.today()
    if day > today:
        raise InvalidInput(
            f"{name}: {day} is after the clinic's today ({today}); a report covers what has "
            "happened.",
            field=name,
        )


def finished_form(product: StockProduct) -> str:
    return f"injection, {arithmetic.mg_text(product.strength_ug_per_ml)} mg/mL"


def container_text(product: StockProduct) -> str:
    return f"{arithmetic.ml_text(product.container_ul)} mL {product.form}"


def _who(user: User | None, fallback: str) -> str:
    if user is None:
        return fallback
    return f"{user.full_name} ({user.username})" if user.full_name else user.username


class _Reader:
    """What the entries need besides the lines: products, locations, people, patients,
    sessions' prescribers and who ran each infusion; each read once."""

    def __init__(self, session: Session, clock: ClinicClock) -> None:
        self.session = session
        self.clock = clock
        self.products = {p.id: p for p in session.scalars(select(StockProduct))}
        self.locations = {x.id: x for x in session.scalars(select(StockLocation))}
        self.users = {u.username: u for u in session.scalars(select(User))}
        self.users_by_id = {u.id: u for u in self.users.values()}
        self._patients: dict[int, list[PatientVersion]] = {}
        self._prescribers: dict[int, str | None] = {}
        self._administered: dict[int, str | None] = {}

    def person(self, username: str | None) -> str | None:
        if not username:
            return None
        return _who(self.users.get(username), username)

    def patient(self, patient_id: int, at: datetime) -> tuple[str, str]:
        """The patient's name and address as the record stood when the line was written."""
        versions = self._patients.get(patient_id)
        if versions is None:
            versions = list(
                self.session.scalars(
                    select(PatientVersion)
                    .where(PatientVersion.patient_id == patient_id)
                    .order_by(PatientVersion.version)
                )
            )
            self._patients[patient_id] = versions
        if not versions:
            return f"patient {patient_id}", NOT_RECORDED
        then = [v for v in versions if v.recorded_at <= at] or versions
        version = then[-1]
        return version.full_name or f"patient {patient_id}", _address(version.document)

    def prescriber(self, session_id: int) -> str | None:
        if session_id not in self._prescribers:
            signer = self.session.scalar(
                select(Order.recorded_by_id)
                .join(InfusionSession, InfusionSession.order_id == Order.id)
                .where(InfusionSession.id == session_id)
            )
            user = self.users_by_id.get(signer) if signer is not None else None
            self._prescribers[session_id] = _who(user, "") or None
        return self._prescribers[session_id]

    def administered_by(self, session_id: int) -> str | None:
        if session_id not in self._administered:
            ids = self.session.scalars(
                select(SessionEvent.recorded_by_id)
                .where(
                    SessionEvent.session_id == session_id,
                    SessionEvent.kind.in_(ADMINISTERING_ENTRIES),
                )
                .order_by(SessionEvent.seq)
            )
            names: list[str] = []
            for user_id in ids:
                user = self.users_by_id.get(user_id) if user_id is not None else None
                name = _who(user, "")
                if name and name not in names:
                    names.append(name)
            self._administered[session_id] = ", ".join(names) or None
        return self._administered[session_id]


def _address(document: dict[str, Any] | None) -> str:
    """The patient's address if the record holds one (the patient document has no address
    field today), else the words that say so: never a blank."""
    value = (document or {}).get("address")
    if isinstance(value, dict):
        value = ", ".join(str(v).strip() for v in value.values() if str(v).strip())
    if isinstance(value, list):
        value = ", ".join(str(v).strip() for v in value if str(v).strip())
    text = str(value).strip() if value is not None else ""
    return text or NOT_RECORDED


def _entries(rows: Sequence[LedgerLine], reader: _Reader) -> list[Entry]:
    by_seq = {row.seq: row for row in rows}
    return [_entry(row, reader, by_seq) for row in rows]


def _entry(row: LedgerLine, reader: _Reader, by_seq: dict[int, LedgerLine]) -> Entry:
    product = reader.products[row.product_id]
    detail = row.detail or {}
    local = reader.clock.local(row.at)
    location = reader.locations.get(row.location_id) if row.location_id is not None else None
    patient_name = patient_address = None
    if row.patient_id is not None:
        patient_name, patient_address = reader.patient(row.patient_id, row.at)
    supplied = row.session_id is not None and row.kind in ("dispense", "administer", "waste")
    volume = detail.get("volume_ul")
    received_on = detail.get("received_on")
    return Entry(
        seq=row.seq,
        at=local,
        day=local.date(),
        time=f"{local:%H:%M}",
        kind=row.kind,
        label=LINE_LABELS.get(row.kind, row.kind),
        product_id=product.id,
        product_name=product.name,
        finished_form=finished_form(product),
        lot=row.lot,
        location=location.name if location is not None else None,
        containers=row.containers,
        quantity_ug=row.amount_ug,
        quantity_mg=arithmetic.mg_text(row.amount_ug),
        volume_ml=arithmetic.ml_text(int(volume)) if isinstance(volume, int) else None,
        stock_change_ug=row.stock_change_ug,
        stock_change_mg=_signed(row.stock_change_ug),
        patient_id=row.patient_id,
        patient_name=patient_name,
        patient_address=patient_address,
        prescriber=reader.prescriber(row.session_id) if supplied and row.session_id else None,
        session_id=row.session_id,
        supplier_name=detail.get("supplier_name"),
        supplier_address=detail.get("supplier_address"),
        supplier_registration=(
            (detail.get("supplier_registration") or "not recorded")
            if row.kind == "receipt"
            else None
        ),
        invoice_number=detail.get("invoice_number"),
        received_on=date.fromisoformat(received_on) if isinstance(received_on, str) else None,
        recorded_by=reader.person(row.username) or row.username,
        administered_by=(
            reader.administered_by(row.session_id)
            if row.kind == "administer" and row.session_id
            else None
        ),
        witness=reader.person(row.witness_username),
        manner=detail.get("manner") if isinstance(detail.get("manner"), str) else None,
        reason=row.reason,
        corrects_seq=row.corrects_seq,
        resolves_seq=row.resolves_seq,
        note=_note(row, by_seq),
    )


def _signed(ug: int) -> str:
    text = arithmetic.mg_text(ug)
    return f"+{text}" if ug > 0 else text


def _note(row: LedgerLine, by_seq: dict[int, LedgerLine]) -> str:
    """The line in words, for what its columns do not say."""
    detail = row.detail or {}
    if row.kind == "correction" and row.corrects_seq is not None:
        corrected = by_seq.get(row.corrects_seq)
        kind = str(detail.get("corrects_kind") or (corrected.kind if corrected else "line"))
        previous = detail.get("previous_ug")
        was = f" from {arithmetic.mg_text(int(previous))} mg" if isinstance(previous, int) else ""
        return (
            f"Corrects line {row.corrects_seq} ({LINE_LABELS.get(kind, kind).lower()}){was} "
            f"to {arithmetic.mg_text(row.amount_ug)} mg"
            + (f" ({row.containers} containers)" if row.containers else "")
            + "; the line corrected is unchanged."
        )
    if row.kind == "count":
        expected = int(detail.get("expected_ug", 0))
        difference = int(detail.get("difference_ug", 0))
        return (
            f"Counted {row.containers or 0} full containers and "
            f"{arithmetic.ml_text(int(detail.get('open_ul', 0)))} mL open; the ledger held "
            f"{arithmetic.mg_text(expected)} mg (difference {_signed(difference)} mg)."
        )
    if row.resolves_seq is not None:
        outcome = detail.get("outcome")
        return f"Resolves the discrepancy of line {row.resolves_seq}" + (
            f" ({outcome})." if outcome else "."
        )
    if row.kind == "resolution" and detail.get("of") == "session":
        return f"Resolves session {row.session_id}'s reconciliation."
    if row.kind == "administer":
        return "The session chart's delivered dose."
    if row.kind == "dispense":
        container = detail.get("container", "bag")
        final = detail.get("final_volume_ul")
        made = f" made up to {arithmetic.ml_text(int(final))} mL" if isinstance(final, int) else ""
        return f"Into a {container}{made} for session {row.session_id}."
    return ""


def _lines_between(session: Session, start: datetime | None, end: datetime) -> list[LedgerLine]:
    rows = session.scalars(select(LedgerLine).order_by(LedgerLine.seq))
    return [r for r in rows if r.at < end and (start is None or r.at >= start)]


def _audited(session: Session, actor: Actor, detail: dict[str, Any]) -> None:
    audit.record(session, actor, "ledger.report", entity="ledger", detail=detail)


# --- the reports -------------------------------------------------------------------------


def us_inventory(
    db: Database,
    actor: Actor,
    on: date,
    time_of_day: TimeOfDay,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> UsInventory:
    """The stock on hand at the opening (the start) or the close (the end) of the clinic date
    ``on``, in the clinic's time zone, per product, lot and location."""
    clock = clock or clinic_clock()
    settings = settings or get_settings()
    with action(db, actor, "ledger.report", entity="ledger") as session:
        _check_date(on, "on", clock)
        if time_of_day not in ("opening", "close"):
            raise InvalidInput("time: 'opening' or 'close' of business.", field="time")
        as_of = clock.start_of(on if time_of_day == "opening" else on + timedelta(days=1))
        reader = _Reader(session, clock)
        rows = _lines_between(session, None, as_of)
        lines = _inventory_lines(rows, reader)
        total = sum(x.balance_ug for x in lines)
        _audited(
            session,
            actor,
            {"report": "us_biennial_inventory", "on": on.isoformat(), "time": time_of_day},
        )
        heading = _heading("us_biennial_inventory", actor, settings, clock)
    opened = ledger_rules().reports["us_biennial_inventory"].requirement("opened-containers")
    return UsInventory(
        heading=heading,
        on=on,
        time_of_day=time_of_day,
        as_of=clock.local(as_of),
        lines=lines,
        total_ug=total,
        total_mg=arithmetic.mg_text(total),
        opened_container_note=(
            "Ketamine is a Schedule III substance: an opened container may be counted or "
            "measured by estimate. The volume printed is the ledger's own (the balance less "
            f"its full containers), not an estimate ({citation_text(opened.source)})."
        ),
    )


def _inventory_lines(rows: Iterable[LedgerLine], reader: _Reader) -> list[InventoryLine]:
    totals: dict[tuple[int, str, int], int] = defaultdict(int)
    expiries: dict[tuple[int, str], date | None] = {}
    for row in rows:
        if row.kind == "receipt":
            expiries.setdefault((row.product_id, row.lot), row.expiry)
        if row.location_id is not None:
            totals[(row.product_id, row.lot, row.location_id)] += row.stock_change_ug
    out: list[InventoryLine] = []
    held_products = set()
    for (product_id, lot, location_id), balance in sorted(totals.items()):
        if balance == 0:
            continue
        held_products.add(product_id)
        product = reader.products[product_id]
        held = arithmetic.as_containers(balance, product.strength_ug_per_ml, product.container_ul)
        out.append(
            _inventory_line(
                product,
                lot=lot,
                expiry=expiries.get((product_id, lot)),
                location=reader.locations[location_id].name,
                full=held.full,
                open_ul=held.open_ul,
                balance=balance,
            )
        )
    # A product the clinic stocks but holds none of is on the inventory as nothing on hand.
    for product in sorted(reader.products.values(), key=lambda p: p.id):
        if product.id not in held_products:
            out.append(
                _inventory_line(
                    product, lot="none on hand", expiry=None, location="-", full=0, open_ul=0
                )
            )
    return out


def _inventory_line(
    product: StockProduct,
    *,
    lot: str,
    expiry: date | None,
    location: str,
    full: int,
    open_ul: int,
    balance: int = 0,
) -> InventoryLine:
    return InventoryLine(
        product_id=product.id,
        substance=product.drug,
        product_name=product.name,
        product_code=product.product_code,
        finished_form=finished_form(product),
        strength_mg_per_ml=arithmetic.mg_text(product.strength_ug_per_ml),
        container=container_text(product),
        lot=lot,
        expiry=expiry,
        location=location,
        full_containers=full,
        opened_container_ml=arithmetic.ml_text(open_ul),
        balance_ug=balance,
        balance_mg=arithmetic.mg_text(balance),
    )


def us_records(
    db: Database,
    actor: Actor,
    date_from: date,
    date_to: date,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> UsRecords:
    """Every ledger line recorded on the clinic dates ``date_from`` to ``date_to`` (both
    included), in order: receipts, dispensings, administrations, wastes, counts, losses,
    thefts, resolutions and corrections."""
    clock = clock or clinic_clock()
    settings = settings or get_settings()
    with action(db, actor, "ledger.report", entity="ledger") as session:
        _check_date(date_from, "from", clock)
        _check_date(date_to, "to", clock)
        if date_from > date_to:
            raise InvalidInput(
                f"from: {date_from} is after to ({date_to}).",
                field="from",
            )
        if (date_to - date_from).days >= MAX_RANGE_DAYS:
            raise InvalidInput(
                f"to: a report covers at most {MAX_RANGE_DAYS} days (two years); ask for "
                "the years one at a time.",
                field="to",
            )
        reader = _Reader(session, clock)
        rows = _lines_between(
            session, clock.start_of(date_from), clock.start_of(date_to + timedelta(days=1))
        )
        entries = _entries(rows, reader)
        _audited(
            session,
            actor,
            {
                "report": "us_dispensing_records",
                "from": date_from.isoformat(),
                "to": date_to.isoformat(),
                "lines": len(entries),
            },
        )
        heading = _heading("us_dispensing_records", actor, settings, clock)
    return UsRecords(heading=heading, date_from=date_from, date_to=date_to, entries=entries)


def uk_register(
    db: Database,
    actor: Actor,
    product_id: int,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> UkRegister:
    """One product's register page: every line of the product in order (all lots and
    locations), each with the product's balance after it."""
    clock = clock or clinic_clock()
    settings = settings or get_settings()
    with action(
        db, actor, "ledger.report", entity="stock_product", entity_id=product_id
    ) as session:
        product = session.get(StockProduct, product_id)
        if product is None:
            raise NotFound(f"There is no product {product_id} in the ledger.", field="product_id")
        reader = _Reader(session, clock)
        rows = list(
            session.scalars(
                select(LedgerLine)
                .where(LedgerLine.product_id == product_id)
                .order_by(LedgerLine.seq)
            )
        )
        balance = 0
        entries: list[RegisterEntry] = []
        for entry in _entries(rows, reader):
            balance += entry.stock_change_ug
            entries.append(
                RegisterEntry(
                    **entry.model_dump(), balance_ug=balance, balance_mg=arithmetic.mg_text(balance)
                )
            )
        _audited(
            session,
            actor,
            {"report": "uk_register", "product_id": product_id, "lines": len(entries)},
        )
        heading = _heading("uk_register", actor, settings, clock)
        return UkRegister(
            heading=heading,
            product_id=product.id,
            drug=product.drug,
            product_name=product.name,
            finished_form=f"{finished_form(product)}, {container_text(product)}",
            entries=entries,
            balance_ug=balance,
            balance_mg=arithmetic.mg_text(balance),
        )
