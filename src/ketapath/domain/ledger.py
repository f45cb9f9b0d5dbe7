"""The controlled-drug ledger's arithmetic: balances, a session's reconciliation, counts.

Pure functions over ledger lines (``Line``); the database, the hash chain and the people
are in ``ketapath.services.ledger``. Every amount is a whole number of micrograms (``ug``),
so sums are exact; a strength is micrograms per mL and a volume is microlitres. Text for
people is in mg to three decimals, and a session reconciles when what was dispensed equals
what the chart says was given plus what was wasted, to the clinic's tolerance (half of
0.1 mg: the difference rounds to 0.0 mg).

What a line does to the stock is its ``stock_change_ug``: a receipt adds, a dispensing, a
loss or a theft takes away, an adjustment after a count moves the balance to what was
counted, and a correction carries the difference between the corrected amount and the
amount it replaces. So a balance is a plain sum, and nothing is ever rewritten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any, Literal, get_args

LineKind = Literal[
    "receipt",
    "dispense",
    "administer",
    "waste",
    "count",
    "adjustment",
    "loss",
    "theft",
    "resolution",
    "correction",
]
LINE_KINDS: tuple[LineKind, ...] = get_args(LineKind)
# Lines whose amount a correction may change, and what the correction does to the stock.
CORRECTABLE: tuple[LineKind, ...] = ("receipt", "dispense", "waste", "loss", "theft")
# A session's states in which the infusion is over (its delivered dose will not change
# unless the chart is corrected): the remainder may be wasted and the session reconciled.
ENDED_STATES = frozenset(
    {"stopped", "completed", "observation", "discharged", "cancelled", "did_not_attend"}
)
# States in which a bag may be dispensed for the session (before and during the infusion).
DISPENSABLE_STATES = frozenset({"scheduled", "checked_in", "running", "paused"})
LINE_LABELS: Mapping[str, str] = {
    "receipt": "Received",
    "dispense": "Dispensed",
    "administer": "Administered",
    "waste": "Wasted",
    "count": "Counted",
    "adjustment": "Balance adjusted",
    "loss": "Loss",
    "theft": "Theft",
    "resolution": "Discrepancy resolved",
    "correction": "Correction",
}
UG_PER_MG = 1000


def ug_from_mg(mg: Decimal | Fraction | int | str) -> int:
    """Milligrams as whole micrograms, rounded half-even (an exact input stays exact)."""
    value = Fraction(Decimal(mg)) if isinstance(mg, str) else Fraction(mg)
    return _round_half_even(value * UG_PER_MG)


def ug_from_ml(ml: Decimal | Fraction, strength_ug_per_ml: int) -> int:
    """The amount in ``ml`` of a solution of ``strength_ug_per_ml``, in whole micrograms."""
    return _round_half_even(Fraction(ml) * strength_ug_per_ml)


def ul_from_ml(ml: Decimal | Fraction) -> int:
    return _round_half_even(Fraction(ml) * 1000)


def _round_half_even(value: Fraction) -> int:
    return round(value)  # Fraction rounds half to even


def mg_text(ug: int, places: int = 3) -> str:
    """Micrograms as milligram text: ``mg_text(12345) == '12.345'``; ``places=1`` for 0.1 mg."""
    quantum = Decimal(1).scaleb(-places)
    return str((Decimal(ug) / UG_PER_MG).quantize(quantum, rounding=ROUND_HALF_EVEN))


def ml_text(ul: int | Fraction, places: int = 2) -> str:
    quantum = Decimal(1).scaleb(-places)
    value = Fraction(ul) / 1000
    return str(
        (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            quantum, rounding=ROUND_HALF_EVEN
        )
    )


def ml_of(ug: int, strength_ug_per_ml: int) -> Fraction:
    """The volume (mL) holding ``ug`` of a solution of ``strength_ug_per_ml``."""
    return Fraction(ug, strength_ug_per_ml)


StockKey = tuple[int, str, int | None]  # product id, lot, location id


@dataclass(frozen=True)
class Line:
    """A ledger line as the arithmetic sees it (the stored row, without its hashes)."""

    seq: int
    at: datetime
    kind: LineKind
    product_id: int
    lot: str
    location_id: int | None
    stock_change_ug: int = 0
    amount_ug: int = 0
    expiry: date | None = None
    containers: int | None = None
    session_id: int | None = None
    patient_id: int | None = None
    username: str = ""
    witness_username: str | None = None
    corrects_seq: int | None = None
    resolves_seq: int | None = None
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> StockKey:
        return (self.product_id, self.lot, self.location_id)


def balances(lines: Iterable[Line]) -> dict[StockKey, int]:
    """The balance (ug) of every product, lot and location the lines touch."""
    totals: dict[StockKey, int] = defaultdict(int)
    for line in lines:
        if line.location_id is None and line.stock_change_ug == 0:
            continue
        totals[line.key] += line.stock_change_ug
    return dict(totals)


def corrected(lines: Sequence[Line]) -> dict[int, Line]:
    """The latest correction of each corrected line, by the corrected line's ``seq``."""
    latest: dict[int, Line] = {}
    for line in lines:
        if line.kind == "correction" and line.corrects_seq is not None:
            latest[line.corrects_seq] = line
    return latest


def effective_amount(line: Line, corrections: Mapping[int, Line]) -> int:
    """A line's amount after its latest correction (its own when uncorrected)."""
    correction = corrections.get(line.seq)
    return line.amount_ug if correction is None else correction.amount_ug


# --- a session's reconciliation ---------------------------------------------------------

Status = Literal[
    "nothing dispensed", "in progress", "awaiting waste", "reconciled", "discrepancy", "resolved"
]


@dataclass(frozen=True)
class Reconciliation:
    """Dispensed against administered plus wasted, for one session.

    ``administered_ug`` is the chart's delivered dose now (never typed), rounded to the
    microgram; ``recorded_administered_ug`` what the last administration line recorded when
    the waste was recorded (None before). ``difference_ug`` is dispensed - administered -
    wasted: positive when drug is unaccounted for, negative when more was given or wasted
    than dispensed.
    """

    status: Status
    dispensed_ug: int
    administered_ug: int
    administered_exact_mg: Fraction
    wasted_ug: int
    difference_ug: int
    tolerance_ug: Fraction
    recorded_administered_ug: int | None
    chart_changed: bool
    resolved_by: Line | None
    session_ended: bool

    @property
    def open_discrepancy(self) -> bool:
        return self.status == "discrepancy"


def reconcile(
    lines: Sequence[Line],
    *,
    delivered_mg: Fraction,
    session_ended: bool,
    tolerance_mg: Decimal,
) -> Reconciliation:
    """Reconcile a session's lines (dispensing, waste, administration, resolutions, and the
    corrections of those) against the dose its chart says was delivered."""
    corrections = corrected(lines)
    dispensed = sum(effective_amount(x, corrections) for x in lines if x.kind == "dispense")
    wasted_lines = [x for x in lines if x.kind == "waste"]
    wasted = sum(effective_amount(x, corrections) for x in wasted_lines)
    administered = ug_from_mg(delivered_mg)
    recorded = [x for x in lines if x.kind == "administer"]
    recorded_ug = recorded[-1].amount_ug if recorded else None
    difference = dispensed - administered - wasted
    tolerance = Fraction(Decimal(tolerance_mg)) * UG_PER_MG
    resolutions = [x for x in lines if x.kind == "resolution"]
    resolved_by = next(
        (x for x in reversed(resolutions) if int(x.detail.get("difference_ug", 0)) == difference),
        None,
    )
    status: Status
    if dispensed == 0 and not any(x.kind == "dispense" for x in lines):
        status = "nothing dispensed"
    elif not session_ended:
        status = "in progress"
    elif not wasted_lines:
        status = "awaiting waste"
    elif abs(difference) < tolerance:
        status = "reconciled"
    elif resolved_by is not None:
        status = "resolved"
    else:
        status = "discrepancy"
    return Reconciliation(
        status=status,
        dispensed_ug=dispensed,
        administered_ug=administered,
        administered_exact_mg=delivered_mg,
        wasted_ug=wasted,
        difference_ug=difference,
        tolerance_ug=tolerance,
        recorded_administered_ug=recorded_ug,
        chart_changed=recorded_ug is not None and recorded_ug != administered,
        resolved_by=resolved_by if status == "resolved" else None,
        session_ended=session_ended,
    )


# --- counts ------------------------------------------------------------------------------


def open_count_discrepancies(lines: Sequence[Line]) -> list[Line]:
    """Count lines whose count differed from the balance and that nothing has resolved yet."""
    resolved = {x.resolves_seq for x in lines if x.resolves_seq is not None}
    return [
        x
        for x in lines
        if x.kind == "count"
        and int(x.detail.get("difference_ug", 0)) != 0
        and x.seq not in resolved
    ]


def last_counted(lines: Iterable[Line]) -> dict[StockKey, datetime]:
    """When each product, lot and location was last counted."""
    last: dict[StockKey, datetime] = {}
    for line in lines:
        if line.kind == "count":
            last[line.key] = max(last.get(line.key, line.at), line.at)
    return last


ExpiryStatus = Literal["expired", "near expiry", "in date", "no expiry recorded"]


def expiry_status(expiry: date | None, today: date, near_days: int) -> ExpiryStatus:
    """Whether a lot is past its expiry (expired on the day after its expiry date), near it."""
    if expiry is None:
        return "no expiry recorded"
    if expiry < today:
        return "expired"
    if expiry <= today + timedelta(days=near_days):
        return "near expiry"
    return "in date"


def count_due(last: date | None, today: date, interval_days: int) -> bool:
    """Whether a count is due: never counted, or last counted (on the clinic's date
    ``last``) ``interval_days`` or more days before ``today``."""
    return last is None or (today - last).days >= interval_days


@dataclass(frozen=True)
class Containers:
    """A balance as whole containers and what is left in an opened one."""

    full: int
    open_ul: int


def as_containers(ug: int, strength_ug_per_ml: int, container_ul: int) -> Containers:
    """The balance ``ug`` as full containers plus the volume (uL) of an opened one."""
    if ug <= 0:
        return Containers(0, 0)
    ul = Fraction(ug * 1000, strength_ug_per_ml)
    full = int(ul // container_ul)
    return Containers(full, _round_half_even(ul - full * container_ul))
