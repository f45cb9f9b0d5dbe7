"""The outcomes service on SQLite and PostgreSQL: a course's outcome from its records
(function, sleep, PGIC, opioids, tolerance besides pain), the follow-up schedule of a course
still under way, the dose ladder's next step in the repeat proposal, the cumulative dose a
repeat course is signed with, the safety checks due by dose, who may read and decide."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from fractions import Fraction

import pytest
from tests.integration.conftest import (
    course_assessment,
    past_course,
    write_diary,
)

from ketapath.services import diary, indicators, opioids, orders, outcome_decisions, outcomes
from ketapath.services.errors import PermissionDenied
from ketapath.services.indicators import IndicatorsInput
from ketapath.services.opioids import DoseInput
from ketapath.services.orders import PlanRequest, SignRequest
from ketapath.services.outcome_views import RepeatDecisionInput
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

BPI_ITEMS = ("general_activity", "mood", "walking", "normal_work", "relations", "enjoyment")


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    diary.reset_rate_limits()
    yield
    diary.reset_rate_limits()


def bpi(pain: int, interference: int, sleep: int) -> dict[str, object]:
    answers: dict[str, object] = dict.fromkeys(("worst", "least", "average", "now"), pain)
    answers.update(dict.fromkeys(BPI_ITEMS, interference))
    answers["sleep"] = sleep
    return answers


def test_function_sleep_pgic_and_opioids_come_from_the_course_s_records(
    database: Database, users: dict[str, Actor]
) -> None:
    course = past_course(database, users, days_ago=45)
    last = course.last_day
    course_assessment(database, users, course, "nrs", {"pain": 7}, label="baseline", day=last)
    course_assessment(database, users, course, "bpi-sf", bpi(7, 6, 8), label="baseline", day=last)
    after = last + timedelta(days=28)
    for instrument, answers in (
        ("nrs", {"pain": 3}),
        ("bpi-sf", bpi(3, 3, 2)),
        ("pgic", {"change": 2}),
    ):
        course_assessment(
            database,
            users,
            course,
            instrument,
            answers,
            label="follow-up",
            day=after,
            timepoint_days=28,
        )
    dose = DoseInput.model_validate(
        {
            "taken_on": after.isoformat(),
            "medications": [{"name": "oxycodone", "daily_dose": 20, "unit": "mg", "route": "oral"}],
        }
    )
    opioids.record_opioid_dose(database, users["nurse"], course.patient_id, dose)
    write_diary(
        database,
        users,
        course.order_id,
        {last + timedelta(days=k): 2 for k in range(1, 36)},
        sleep={last + timedelta(days=k): 7 for k in range(1, 36)},
    )
    outcome = outcomes.course_outcome(database, users["nurse"], course.order_id)
    assert outcome.status == "complete", outcome.missing
    # BPI-SF interference: the mean of 9A-9G, (6 x 6 + 8) / 7 -> (6 x 3 + 2) / 7
    assert outcome.function.baseline == pytest.approx(float(Fraction(44, 7)))
    assert outcome.function.improvement_percent == pytest.approx(float(Fraction(24, 44) * 100))
    assert (outcome.sleep.baseline, outcome.sleep.value) == (8, 2)
    assert outcome.sleep.improvement_percent == pytest.approx(75)
    assert outcome.sleep.diary_mean_sleep_quality == 7 and outcome.sleep.diary_sleep_days == 35
    assert (outcome.pgic.status, outcome.pgic.category) == ("improved", 2)
    # the record's oxycodone 20 mg twice daily is 60 mg OME (x 1.5); 20 mg a day is 30
    assert (outcome.opioids.baseline_ome_mg, outcome.opioids.current_ome_mg) == (60, 30)
    assert outcome.opioids.percent == pytest.approx(-50)
    assert outcome.pain_auc.auc == 68  # 34 x 2
    assert outcome.relief.status == "censored" and outcome.relief.days == 35
    assert outcome.tolerated is True


def test_a_course_stopped_for_dissociation_was_not_tolerated_and_stop_is_proposed(
    database: Database, users: dict[str, Actor]
) -> None:
    course = past_course(database, users, days_ago=30, stop="dissociation")
    outcome = outcomes.course_outcome(database, users["physician"], course.order_id)
    assert outcome.tolerated is False and "dissociation" in outcome.tolerance
    assert outcome.sessions[0].stop_reason == "dissociation"
    page = outcome_decisions.decision_page(database, users["physician"], course.order_id)
    assert page.proposal.proposal == "stop"


def test_on_a_dose_ladder_short_of_the_goal_the_next_rung_is_proposed(
    database: Database, users: dict[str, Actor]
) -> None:
    # 70 kg: session 1 gives 80 mg over 4 h (0.29 mg/kg/h), session 2 the 0.35 rung
    course = past_course(database, users, days_ago=60, protocol_id="dose-ladder", sessions=2)
    last = course.last_day
    course_assessment(database, users, course, "nrs", {"pain": 8}, label="baseline", day=last)
    course_assessment(
        database,
        users,
        course,
        "nrs",
        {"pain": 7},
        label="follow-up",
        day=last + timedelta(days=14),
        timepoint_days=14,
    )
    indicators.record_indicators(
        database,
        users["nurse"],
        course.patient_id,
        IndicatorsInput.model_validate(
            {"order_id": course.order_id, "indicators": {"pain_reduction_percent": 30}}
        ),
    )
    page = outcome_decisions.decision_page(database, users["physician"], course.order_id)
    proposal = page.proposal
    assert proposal.proposal == "change protocol"
    assert (proposal.next_protocol_id, proposal.next_step_mg_per_kg_per_h) == ("dose-ladder", 0.5)
    assert any("dose ladder's next step" in r for r in proposal.reasons)


def test_a_course_under_way_counts_from_its_last_session_so_far_and_is_not_on_the_due_list(
    database: Database, users: dict[str, Actor]
) -> None:
    # weekly ladder sessions from 10 days ago: one given, the later ones still to come
    course = past_course(database, users, days_ago=10, protocol_id="dose-ladder", sessions=1)
    outcome = outcomes.course_outcome(database, users["nurse"], course.order_id)
    assert outcome.in_progress and outcome.sessions_to_come >= 2
    follow_ups = outcomes.course_follow_ups(database, users["nurse"], course.order_id)
    assert follow_ups.in_progress and follow_ups.last_session_day == course.last_day
    listed = outcomes.follow_ups(database, users["nurse"])
    assert all(i.order_id != course.order_id for i in listed.items)


def test_a_repeat_course_is_signed_with_the_cumulative_dose_of_the_earlier_one(
    database: Database, users: dict[str, Actor]
) -> None:
    first = past_course(database, users, days_ago=100)
    before = outcomes.course_outcome(database, users["nurse"], first.order_id)
    request = PlanRequest(protocol_id="asra-initial", setting="clinic")
    preview = orders.preview_course(database, users["physician"], first.patient_id, request)
    found = [f for f in preview.course["findings"] if f["code"] == "outcomes:cumulative-dose"]
    assert len(found) == 1 and found[0]["severity"] == "info"
    earlier = float(Fraction(before.delivered_mg).limit_denominator(10**6) / 70)
    assert f"delivered {earlier:.1f} mg/kg" in found[0]["message"]
    assert "Earlier courses (1)" in found[0]["message"]
    signed = orders.sign_order(
        database,
        users["physician"],
        first.patient_id,
        SignRequest(
            protocol_id="asra-initial",
            setting="clinic",
            override_reason="test: second course",  # type: ignore[arg-type]
            course_digest=preview.digest,
        ),
    )
    assert "outcomes:cumulative-dose" in {f["code"] for f in signed.course["findings"]}
    assert signed.status == "signed"


def test_no_finding_is_added_to_a_first_course(database: Database, users: dict[str, Actor]) -> None:
    from tests.integration.conftest import signed_order

    order_id = signed_order(database, users)
    order = orders.get_order(database, users["physician"], order_id)
    assert all(not f["code"].startswith("outcomes:") for f in order.course["findings"])


def test_past_a_checks_dose_the_repeat_course_s_finding_is_a_warning(
    database: Database, users: dict[str, Actor]
) -> None:
    # 10 sessions of 0.35 mg/kg/h (capped at 25 mg/h) for 4 h, 70 kg: about 14 mg/kg
    first = past_course(database, users, days_ago=40, protocol_id="crps-schwartzman-10day")
    due = outcomes.safety_due(database, users["nurse"], first.patient_id)
    assert due.courses == 1 and due.cumulative_mg_per_kg is not None
    assert due.cumulative_mg_per_kg > 10
    states = {c.check_id: c.status for c in due.checks}
    # above 10 mg/kg in the first course: liver enzymes and urinary symptoms are due
    assert states == {
        "liver-enzymes": "due",
        "urinary-symptoms": "due",
        "cognition": "not due",
        "misuse-screen": "not due",
    }
    request = PlanRequest(protocol_id="asra-initial", setting="clinic")
    preview = orders.preview_course(database, users["physician"], first.patient_id, request)
    (found,) = [f for f in preview.course["findings"] if f["code"] == "outcomes:cumulative-dose"]
    assert found["severity"] == "warning"
    assert "liver enzymes and urinary symptoms" in found["message"]


def test_only_physicians_decide_and_only_physicians_and_nurses_read(
    database: Database, users: dict[str, Actor]
) -> None:
    course = past_course(database, users, days_ago=20)
    decision = RepeatDecisionInput(decision="stop", reason="no relief")
    for role in ("nurse", "pharmacist", "researcher", "admin"):
        with pytest.raises(PermissionDenied):
            outcome_decisions.record_decision(database, users[role], course.order_id, decision)
    for role in ("pharmacist", "researcher", "admin"):
        with pytest.raises(PermissionDenied):
            outcomes.course_outcome(database, users[role], course.order_id)
        with pytest.raises(PermissionDenied):
            outcomes.safety_due(database, users[role], course.patient_id)
    made = outcome_decisions.record_decision(
        database, users["physician"], course.order_id, decision
    )
    assert made.decision == "stop" and made.next_protocol_id is None
    assert made.decided_by == "physician"


def test_a_decision_is_timed_by_the_clinic_clock(
    database: Database, users: dict[str, Actor]
) -> None:
    """The decision's time is the clinic clock's now (as its date is), not the server's."""
    from datetime import UTC, datetime

    from ketapath.services.clock import ClinicClock

    course = past_course(database, users, days_ago=20)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
    made = outcome_decisions.record_decision(
        database,
        users["physician"],
        course.order_id,
        RepeatDecisionInput(decision="stop", reason="no relief"),
        clock=ClinicClock(fixed=at),
    )
    assert made.decided_at == at
