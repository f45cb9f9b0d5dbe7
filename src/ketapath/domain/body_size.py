"""Body-size scalars for the dosing weight (actual, ideal, adjusted).

Coefficients come from knowledge/data/body_size.yaml. A dosing weight is never above the
actual weight: when the ideal or adjusted weight would exceed it, the actual weight is used
and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketapath.domain.errors import InvalidInput
from ketapath.domain.orders import WeightBasis
from ketapath.knowledge.base import Source
from ketapath.knowledge.clinical import Knowledge

CM_PER_INCH = 2.54
INCHES_IN_FIVE_FEET = 60.0


@dataclass(frozen=True)
class DosingWeight:
    weight_kg: float
    basis: WeightBasis
    actual_weight_kg: float
    ideal_weight_kg: float | None
    note: str
    source: Source | None  # None for the actual weight (nothing is derived)


def ideal_body_weight_kg(height_cm: float, sex: str, kb: Knowledge) -> tuple[float, Source]:
    """Devine ideal body weight; raises if the result is not a positive weight."""
    formula = next(f for f in kb.body_size.entries if f.id.startswith("ideal-") and f.sex == sex)
    inches_over = height_cm / CM_PER_INCH - INCHES_IN_FIVE_FEET
    ibw = formula.base_kg + formula.per_inch_over_60_kg * inches_over
    if ibw <= 0:
        raise InvalidInput(
            f"height {height_cm:g} cm gives no valid ideal body weight; dose on the actual "
            "body weight (weight basis: actual)",
            field="height_cm",
        )
    return ibw, formula.source


def dosing_weight(
    actual_kg: float,
    basis: WeightBasis,
    kb: Knowledge,
    *,
    height_cm: float | None = None,
    sex: str | None = None,
) -> DosingWeight:
    """The weight that per-kg doses are multiplied by, with its basis and source."""
    if not actual_kg > 0:
        raise InvalidInput(
            f"weight must be greater than 0 kg (got {actual_kg:g})", field="weight_kg"
        )
    if basis == "actual":
        return DosingWeight(
            actual_kg,
            "actual",
            actual_kg,
            None,
            "actual body weight",
            None,
        )
    if height_cm is None or sex not in ("male", "female"):
        raise InvalidInput(
            f"the {basis} body weight needs height (cm) and sex (male or female)",
            field="height_cm" if height_cm is None else "sex",
        )
    ibw, ibw_source = ideal_body_weight_kg(height_cm, sex, kb)
    if basis == "ideal":
        target, source = ibw, ibw_source
        label = f"ideal body weight (Devine) {ibw:.1f} kg"
    else:
        adj = next(f for f in kb.body_size.entries if f.id == "adjusted")
        target = ibw + adj.fraction_of_excess * (actual_kg - ibw)
        source = Source(
            cite=adj.source.cite + ibw_source.cite,
            note=adj.source.note,
            provenance=adj.source.provenance,
        )
        label = (
            f"adjusted body weight {target:.1f} kg = ideal {ibw:.1f} + "
            f"{adj.fraction_of_excess:g} x (actual {actual_kg:g} - ideal)"
        )
    if target >= actual_kg:
        return DosingWeight(
            actual_kg,
            basis,
            actual_kg,
            ibw,
            f"{label} is not below the actual weight; the actual weight {actual_kg:g} kg is used",
            source,
        )
    return DosingWeight(target, basis, actual_kg, ibw, label, source)
