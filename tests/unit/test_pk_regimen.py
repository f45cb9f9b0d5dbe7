"""Regimens: construction from text, orders and records; validation; pauses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketapath.domain.orders import Course, RateStep, SessionOrder
from ketapath.pk import Bolus, Infusion, PkInputError, Regimen


def _course(route: str = "iv") -> Course:
    steps = (
        RateStep(0, 60, 10.0, 1.0, 0.14, 1.0),
        RateStep(60, 240, 20.0, 2.0, 0.28, 6.0),
    )
    sessions = tuple(
        SessionOrder(
            number=d + 1,
            day=d,
            start_offset_min=d * 1440 + 540,
            bolus_mg=5.0 * (d == 0),
            bolus_ml=0.5 * (d == 0),
            steps=steps,
            total_mg=65.0,
            infusion_volume_ml=7.0,
        )
        for d in range(3)
    )
    return Course("p", "P", route, "clinic", 10.0, 70.0, "actual", 70.0, sessions, 195.0)  # type: ignore[arg-type]


def test_a_course_becomes_absolute_infusions_and_a_bolus_at_the_session_start() -> None:
    regimen = Regimen.from_course(_course())
    assert regimen.boluses == (Bolus(540.0, 5.0),)
    assert Infusion(1440 + 540 + 60, 1440 + 540 + 240, 20.0) in regimen.infusions
    assert len(regimen.infusions) == 6
    assert regimen.total_mg == pytest.approx(5 + 3 * (10 + 60))


def test_a_subcutaneous_course_keeps_its_route() -> None:
    assert Regimen.from_course(_course("sc")).route == "sc"


def test_command_line_segments_parse_into_infusions_and_boluses() -> None:
    regimen = Regimen.parse(["0:240:24.5", "1440:1680:24.5"], ["0:20"])
    assert regimen.infusions[1] == Infusion(1440, 1680, 24.5)
    assert regimen.boluses == (Bolus(0, 20),)


@pytest.mark.parametrize("text", ["0:240", "a:240:3", "0:240:3:4", "", "10:5:3", "-5:10:3"])
def test_a_malformed_or_backwards_segment_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(PkInputError, match="infusion"):
        Regimen.parse([text])


def test_a_negative_bolus_time_is_refused() -> None:
    with pytest.raises(PkInputError, match="bolus time_min"):
        Regimen.parse([], ["-1:20"])


@given(st.lists(st.tuples(st.floats(0, 5000), st.floats(0.1, 600), st.floats(0, 200)), max_size=6))
def test_parsing_never_raises_anything_but_a_clear_input_error(
    segments: list[tuple[float, float, float]],
) -> None:
    texts = [f"{a}:{a + d}:{r}" for a, d, r in segments]
    regimen = Regimen.parse(texts)
    assert regimen.total_mg == pytest.approx(sum(d * r / 60 for _, d, r in segments))


def test_rate_segments_add_overlapping_lines_and_stop_after_the_last_end() -> None:
    regimen = Regimen.parse(["0:60:6", "30:90:12"])
    points, rates = regimen.rate_segments()
    assert points.tolist() == [0, 30, 60, 90]
    assert rates.tolist() == pytest.approx([0.1, 0.3, 0.2, 0.0])


def test_a_pause_cuts_every_infusion_it_overlaps() -> None:
    regimen = Regimen.infusion(0, 240, 24).paused(60, 120)
    assert regimen.infusions == (Infusion(0, 60, 24), Infusion(120, 240, 24))
    assert regimen.total_mg == pytest.approx(24 * 3)


def test_a_daily_schedule_repeats_the_session_every_day() -> None:
    regimen = Regimen.daily(days=10, start_min_of_day=540, duration_min=240, rate_mg_per_h=24.5)
    assert len(regimen.infusions) == 10
    assert regimen.infusions[-1].start_min == 9 * 1440 + 540
    assert regimen.end_min == 9 * 1440 + 780


def test_an_infusion_record_of_dicts_or_tuples_is_accepted() -> None:
    regimen = Regimen.from_infusion_record(
        [(0, 30, 10), {"start_min": 30, "end_min": 60, "rate_mg_per_h": 20}], boluses=[(0, 5)]
    )
    assert regimen.total_mg == pytest.approx(5 + 5 + 10)


@pytest.mark.parametrize("protocol_id", ["crps-schwartzman-10day", "asra-initial", "sci-amr-7day"])
def test_a_planned_course_becomes_a_regimen_with_the_same_total_dose(protocol_id: str) -> None:
    from ketapath.domain.planning import DosingInputs, plan
    from ketapath.knowledge.library import default_library

    course = plan(
        protocol_id,
        DosingInputs(weight_kg=70, height_cm=170, sex="female", age_years=40),
        library=default_library(),
    )
    regimen = Regimen.from_course(course)
    assert regimen.total_mg == pytest.approx(course.course_total_mg, rel=1e-3, abs=0.5)
    assert regimen.end_min == pytest.approx(
        max(s.start_offset_min + s.duration_min for s in course.sessions)
    )
