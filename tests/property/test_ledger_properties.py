"""The ledger's arithmetic under generated input: conversions are exact or rounded half-even
to the microgram, balances are sums, a session reconciles exactly when the waste is what
the chart left, corrections move the stock by their difference only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from ketapath.domain import ledger
from ketapath.domain.ledger import Line

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TOLERANCE = Decimal("0.05")

micrograms = st.integers(min_value=0, max_value=10**10)
strengths = st.integers(min_value=1, max_value=500_000)  # up to 500 mg/mL
volumes = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2, allow_nan=False)
doses = st.fractions(min_value=0, max_value=10_000, max_denominator=10**6)


def line(seq: int, kind: str, **values: object) -> Line:
    fields: dict[str, object] = {"product_id": 1, "lot": "L1", "location_id": 1, **values}
    return Line(seq=seq, at=AT, kind=kind, **fields)  # type: ignore[arg-type]


@given(micrograms)
def test_mg_text_and_back_is_the_same_number_of_micrograms(ug: int) -> None:
    assert ledger.ug_from_mg(ledger.mg_text(ug)) == ug


@given(volumes, strengths)
def test_a_volume_of_a_strength_is_the_product_to_the_nearest_microgram(
    ml: Decimal, strength: int
) -> None:
    ug = ledger.ug_from_ml(ml, strength)
    exact = Fraction(ml) * strength
    assert abs(ug - exact) <= Fraction(1, 2)
    if exact.denominator == 1:
        assert ug == exact


@given(st.lists(st.integers(min_value=-(10**9), max_value=10**9), max_size=30))
def test_a_balance_is_the_sum_of_the_stock_changes(changes: list[int]) -> None:
    lines = [line(i + 1, "adjustment", stock_change_ug=c) for i, c in enumerate(changes)]
    assert ledger.balances(lines).get((1, "L1", 1), 0) == sum(changes)


@given(
    dispensed=st.integers(min_value=1, max_value=10**8),
    delivered=doses,
)
def test_a_waste_of_exactly_what_the_chart_left_reconciles(
    dispensed: int, delivered: Fraction
) -> None:
    administered = ledger.ug_from_mg(delivered)
    left = dispensed - administered
    lines = [
        line(1, "dispense", amount_ug=dispensed, stock_change_ug=-dispensed, session_id=1),
        line(2, "waste", amount_ug=max(left, 0), location_id=None, session_id=1),
    ]
    result = ledger.reconcile(
        lines, delivered_mg=delivered, session_ended=True, tolerance_mg=TOLERANCE
    )
    assert result.difference_ug == min(left, 0)
    assert (result.status == "reconciled") == (abs(min(left, 0)) < 50)


@given(
    dispensed=st.integers(min_value=1, max_value=10**8),
    wasted=st.integers(min_value=0, max_value=10**8),
    delivered=doses,
)
def test_the_status_is_a_discrepancy_exactly_when_the_difference_reaches_the_tolerance(
    dispensed: int, wasted: int, delivered: Fraction
) -> None:
    lines = [
        line(1, "dispense", amount_ug=dispensed, session_id=1),
        line(2, "waste", amount_ug=wasted, location_id=None, session_id=1),
    ]
    result = ledger.reconcile(
        lines, delivered_mg=delivered, session_ended=True, tolerance_mg=TOLERANCE
    )
    difference = dispensed - ledger.ug_from_mg(delivered) - wasted
    assert result.difference_ug == difference
    assert result.status == ("reconciled" if abs(difference) < 50 else "discrepancy")


@given(
    first=st.integers(min_value=1, max_value=10**7),
    second=st.integers(min_value=1, max_value=10**7),
)
def test_a_corrected_dispensing_counts_once_at_its_corrected_amount(
    first: int, second: int
) -> None:
    lines = [
        line(1, "dispense", amount_ug=first, stock_change_ug=-first, session_id=1),
        line(
            2,
            "correction",
            amount_ug=second,
            stock_change_ug=-(second - first),
            corrects_seq=1,
            session_id=1,
        ),
    ]
    result = ledger.reconcile(
        lines, delivered_mg=Fraction(0), session_ended=False, tolerance_mg=TOLERANCE
    )
    assert result.dispensed_ug == second
    assert ledger.balances(lines)[(1, "L1", 1)] == -second


@given(
    balance=st.integers(min_value=0, max_value=10**9),
    strength=strengths,
    container=st.integers(min_value=100, max_value=250_000),
)
def test_a_balance_as_containers_holds_the_same_volume(
    balance: int, strength: int, container: int
) -> None:
    held = ledger.as_containers(balance, strength, container)
    assert 0 <= held.open_ul <= container
    volume = Fraction(balance * 1000, strength)
    assert abs(held.full * container + held.open_ul - volume) <= Fraction(1, 2)


@given(st.dates(), st.integers(min_value=-800, max_value=800), st.integers(1, 3650))
def test_expiry_status_is_expired_only_after_the_expiry_date(
    today: date, offset: int, near: int
) -> None:
    try:
        expiry = today + timedelta(days=offset)
    except OverflowError:
        return
    status = ledger.expiry_status(expiry, today, near)
    assert (status == "expired") == (offset < 0)
    assert (status == "near expiry") == (0 <= offset <= near)


def test_a_session_in_progress_or_without_waste_is_not_yet_reconciled() -> None:
    dispensed = [line(1, "dispense", amount_ug=200_000, session_id=1)]
    running = ledger.reconcile(
        dispensed, delivered_mg=Fraction(50), session_ended=False, tolerance_mg=TOLERANCE
    )
    assert running.status == "in progress"
    stopped = ledger.reconcile(
        dispensed, delivered_mg=Fraction(50), session_ended=True, tolerance_mg=TOLERANCE
    )
    assert stopped.status == "awaiting waste"
    assert (
        ledger.reconcile(
            [], delivered_mg=Fraction(0), session_ended=True, tolerance_mg=TOLERANCE
        ).status
        == "nothing dispensed"
    )


def test_a_resolution_closes_only_the_difference_it_was_written_for() -> None:
    lines = [
        line(1, "dispense", amount_ug=200_000, session_id=1),
        line(2, "waste", amount_ug=100_000, location_id=None, session_id=1),
        line(3, "resolution", detail={"difference_ug": 50_000}, session_id=1),
    ]
    resolved = ledger.reconcile(
        lines, delivered_mg=Fraction(50), session_ended=True, tolerance_mg=TOLERANCE
    )
    assert resolved.status == "resolved"
    changed = ledger.reconcile(
        lines, delivered_mg=Fraction(60), session_ended=True, tolerance_mg=TOLERANCE
    )
    assert changed.status == "discrepancy"  # the chart changed: the old resolution no longer fits


def test_a_count_discrepancy_stays_open_until_a_line_resolves_it() -> None:
    count = line(1, "count", amount_ug=900, detail={"difference_ug": -100})
    assert ledger.open_count_discrepancies([count]) == [count]
    theft = line(2, "theft", stock_change_ug=-100, resolves_seq=1)
    assert ledger.open_count_discrepancies([count, theft]) == []
    matching = line(3, "count", amount_ug=800, detail={"difference_ug": 0})
    assert ledger.open_count_discrepancies([matching]) == []
