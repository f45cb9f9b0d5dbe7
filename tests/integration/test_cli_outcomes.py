"""`ketapath outcomes show|follow-ups` on both databases, acting for a named physician or
nurse: a course's outcome, follow-up and repeat decision as lines or JSON (the same
computation as the Outcome card), the clinic's follow-ups due and overdue; refusals in one
line."""

from __future__ import annotations

import json
from datetime import timedelta

import typer
from click.testing import Result
from sqlalchemy import select
from tests.integration.conftest import (
    GivenCourse,
    clinic_noon,
    course_assessment,
    past_course,
    write_diary,
)
from typer.testing import CliRunner

from ketapath.cli import outcomes as outcomes_cli
from ketapath.services import outcome_decisions, outcomes
from ketapath.services.outcome_views import RepeatDecisionInput
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry

REASON = "Relief for the whole diary; repeat in three months (discussed with the patient)."


def run(database: Database, *args: str, user: str = "") -> Result:
    app = typer.Typer()
    outcomes_cli.register(app)
    env = {
        "KETAPATH_DATABASE_URL": database.url,
        "KETAPATH_USER": user,
        "KETAPATH_TIMEZONE": "UTC",
    }
    return CliRunner().invoke(app, list(args), env=env)


def followed_course(database: Database, users: dict[str, Actor]) -> GivenCourse:
    """A course given 60 days ago: NRS 8 at baseline, 5 at one week and 3 at four weeks, PGIC
    much improved at four weeks, a diary of pain 3 on days 1, 2 and 5, and the physician's
    decision to repeat."""
    course = past_course(database, users, days_ago=60)
    last = course.last_day
    course_assessment(database, users, course, "nrs", {"pain": 8}, label="baseline", day=last)
    for days, instrument, answers in (
        (7, "nrs", {"pain": 5}),
        (28, "nrs", {"pain": 3}),
        (28, "pgic", {"change": 2}),
    ):
        course_assessment(
            database,
            users,
            course,
            instrument,
            answers,
            label="follow-up",
            day=last + timedelta(days=days),
            timepoint_days=days,
        )
    write_diary(database, users, course.order_id, {last + timedelta(days=k): 3 for k in (1, 2, 5)})
    outcome_decisions.record_decision(
        database,
        users["physician"],
        course.order_id,
        RepeatDecisionInput(decision="repeat", reason=REASON),
        clock=clinic_noon(),
    )
    return course


def test_show_prints_a_course_s_outcome_follow_up_and_decision_for_a_named_nurse(
    database: Database, users: dict[str, Actor]
) -> None:
    course = followed_course(database, users)
    last = course.last_day
    result = run(database, "outcomes", "show", str(course.order_id), user="nurse")
    assert result.exit_code == 0, result.output
    for line in (
        f"Course: order {course.order_id} (patient {course.patient_id}),",
        f"Pain (NRS): 8 at baseline ({last.isoformat()}) -> 3 at follow-up 28 days "
        f"({(last + timedelta(days=28)).isoformat()}): -5 points, -62.5%",
        "Responder at 30%: responder: pain 8 to 3: a 62.5% fall from baseline, at least the 30% "
        "threshold (judged at the latest follow-up score, 28 days)",
        "Responder at 50%: responder:",
        "Duration of relief: 5 days so far (censored): relief continued to the last diary day",
        "PGIC: much improved (2, at 28 days): improved",
        "Opioids (mg OME/day): unknown:",
        f"  4 weeks    due {(last + timedelta(days=28)).isoformat()}",
        "): done; recorded NRS, PGIC",
        "): overdue",
        "ketapath proposes: not enough data; the physician decides.",
        "Decision: repeat (asra-initial), by physician on ",
        f": “{REASON}” (ketapath had proposed not enough data)",
    ):
        assert line in result.output, line
    with database.read_only() as session:
        (row,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "outcome.course")
        ).all()
    assert row.username == "nurse" and row.entity_id == str(course.order_id)


def test_show_as_json_is_the_outcome_card_s_computation(
    database: Database, users: dict[str, Actor]
) -> None:
    course = followed_course(database, users)
    result = run(database, "outcomes", "show", str(course.order_id), "--json", user="physician")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    card = outcomes.course_outcome(database, users["nurse"], course.order_id, clock=clinic_noon())
    assert shown["outcome"]["responder_50"] == card.responder_50.model_dump(mode="json")
    assert shown["outcome"]["relief"]["days"] == 5 and shown["outcome"]["relief"]["censored"]
    assert shown["outcome"]["pgic"]["category"] == 2
    assert shown["outcome"]["opioids"]["change_mg"] is None  # unknown, never 0
    states = {t["offset_days"]: t["status"] for t in shown["follow_ups"]["timepoints"]}
    assert (states[7], states[14], states[28], states[56]) == ("done", "overdue", "done", "due")
    assert shown["decision"]["current"]["decision"] == "repeat"
    assert shown["decision"]["current"]["reason"] == REASON
    assert shown["decision"]["proposal"]["proposal"] == "not enough data"


def test_show_says_what_is_not_recorded_yet_never_0(
    database: Database, users: dict[str, Actor]
) -> None:
    course = past_course(database, users, days_ago=3)
    result = run(database, "outcomes", "show", str(course.order_id), user="physician")
    assert result.exit_code == 0, result.output
    for line in (
        "Pain (NRS): baseline not yet recorded; after the course not yet recorded",
        "Responder at 30%: not yet recorded (the baseline and later pain score is missing)",
        "Duration of relief: not yet recorded",
        "PGIC: not yet recorded (not asked at a follow-up yet)",
        "Decision: not yet recorded",
        "Not known yet (never counted as 0):",
    ):
        assert line in result.output, line


def test_follow_ups_lists_the_clinic_s_due_and_overdue_ones(
    database: Database, users: dict[str, Actor]
) -> None:
    course = past_course(database, users, days_ago=60, name="Casey Sample")
    last = course.last_day
    listed = run(database, "outcomes", "follow-ups", "--json", user="nurse")
    assert listed.exit_code == 0, listed.output
    items = json.loads(listed.output)["items"]
    assert [(i["offset_days"], i["status"]) for i in items] == [
        (7, "overdue"),
        (14, "overdue"),
        (28, "overdue"),
        (56, "due"),
    ]
    text = run(database, "outcomes", "follow-ups", "--status", "overdue", user="physician")
    assert text.exit_code == 0, text.output
    assert "3 overdue, 0 due" in text.output and "Casey Sample" in text.output
    window_end = last + timedelta(days=28 + 7)
    late = (clinic_noon().today() - window_end).days
    assert f"overdue  4 weeks    due {(last + timedelta(days=28)).isoformat()}" in text.output
    assert f"(window to {window_end.isoformat()}, {late} days overdue)" in text.output
    due = run(database, "outcomes", "follow-ups", "--status", "due", user="nurse")
    assert "0 overdue, 1 due" in due.output and " 8 weeks " in due.output
    course_assessment(
        database,
        users,
        course,
        "nrs",
        {"pain": 4},
        label="follow-up",
        day=clinic_noon().today(),
        timepoint_days=56,
    )
    none = run(database, "outcomes", "follow-ups", "--status", "due", user="nurse")
    assert none.exit_code == 0 and "No follow-ups due on " in none.output


def test_refusals_are_one_line_and_name_what_is_wrong(
    database: Database, users: dict[str, Actor]
) -> None:
    course = past_course(database, users, days_ago=10)
    order = str(course.order_id)
    no_user = run(database, "outcomes", "show", order)
    assert no_user.exit_code == 2 and "--user" in no_user.output
    for role in ("pharmacist", "researcher", "admin"):
        denied = run(database, "outcomes", "show", order, user=role)
        assert denied.exit_code == 2 and "Not allowed" in denied.output, role
        listed = run(database, "outcomes", "follow-ups", user=role)
        assert listed.exit_code == 2 and "Not allowed" in listed.output, role
    missing = run(database, "outcomes", "show", "99999", "--json", user="nurse")
    assert missing.exit_code == 2
    error = json.loads(missing.output)
    assert error["field"] == "ORDER_ID" and "no signed order 99999" in error["message"]
    bad = run(database, "outcomes", "follow-ups", "--status", "late", user="nurse")
    assert bad.exit_code == 2 and "--status: due or overdue" in bad.output
    for refused in (no_user, bad):
        assert refused.output.startswith("error: ") and len(refused.output.splitlines()) == 1
