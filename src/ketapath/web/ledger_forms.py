"""The controlled-drug ledger's forms (issue 11): posted text to the services' typed inputs,
every problem in words beside its field (``web.forms.FormErrors``), what was typed kept
(never a password), and the "Controlled drug" card of the nurse's session page.

A form's fields have ids ``<form>-<field>`` (``receipt-lot``, ``waste-witness_password``); a
form shown once per row carries the row in its name (``resolve-count-12``). A lot is chosen
as one value naming its product, location and lot (``stock_choice``), so a problem the
service names with ``product_id``, ``location_id`` or ``lot`` is shown beside that choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from ketapath.domain import ledger as arithmetic
from ketapath.services import ledger
from ketapath.services.clock import ClinicClock
from ketapath.services.ledger import SessionLedgerView, StockLineView, StockView
from ketapath.services.permissions import Actor
from ketapath.services.sessions import SessionDetail
from ketapath.store.db import Database
from ketapath.web.forms import FormErrors, validated

# Each form's fields, in the form's order, with the words the page and its messages use.
LABELS: dict[str, dict[str, str]] = {
    "product": {
        "name": "Product name",
        "strength_mg_per_ml": "Strength (mg/mL)",
        "container_ml": "Container volume (mL)",
        "form": "Form",
        "manufacturer": "Manufacturer",
        "product_code": "Product code (NDC)",
    },
    "location": {"name": "Location name", "description": "Description"},
    "receipt": {
        "product_id": "Product",
        "location_id": "Storage location",
        "lot": "Lot",
        "expiry": "Expiry date",
        "containers": "Containers received",
        "received_on": "Received on",
        "supplier_name": "Supplier",
        "supplier_address": "Supplier's address",
        "supplier_registration": "Supplier's registration number",
        "invoice_number": "Invoice or order form number",
    },
    "count": {
        "stock": "Lot and location",
        "full_containers": "Full containers",
        "open_ml": "Volume in the opened container (mL)",
        "witness_username": "Witness's user name",
        "witness_password": "Witness's password",
    },
    "loss": {
        "kind": "Loss or theft",
        "stock": "Lot and location",
        "volume_ml": "Volume (mL)",
        "reason": "What happened",
    },
    "resolve-session": {"reason": "Reason"},
    "resolve-count": {"outcome": "Outcome", "reason": "Reason"},
    "correct": {
        "containers": "Containers",
        "volume_ml": "Volume (mL)",
        "amount_mg": "Amount (mg)",
        "reason": "Reason for the correction",
    },
    "dispense": {
        "stock": "Lot and location",
        "volume_ml": "Volume drawn up (mL)",
        "container": "Bag or syringe",
        "diluent": "Diluent",
        "final_volume_ml": "Final volume (mL)",
    },
    "waste": {
        "volume_ml": "Volume left in the bag (mL)",
        "manner": "How it was wasted",
        "witness_username": "Witness's user name",
        "witness_password": "Witness's password",
    },
}
# The service's names for what the form chooses as one lot-and-location.
STOCK_PARTS = ("product_id", "location_id", "lot")
NUMBER_FIELDS = frozenset(
    {
        "strength_mg_per_ml",
        "container_ml",
        "containers",
        "full_containers",
        "open_ml",
        "volume_ml",
        "final_volume_ml",
        "amount_mg",
    }
)
SECRET_FIELDS = frozenset({"witness_password", "password"})
LOSS_KINDS = (("loss", "Loss"), ("theft", "Theft"))
COUNT_OUTCOMES = (
    ("loss", "Loss: the stock is gone"),
    ("theft", "Theft"),
    ("recording error", "Recording error: the ledger was wrong (the balance becomes the count)"),
    ("count error", "Count error: nothing moves; count again"),
)
CONTAINERS = (("bag", "Bag"), ("syringe", "Syringe"))
DILUENTS = (
    ("sodium chloride 0.9%", "Sodium chloride 0.9%"),
    ("glucose 5%", "Glucose 5%"),
    ("none", "None (undiluted)"),
)
FORMS = (("vial", "Vial"), ("ampoule", "Ampoule"), ("prefilled syringe", "Prefilled syringe"))


@dataclass
class PostedForm:
    """A ledger form shown again after a refusal: which one, what was typed, its problems."""

    name: str
    values: dict[str, str]
    errors: FormErrors
    status_code: int = 422
    extra: dict[str, Any] = field(default_factory=dict)


def form_errors(kind: str, name: str | None = None) -> FormErrors:
    """The problems of form ``name`` (of kind ``kind``), by its fields' ids."""
    name = name or kind
    labels = LABELS[kind]

    def where(path: str) -> str:
        first = path.split(".")[0]
        if first in STOCK_PARTS and "stock" in labels:
            first = "stock"
        return f"{name}-{first}" if first in labels else ""

    return FormErrors({f"{name}-{k}": v for k, v in labels.items()}, where=where)


def kept(form: Mapping[str, str]) -> dict[str, str]:
    """What was typed, to show again (never a password or the form's token)."""
    return {k: v for k, v in form.items() if k not in SECRET_FIELDS and k != "csrf_token"}


def stock_choice(line: StockLineView) -> str:
    """One value naming a lot in a location (a lot has no ':')."""
    return f"{line.product.id}:{line.location.id}:{line.lot}"


def stock_options(lines: list[StockLineView]) -> list[tuple[str, str]]:
    """The choices of a lot-and-location select, in words."""
    return [(stock_choice(x), stock_label(x)) for x in lines]


def _stock_parts(value: str) -> dict[str, str]:
    parts = value.strip().split(":", 2)
    if len(parts) != 3:
        return {}
    return dict(zip(STOCK_PARTS, parts, strict=True))


def request_data(kind: str, form: Mapping[str, str], **fixed: Any) -> dict[str, Any]:
    """The posted form as the service's input: its fields trimmed, empty ones left out (so a
    default applies or 'required' is said), a decimal comma read as a point, a lot choice
    split into its product, location and lot."""
    data: dict[str, Any] = {}
    for name in LABELS[kind]:
        raw = form.get(name, "")
        value = raw if name in SECRET_FIELDS else raw.strip()
        if name == "stock":
            chosen = _stock_parts(value)
            if value and not chosen:
                chosen = {"product_id": "?"}
            data.update(chosen)
            continue
        if name in NUMBER_FIELDS:
            value = value.replace(",", ".")
        if value != "":
            data[name] = value
    data.update(fixed)
    return data


def checked(
    kind: str, model: type[Any], form: Mapping[str, str], name: str | None = None, **fixed: Any
) -> tuple[Any, FormErrors]:
    """The form validated as ``model`` (None and the problems when it is not)."""
    errors = form_errors(kind, name)
    data = request_data(kind, form, **fixed)
    if "stock" in LABELS[kind] and not any(k in data for k in STOCK_PARTS):
        errors.add(f"{name or kind}-stock", f"{LABELS[kind]['stock']} is required.")
    found = validated(errors, model, data)
    return (found if not errors else None), errors


def usable(view: StockView) -> list[StockLineView]:
    """Lots that may be dispensed: something left and not expired."""
    return [x for x in view.lines if x.balance_mg > 0 and x.expiry_status != "expired"]


def stock_label(line: StockLineView) -> str:
    expiry = f", expires {line.expiry.isoformat()}" if line.expiry else ""
    return (
        f"{line.product.name}, lot {line.lot}{expiry}, {line.location.name}: "
        f"{line.balance_ml:g} mL ({line.balance_mg:g} mg)"
    )


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value > 0 else None


def bag_concentration(
    view: StockView | None, values: Mapping[str, str]
) -> tuple[float, float, float] | None:
    """The concentration (mg/mL) of the bag the dispensing form describes, with the drug it
    holds (mg) and the product's strength, when the form names a lot and both volumes."""
    if view is None:
        return None
    chosen = _stock_parts(values.get("stock", ""))
    volume, final = (
        _decimal(values.get("volume_ml", "")),
        _decimal(values.get("final_volume_ml", "")),
    )
    if not chosen or volume is None or final is None or volume > 10_000 or final > 10_000:
        return None
    product = next((p for p in view.products if str(p.id) == chosen["product_id"]), None)
    if product is None:
        return None
    strength = arithmetic.ug_from_mg(Decimal(repr(product.strength_mg_per_ml)))
    amount_ug = arithmetic.ug_from_ml(volume, strength)
    concentration = Fraction(amount_ug, 1000) / Fraction(final)
    return float(concentration), amount_ug / 1000, product.strength_mg_per_ml


# ------------------------------------------------------------------ the session page's card


@dataclass(frozen=True)
class SessionCard:
    """What the "Controlled drug" card of a session page shows."""

    ledger: SessionLedgerView
    stock: list[StockLineView]
    may_dispense: bool
    may_waste: bool
    may_manage: bool
    programme_mg_per_ml: float | None
    delivered_mg: float


def session_card(
    db: Database,
    actor: Actor,
    detail: SessionDetail,
    clock: ClinicClock,
    posted: PostedForm | None = None,
) -> dict[str, Any]:
    """The card's context (``ledger_card`` None for a role that may not read the ledger)."""
    if not actor.may("ledger.read"):
        return {"ledger_card": None}
    view = ledger.session_ledger(db, actor, detail.id, clock=clock)
    state = detail.chart.state
    may_dispense = actor.may("ledger.dispense") and state in arithmetic.DISPENSABLE_STATES
    may_waste = (
        actor.may("ledger.waste")
        and state in arithmetic.ENDED_STATES
        and view.reconciliation.status == "awaiting waste"
    )
    stock = ledger.stock(db, actor, clock=clock) if may_dispense else None
    values = posted.values if posted is not None and posted.name == "dispense" else {}
    programme = detail.programme
    return {
        "ledger_card": SessionCard(
            ledger=view,
            stock=usable(stock) if stock is not None else [],
            may_dispense=may_dispense,
            may_waste=may_waste,
            may_manage=actor.may("ledger.manage"),
            programme_mg_per_ml=programme.concentration_mg_per_ml if programme else None,
            delivered_mg=view.reconciliation.administered_mg,
        ),
        "posted": posted,
        "bag": bag_concentration(stock, values),
        "stock_options": stock_options,
        "containers": CONTAINERS,
        "diluents": DILUENTS,
    }
