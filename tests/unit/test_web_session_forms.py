"""The chart's forms: typed text to a chart entry, every problem named beside its field in
plain words, and an entry back to its form (for a correction) without changing it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketapath.services.clock import ClinicClock
from ketapath.services.errors import InvalidInput
from ketapath.web.session_forms import (
    FormState,
    add_service_error,
    chart_time,
    entry_from_form,
    form_values,
)

DAY = date(2026, 12, 1)
CLOCK = ClinicClock(zone=UTC, fixed=datetime.combine(DAY, time(12, 0), tzinfo=UTC))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("10:42", datetime(2026, 12, 1, 10, 42, tzinfo=UTC)),
        ("1042", datetime(2026, 12, 1, 10, 42, tzinfo=UTC)),
        (" 9:05 ", datetime(2026, 12, 1, 9, 5, tzinfo=UTC)),
        ("2026-11-30 23:50", datetime(2026, 11, 30, 23, 50, tzinfo=UTC)),
        ("", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_a_typed_time_is_read_on_the_sessions_day_in_the_clinics_zone(
    typed: str, expected: datetime
) -> None:
    assert chart_time(typed, DAY, CLOCK) == expected


@pytest.mark.parametrize("typed", ["25:00", "10:61", "ten", "10.42", "2026-13-01 10:00"])
def test_a_time_that_is_not_one_is_refused_in_plain_words(typed: str) -> None:
    with pytest.raises(ValueError, match=r"^(A time as HH:MM|Not a time of day)"):
        chart_time(typed, DAY, CLOCK)


def test_every_problem_of_a_vitals_row_is_named_at_once_beside_its_field() -> None:
    form = {"heart_rate": "7.5", "systolic": "900", "diastolic": "", "spo2": "x", "time": "99"}
    entry, state = entry_from_form("vitals", form, DAY, CLOCK)
    assert entry is None
    assert state.errors["heart_rate"] == "A whole number, please."
    assert state.errors["systolic"].startswith("At most ")
    assert state.errors["spo2"] == "A whole number, please."
    assert state.errors["time"].startswith("A time as HH:MM")
    assert "diastolic" not in state.errors  # left blank: not measured
    assert state.values["systolic"] == "900"  # what was typed is kept


def test_a_note_over_its_bound_is_refused_not_cut() -> None:
    entry, state = entry_from_form("note", {"note": "x" * 2001}, DAY, CLOCK)
    assert entry is None and state.errors["note"] == "At most 2000 characters."
    assert state.values["note"] == "x" * 2001


def test_a_diastolic_above_the_systolic_is_named_beside_the_diastolic() -> None:
    entry, state = entry_from_form("vitals", {"systolic": "80", "diastolic": "120"}, DAY, CLOCK)
    assert entry is None and "Diastolic is above systolic" in state.errors["diastolic"]


def test_an_empty_vitals_row_asks_for_a_reading() -> None:
    entry, state = entry_from_form("vitals", {}, DAY, CLOCK)
    assert entry is None and "at least one value" in state.message


def test_a_service_refusal_goes_beside_the_field_it_names_without_the_fields_code_name() -> None:
    state = FormState(kind="rate_change")
    add_service_error(
        state, InvalidInput("rate: 12 mL/h is not a rate of the order", field="rate_ml_per_h")
    )
    add_service_error(
        state, InvalidInput("occurred_at: 13:00 is in the future.", field="occurred_at")
    )
    add_service_error(state, InvalidInput("programme: no pump", field="programme"))
    assert state.errors["rate_ml_per_h"] == "rate: 12 mL/h is not a rate of the order"
    assert state.errors["time"] == "13:00 is in the future."
    assert state.message == "No pump"


READING = st.one_of(st.none(), st.integers(min_value=40, max_value=200))


@given(
    heart_rate=READING,
    systolic=st.one_of(st.none(), st.integers(min_value=100, max_value=200)),
    diastolic=st.one_of(st.none(), st.integers(min_value=40, max_value=99)),
    spo2=st.one_of(st.none(), st.integers(min_value=70, max_value=100)),
    sedation=st.one_of(st.none(), st.integers(min_value=-5, max_value=4)),
    minute=st.integers(min_value=0, max_value=11 * 60),
)
def test_a_vitals_entry_reads_back_from_its_correction_form_unchanged(
    heart_rate: int | None,
    systolic: int | None,
    diastolic: int | None,
    spo2: int | None,
    sedation: int | None,
    minute: int,
) -> None:
    typed = {
        "heart_rate": heart_rate,
        "systolic": systolic,
        "diastolic": diastolic,
        "spo2": spo2,
        "sedation": sedation,
    }
    form = {k: str(v) for k, v in typed.items() if v is not None}
    form["time"] = f"{minute // 60:02d}:{minute % 60:02d}"
    entry, _ = entry_from_form("vitals", form, DAY, CLOCK)
    if entry is None:  # nothing measured: refused, never saved empty
        assert all(v is None for v in typed.values())
        return
    again, _ = entry_from_form("vitals", form_values(entry, DAY, CLOCK, None), DAY, CLOCK)
    assert again == entry


@given(
    effect=st.sampled_from(["dissociation", "hallucination", "headache", "other"]),
    severity=st.sampled_from(["mild", "moderate", "severe"]),
    troublesome=st.sampled_from(["", "yes", "no"]),
)
def test_a_side_effect_reads_back_from_its_correction_form_unchanged(
    effect: str, severity: str, troublesome: str
) -> None:
    form = {"effect": effect, "severity": severity, "troublesome": troublesome, "time": "10:00"}
    if effect == "other":
        form["description"] = "tingling lips"
    if effect == "dissociation":
        form["cadss6_total"] = "7"
    entry, state = entry_from_form("side_effect", form, DAY, CLOCK)
    assert entry is not None, state
    again, _ = entry_from_form("side_effect", form_values(entry, DAY, CLOCK, None), DAY, CLOCK)
    assert again == entry
