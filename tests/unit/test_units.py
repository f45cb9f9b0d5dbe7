from __future__ import annotations

import pytest

from ketapath.domain.errors import InvalidInput
from ketapath.domain.units import COMMON_UNITS, check_unit, parse_unit, to_magnitude


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


@pytest.mark.parametrize("unit", sorted(COMMON_UNITS))
def test_every_unit_recognised_without_pint_is_one_pint_parses(unit: str) -> None:
    parse_unit(unit)  # the fast path may accept nothing pint would refuse


def test_a_common_unit_is_checked_without_loading_pint() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from ketapath.domain.units import check_unit; check_unit('mcg/h'); "
        "print('pint' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("bad", ["", "zorgs", "mg//", "MG/"])
def test_check_unit_refuses_what_parse_unit_refuses(bad: str) -> None:
    with pytest.raises(InvalidInput):
        check_unit(bad)
