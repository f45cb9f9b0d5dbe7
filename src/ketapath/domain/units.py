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


# pint parses unit text with Python's tokenizer and signals malformed text with many exception
# types (AssertionError for "mg//", tokenize.TokenError for ")" ...). Every one of them means
# "this is not a unit" to a clinician, so any exception from the parser is reported as such.
_PARSE_ERRORS = (Exception,)


def _clean(text: str) -> str:
    return text.strip().replace("µ", "u").replace("μ", "u")


def parse_unit(text: str) -> Any:
    """Parse a unit such as 'mg', 'mcg/h', 'mg/kg/h' or 'mL'; raise InvalidInput if unknown."""
    cleaned = _clean(text)
    if not cleaned:
        raise InvalidInput("empty unit", field="unit")
    try:
        return _registry().parse_units(cleaned)
    except _PARSE_ERRORS as exc:
        raise InvalidInput(f"unknown unit {text!r}", field="unit") from exc


def parse_quantity(text: str) -> Any:
    """Parse a quantity such as '25 mcg/h' or '1 mg/mL'."""
    try:
        return _registry().Quantity(_clean(text))
    except _PARSE_ERRORS as exc:
        raise InvalidInput(f"not a quantity with a unit: {text!r}", field="quantity") from exc


def to_magnitude(text: str, unit: str) -> float:
    """The magnitude of a quantity in the given unit ('1 g' in 'mg' is 1000)."""
    quantity = parse_quantity(text)
    try:
        return float(quantity.to(unit).magnitude)
    except pint.errors.DimensionalityError as exc:
        raise InvalidInput(f"{text!r} cannot be expressed in {unit}", field="quantity") from exc
