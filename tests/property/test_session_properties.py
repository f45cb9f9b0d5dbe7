"""Properties of the session replay that must hold for every chart (hypothesis).

The delivered dose is checked against an independent oracle: rate (the decimal mL/h the pump
is set to, times the bag's mg/mL) times the exact time between entries, summed over the
running intervals only.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from tests.conftest import SESSION_T0_ISO, baseline_vitals, session_programme

from ketapath.domain.session_dose import exact
from ketapath.domain.session_events import ChartEntry, ChartEvent
from ketapath.domain.session_view import STATES, kinds_allowed_in
from ketapath.domain.sessions import (
    ChartRefused,
    PatientFacts,
    SessionContext,
    check_append,
    delivered_fraction,
    replay,
)

T0 = datetime.fromisoformat(SESSION_T0_ISO)
ENTRY = TypeAdapter(ChartEntry)
FAST = settings(
    max_examples=int(os.environ.get("KETAPATH_SESSION_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

rates = st.decimals(min_value="0.1", max_value="400", places=1, allow_nan=False)
concentrations = st.sampled_from(["0.5", "1", "2", "10", "50"])
gaps = st.integers(min_value=0, max_value=3 * 3600 * 10**6)  # microseconds


def entry(kind: str, at: datetime, **fields: Any) -> Any:
    return ENTRY.validate_python({"kind": kind, "occurred_at": at, **fields})


def check_in(at: datetime) -> Any:
    return entry(
        "check_in",
        at,
        consent_confirmed=True,
        fasting_confirmed=True,
        escort_present=True,
        allergies_confirmed=True,
        pregnancy_test="negative",
        baseline=baseline_vitals(),
        baseline_pain_nrs=5,
    )


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    """A programme of 1-3 distinct rates and a legal sequence of pump operations."""
    step_rates = draw(st.lists(rates, min_size=1, max_size=3, unique=True))
    concentration = draw(concentrations)
    programme = session_programme(
        concentration_mg_per_ml=float(concentration),
        steps=[(float(r), 60.0) for r in step_rates],
    )
    ops: list[tuple[str, int, int | None]] = []
    state, current = "running", draw(st.integers(0, len(step_rates) - 1))
    ops.append(("start", draw(gaps), current))
    for _ in range(draw(st.integers(0, 12))):
        gap = draw(gaps)
        if state == "running":
            choice = draw(
                st.sampled_from(
                    ["rate", "pause", "stop"] if len(step_rates) > 1 else ["pause", "stop"]
                )
            )
            if choice == "rate":
                others = [i for i in range(len(step_rates)) if i != current]
                new = draw(st.sampled_from(others))
                ops.append(("rate_change", gap, new))
                current = new
            elif choice == "pause":
                ops.append(("pause", gap, None))
                state = "paused"
            else:
                ops.append(("stop", gap, None))
                break
        else:
            choice = draw(st.sampled_from(["resume", "stop"]))
            if choice == "resume":
                ops.append(("resume", gap, None))
                state = "running"
            else:
                ops.append(("stop", gap, None))
                break
    tail = draw(gaps)
    return {
        "programme": programme,
        "rates": step_rates,
        "concentration": concentration,
        "ops": ops,
        "tail": tail,
    }


def build(schedule: dict[str, Any]) -> tuple[list[ChartEvent], datetime, Fraction]:
    """The chart of a schedule, the time it is read, and the oracle's dose."""
    concentration = Fraction(schedule["concentration"])
    events = [ChartEvent(seq=1, entry=check_in(T0))]
    at, running_rate, dose = T0, None, Fraction(0)
    for kind, gap, step in schedule["ops"]:
        nxt = at + timedelta(microseconds=gap)
        if running_rate is not None:
            dose += running_rate * Fraction(gap, 3_600_000_000)
        fields: dict[str, Any] = {}
        if kind in ("start", "rate_change"):
            assert step is not None
            fields["rate_ml_per_h"] = float(schedule["rates"][step])
            running_rate = Fraction(schedule["rates"][step]) * concentration
        elif kind == "pause":
            fields["reason"] = "equipment"
            paused_rate, running_rate = running_rate, None
        elif kind == "resume":
            running_rate = paused_rate
        elif kind == "stop":
            fields["reason"] = "patient_request"
            running_rate = None
        events.append(ChartEvent(seq=len(events) + 1, entry=entry(kind, nxt, **fields)))
        at = nxt
    now = at + timedelta(microseconds=schedule["tail"])
    if running_rate is not None:
        dose += running_rate * Fraction(schedule["tail"], 3_600_000_000)
    return events, now, dose


def context(schedule: dict[str, Any]) -> SessionContext:
    return SessionContext(programme=schedule["programme"], patient=PatientFacts("male"))


@FAST
@given(schedules())
def test_the_delivered_dose_is_rate_times_time_over_the_running_segments(
    schedule: dict[str, Any],
) -> None:
    events, now, oracle = build(schedule)
    view = replay(events, now, context(schedule))
    assert view.refusals == []
    assert delivered_fraction(view) == oracle
    assert abs(view.dose.delivered_mg - float(oracle)) <= 1e-9 * max(1.0, float(oracle))


@FAST
@given(schedules(), st.data())
def test_splitting_a_segment_or_adding_observations_changes_no_dose(
    schedule: dict[str, Any], data: st.DataObject
) -> None:
    events, now, oracle = build(schedule)
    ctx = context(schedule)
    # a pause and a resume at the same instant inside a running segment, and a set of vitals
    view = replay(events, now, ctx)
    running = [s for s in view.segments if s.end is None or s.end > s.start]
    if running:
        segment = data.draw(st.sampled_from(running))
        end = segment.end or now + timedelta(microseconds=1)
        span = int((end - segment.start) / timedelta(microseconds=1))
        cut = segment.start + timedelta(microseconds=data.draw(st.integers(0, span - 1)))
        # right after the entry that started the segment: nothing else happens inside it
        position = next(i for i, e in enumerate(events) if e.seq == segment.seq) + 1
        inserted = [
            entry("pause", cut, reason="clinical"),
            entry("resume", cut),
            entry("vitals", cut, **baseline_vitals()),
        ]
        entries = (
            [e.entry for e in events[:position]] + inserted + [e.entry for e in events[position:]]
        )
        split = [ChartEvent(seq=i, entry=e) for i, e in enumerate(entries, start=1)]
        again = replay(split, now, ctx)
        assert again.refusals == []
        assert delivered_fraction(again) == oracle


@FAST
@given(schedules(), st.integers(min_value=1, max_value=10**10))
def test_a_pause_delivers_nothing(schedule: dict[str, Any], later: int) -> None:
    events, now, _ = build(schedule)
    ctx = context(schedule)
    view = replay(events, now, ctx)
    if view.state in ("paused", "stopped"):
        much_later = now + timedelta(microseconds=later)
        assert delivered_fraction(replay(events, much_later, ctx)) == delivered_fraction(view)


@FAST
@given(schedules())
def test_replay_is_deterministic(schedule: dict[str, Any]) -> None:
    events, now, _ = build(schedule)
    ctx = context(schedule)
    assert replay(events, now, ctx) == replay(list(events), now, ctx)


@FAST
@given(schedules(), st.data())
def test_an_illegal_entry_is_refused_and_changes_nothing(
    schedule: dict[str, Any], data: st.DataObject
) -> None:
    events, now, _ = build(schedule)
    ctx = context(schedule)
    before = replay(events, now, ctx)
    illegal = sorted(
        {
            "check_in",
            "start",
            "pause",
            "resume",
            "stop",
            "complete",
            "begin_observation",
            "discharge",
            "cancel",
            "did_not_attend",
        }
        - set(kinds_allowed_in(before.state))
    )
    kind = data.draw(st.sampled_from(illegal))
    fields: dict[str, Any] = {
        "pause": {"reason": "clinical"},
        "stop": {"reason": "other"},
        "cancel": {"reason": "x"},
        "discharge": {"escort_present": True, "emergency_plan_given": True},
    }.get(kind, {})
    last = max(e.entry.occurred_at for e in events)
    bad = ChartEvent(
        seq=len(events) + 1,
        entry=check_in(last) if kind == "check_in" else entry(kind, last, **fields),
    )
    try:
        check_append(events, bad, now, ctx)
        raise AssertionError(f"{kind} was not refused in state {before.state}")
    except ChartRefused:
        pass
    after = replay([*events, bad], now, ctx)
    assert [r.seq for r in after.refusals] == [bad.seq]
    assert after.model_dump(exclude={"refusals", "last_seq"}) == before.model_dump(
        exclude={"refusals", "last_seq"}
    )


ANY_KIND = st.sampled_from(
    [
        "start",
        "rate_change",
        "pause",
        "resume",
        "stop",
        "complete",
        "bolus",
        "vitals",
        "side_effect",
        "begin_observation",
        "discharge",
        "cancel",
    ]
)


@st.composite
def random_entries(draw: st.DrawFn) -> list[Any]:
    """Any entries at any times, legal or not, with rates of the order or not."""
    out = [check_in(T0)]
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(ANY_KIND)
        at = T0 + timedelta(seconds=draw(st.integers(-3600, 10 * 3600)))
        rate = draw(st.sampled_from([None, 20.0, 25.0, 0.1, 400.0]))
        fields: dict[str, Any] = {
            "start": {"rate_ml_per_h": rate},
            "rate_change": {"rate_ml_per_h": rate or 20.0},
            "resume": {"rate_ml_per_h": rate},
            "pause": {"reason": draw(st.sampled_from(["side_effect", "clinical"]))},
            "stop": {"reason": "other"},
            "bolus": {"dose_mg": draw(st.floats(min_value=0.01, max_value=100))},
            "vitals": baseline_vitals(spo2=draw(st.integers(80, 100))),
            "side_effect": {
                "effect": draw(st.sampled_from(["dissociation", "headache", "nausea-vomiting"])),
                "severity": draw(st.sampled_from(["mild", "moderate", "severe"])),
            },
            "discharge": {"escort_present": True, "emergency_plan_given": True},
            "cancel": {"reason": "x"},
        }.get(kind, {})
        out.append(entry(kind, at, **fields))
    return out


@FAST
@given(random_entries(), st.integers(min_value=-3600, max_value=20 * 3600))
def test_no_chart_gives_a_negative_or_infinite_dose(entries: list[Any], seconds: int) -> None:
    events = [ChartEvent(seq=i, entry=e) for i, e in enumerate(entries, start=1)]
    ctx = SessionContext(programme=session_programme(steps=[(20.0, 60), (25.0, 60)]))
    view = replay(events, T0 + timedelta(seconds=seconds), ctx)
    assert view.state in STATES
    assert delivered_fraction(view) >= 0
    for value in (view.dose.delivered_mg, view.dose.infusion_mg, view.dose.infused_ml):
        assert math.isfinite(value) and value >= 0
    assert view.dose.delivered_mg_exact == view.dose.delivered_mg_exact.strip()
    assert exact(view.dose.bolus_mg) <= 10
