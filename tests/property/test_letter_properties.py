"""Properties of the letters' numbers (hypothesis): for any charts, each session's dose, the
total and the dose per kg are the independent oracle's (rate x time over the running
intervals, summed exactly, rounded once), and the letter's body carries exactly those texts.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.property.test_session_properties import build, context, schedules

from ketapath.domain.letters import (
    ClinicInput,
    CourseInput,
    OpioidInput,
    PatientInput,
    SessionInput,
    assemble,
)
from ketapath.domain.session_dose import exact, mg_text
from ketapath.domain.sessions import replay
from ketapath.reports import letters as rendering

EXAMPLES = settings(
    max_examples=int(os.environ.get("KETAPATH_LETTER_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
weights = st.decimals(min_value="30", max_value="250", places=1).map(float)


def _course(charts: list[dict[str, Any]], weight: float) -> tuple[CourseInput, list[Fraction]]:
    sessions, oracle = [], []
    for number, schedule in enumerate(charts, start=1):
        events, now, dose = build(schedule)
        view = replay(events, now, context(schedule))
        day = date(2026, 12, 1) + timedelta(days=2 * (number - 1))
        sessions.append(SessionInput(number, day, view, tuple(events)))
        oracle.append(dose)  # no bolus is charted
    course = CourseInput(
        order_id=1,
        protocol_name="test",
        route="iv",
        setting="clinic",
        sessions_ordered=len(charts),
        dosing_weight_kg=weight,
        weight_basis="actual",
        signed_by="physician",
        signed_on=date(2026, 11, 30),
        cancelled=True,
        sessions=tuple(sessions),
    )
    return course, oracle


def _facts(course: CourseInput, kind: str = "discharge_summary") -> Any:
    return assemble(
        kind,  # type: ignore[arg-type]
        patient=PatientInput("A Patient", None, "", ""),
        course=course,
        opioids=OpioidInput("CDC 2022", None, None, None),
        clinic=ClinicInput(),
        today=date(2026, 12, 20),
        written_by="nurse",
    )


@EXAMPLES
@given(st.lists(schedules(), min_size=1, max_size=3), weights)
def test_the_letter_s_doses_are_the_oracle_s_rounded_once(
    charts: list[dict[str, Any]], weight: float
) -> None:
    course, oracle = _course(charts, weight)
    facts = _facts(course)
    total = sum(oracle, Fraction(0))
    assert [s.ketamine_mg for s in facts.sessions] == [mg_text(d, 1) for d in oracle]
    assert [s.ketamine_mg_exact for s in facts.sessions] == [mg_text(d) for d in oracle]
    assert facts.total_mg_exact == mg_text(total)
    assert facts.total_mg == mg_text(total, 1)
    assert facts.total_mg_per_kg == mg_text(total / exact(weight), 2)
    assert facts.sessions_given == len(charts)


@EXAMPLES
@given(st.lists(schedules(), min_size=1, max_size=3), weights)
def test_the_letter_body_shows_every_dose_and_the_total(
    charts: list[dict[str, Any]], weight: float
) -> None:
    course, _ = _course(charts, weight)
    facts = _facts(course, "gp_letter")
    body = rendering.body(facts, rendering.Stamp(1, "nurse", "today", "0" * 64))
    assert f"Total ketamine delivered: {facts.total_mg} mg ({facts.total_mg_per_kg} mg/kg)" in body
    for session in facts.sessions:
        assert f'<td align="right">{session.ketamine_mg}</td>' in body
        assert session.date in body


@EXAMPLES
@given(st.lists(schedules(), min_size=1, max_size=3), weights)
def test_pauses_in_the_letter_are_the_chart_s_pauses(
    charts: list[dict[str, Any]], weight: float
) -> None:
    course, _ = _course(charts, weight)
    facts = _facts(course)
    for schedule, session in zip(charts, facts.sessions, strict=True):
        pauses = sum(1 for kind, _, _ in schedule["ops"] if kind == "pause")
        assert len(session.pauses) == pauses
        stopped = any(kind == "stop" for kind, _, _ in schedule["ops"])
        assert session.ended.startswith("stopped early") == stopped
