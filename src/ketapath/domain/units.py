"""Units of user text ("mg", "25 mcg/h", "1 mg/mL"), parsed once at the edge with pint.

pint is imported, and its registry built, only when a unit is parsed (it takes ~0.3 s, which
a command that parses no unit must not pay).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ketapath.domain.errors import InvalidInput


@cache
def _registry() -> Any:
    import pint

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


# Units clinicians write on medicine lists, recognised without building pint's registry (which
# takes ~0.4 s: screening a patient file must not pay it). Each is one pint parses with the
# registry below (tests/unit/test_units.py checks it), so this set accepts nothing pint would
# refuse; anything else is parsed by pint as before.
COMMON_UNITS = frozenset(
    [
        "mg",
        "g",
        "mcg",
        "ug",
        "ng",
        "kg",
        "mL",
        "ml",
        "L",
        "l",
        "mg/h",
        "mcg/h",
        "ug/h",
        "mg/d",
        "mg/day",
        "mcg/d",
        "mcg/day",
        "mg/kg",
        "mg/kg/h",
        "mcg/kg",
        "mcg/kg/h",
        "mg/mL",
        "mg/ml",
        "mcg/mL",
        "mL/h",
        "ml/h",
        "unit",
        "units",
        "U",
        "mmol",
    ]
)


def check_unit(text: str) -> None:
    """Raise InvalidInput unless ``text`` is a unit (common units without loading pint)."""
    if _clean(text) not in COMMON_UNITS:
        parse_unit(text)


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
    import pint

    quantity = parse_quantity(text)
    try:
        return float(quantity.to(unit).magnitude)
    except pint.errors.DimensionalityError as exc:
        raise InvalidInput(f"{text!r} cannot be expressed in {unit}", field="quantity") from exc
