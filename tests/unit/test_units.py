from __future__ import annotations

import pytest

from ketapath.domain.errors import InvalidInput
from ketapath.domain.units import parse_unit, to_magnitude


@pytest.mark.parametrize("unit", ["mg", "mcg/h", "µg/h", "mg/kg/h", "mL", "mg/mL"])
def test_clinical_units_parse(unit: str) -> None:
    parse_unit(unit)


def test_quantities_convert_between_units() -> None:
    assert to_magnitude("25 mcg/h", "mg/h") == pytest.approx(0.025)
    assert to_magnitude("1 g", "mg") == 1000


@pytest.mark.parametrize("bad", ["", "zorgs", "mg//"])
def test_unknown_units_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_unit(bad)


def test_a_quantity_in_the_wrong_dimension_is_refused() -> None:
    with pytest.raises(InvalidInput, match="cannot be expressed"):
        to_magnitude("5 mL", "mg")
