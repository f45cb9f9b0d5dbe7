"""Units of user text ("mg", "25 mcg/h", "1 mg/mL"), parsed once at the edge with pint."""

from __future__ import annotations

from functools import cache
from typing import Any

import pint

from ketapath.domain.errors import InvalidInput


@cache
def _registry() -> Any:
    ureg: Any = pint.UnitRegistry()
    ureg.define("mcg = microgram")
    ureg.define("unit = [] = U")
    return ureg


def parse_unit(text: str) -> Any:
    """Parse a unit such as 'mg', 'mcg/h', 'mg/kg/h' or 'mL'; raise InvalidInput if unknown."""
    cleaned = text.strip().replace("µ", "u").replace("μ", "u")
    if not cleaned:
        raise InvalidInput("empty unit", field="unit")
    try:
        return _registry().parse_units(cleaned)
    except (
        pint.errors.UndefinedUnitError,
        pint.errors.DefinitionSyntaxError,
        ValueError,
        AttributeError,
        TypeError,
    ) as exc:
        raise InvalidInput(f"unknown unit {text!r}", field="unit") from exc


def parse_quantity(text: str) -> Any:
    """Parse a quantity such as '25 mcg/h' or '1 mg/mL'."""
    try:
        return _registry().Quantity(text.strip().replace("µ", "u").replace("μ", "u"))
    except (
        pint.errors.UndefinedUnitError,
        pint.errors.DefinitionSyntaxError,
        ValueError,
        AttributeError,
        TypeError,
    ) as exc:
        raise InvalidInput(f"not a quantity with a unit: {text!r}", field="quantity") from exc


def to_magnitude(text: str, unit: str) -> float:
    """The magnitude of a quantity in the given unit ('1 g' in 'mg' is 1000)."""
    quantity = parse_quantity(text)
    try:
        return float(quantity.to(unit).magnitude)
    except pint.errors.DimensionalityError as exc:
        raise InvalidInput(f"{text!r} cannot be expressed in {unit}", field="quantity") from exc
