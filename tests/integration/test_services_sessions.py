"""The infusion day through the services, on SQLite and PostgreSQL: scheduling, the worklist
and board, check-in from the order and the drug library, the chart with its concurrency
rule, corrections, permissions, audit and the patient's lifetime dose."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import select
from tests.conftest import baseline_vitals
from tests.integration.conftest import (
    check_in_entry,
    clinic_noon,
    scheduled_session,
    signed_order,
)

from ketapath.domain.session_events import ChartEntry
from ketapath.services import orders, patients, sessions
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ketapath.services.permissions import Actor
from ketapath.services.sessions import ChartWrite, Correction, ScheduleRequest, VoidRequest
from ketapath.services.signing import OrderCancelled, OrderStale
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, InfusionSession

ENTRY: TypeAdapter[Any] = TypeAdapter(ChartEntry)


class Nurse:
    """Charts one session as a user, with times in minutes after 09:00 of the clock's day."""

    def __init__(
        self, database: Database, actor: Actor, session_id: int, clock: ClinicClock
    ) -> None:
        self.database, self.actor, self.session_id, self.clock = database, actor, session_id, clock
        self.seen = 0

    def at(self, minutes: float) -> datetime:
        assert self.clock.fixed is not None
        return self.clock.fixed.replace(hour=9, minute=0) + timedelta(minutes=minutes)

    def chart(self, kind: str, minutes: float, *, expected: int | None = None, **fields: Any):  # type: ignore[no-untyped-def]
        entry = ENTRY.validate_python({"kind": kind, "occurred_at": self.at(minutes), **fields})
        write = ChartWrite(expected_seq=self.seen if expected is None else expected, entry=entry)
        detail = sessions.chart(self.database, self.actor, self.session_id, write, clock=self.clock)
        self.seen = detail.chart.last_seq
        return detail

    def check_in(self, minutes: float = 0, **changes: Any):  # type: ignore[no-untyped-def]
        fields = check_in_entry(self.at(minutes), **changes)
        fields.pop("kind"), fields.pop("occurred_at")
        return self.chart("check_in", minutes, **fields)


def test_a_signed_course_is_scheduled_one_session_per_day_of_the_course(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    order_id = signed_order(database, users, protocol_id="mixed-kang-3session")
    request = ScheduleRequest(first_date=clock.today(), chair="Chair 2")
    scheduled = sessions.schedule_course(database, users["nurse"], order_id, request, clock=clock)
    assert [s.scheduled_on - clock.today() for s in scheduled] == [
        timedelta(days=0),
        timedelta(days=2),
        timedelta(days=4),
    ]
    assert {s.state for s in scheduled} == {"scheduled"}
    assert scheduled[0].sessions_in_course == 3 and scheduled[0].ordered_mg == 49.0
    with pytest.raises(Conflict, match="already scheduled"):
        sessions.schedule_course(database, users["nurse"], order_id, request, clock=clock)


def test_a_course_is_not_scheduled_in_the_past_nor_from_a_cancelled_or_stale_order(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    order_id = signed_order(database, users)
    with pytest.raises(InvalidInput, match="before today"):
        sessions.schedule_course(
            database,
            users["nurse"],
            order_id,
            ScheduleRequest(first_date=clock.today() - timedelta(days=1), chair="A"),
            clock=clock,
        )
    orders.cancel_order(database, users["physician"], order_id, reason="changed plan")
    with pytest.raises(OrderCancelled):
        sessions.schedule_course(
            database,
            users["nurse"],
            order_id,
            ScheduleRequest(first_date=clock.today(), chair="A"),
            clock=clock,
        )


def test_check_in_reads_the_pump_programme_from_the_order_and_the_drug_library(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    before = sessions.get_session(database, users["nurse"], session_id, clock=clock)
    assert before.chart.state == "scheduled" and before.order_state == "usable"
    assert before.programme is not None  # what check-in would read now
    detail = Nurse(database, users["nurse"], session_id, clock).check_in()
    programme = detail.chart.programme
    assert programme is not None and programme.library_version == 0
    assert programme.concentration_mg_per_ml > 0 and programme.steps
    step = programme.steps[0]
    assert step.rate_mg_per_h == pytest.approx(
        step.rate_ml_per_h * programme.concentration_mg_per_ml
    )
    assert programme.volume_to_be_infused_ml > 0
    assert detail.chart.state == "checked_in"


def test_a_stale_order_cannot_check_in_or_start(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    detail = sessions.get_session(database, users["nurse"], session_id, clock=clock)
    record = patients.get_patient(database, users["nurse"], detail.patient_id)
    patients.amend_patient(
        database,
        users["nurse"],
        detail.patient_id,
        {**record.document, "weight_kg": 95},
        reason="re-weighed",
        expected_version=record.version,
    )
    with pytest.raises(OrderStale, match="dosing facts changed"):
        Nurse(database, users["nurse"], session_id, clock).check_in()
    assert sessions.get_session(database, users["nurse"], session_id, clock=clock).order_state == (
        "stale"
    )


def test_a_whole_session_through_the_services_with_the_dose_from_the_chart(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    nurse = Nurse(database, users["nurse"], session_id, clock)
    nurse.check_in()
    detail = nurse.chart("start", 5)
    rate = detail.chart.running_rate_mg_per_h
    assert rate is not None
    nurse.chart("vitals", 20, **baseline_vitals(heart_rate=80))
    nurse.chart("side_effect", 30, effect="nausea-vomiting", severity="moderate")
    nurse.chart("pause", 31, reason="side_effect")
    nurse.chart("resume", 91)
    detail = nurse.chart("stop", 120, reason="patient_request")
    running_minutes = (31 - 5) + (120 - 91)
    assert detail.chart.dose.delivered_mg == pytest.approx(rate * running_minutes / 60)
    assert detail.chart.state == "stopped"
    log = sessions.session_log(database, users["pharmacist"], session_id)
    assert [e.kind for e in log] == [
        "check_in",
        "start",
        "vitals",
        "side_effect",
        "pause",
        "resume",
        "stop",
    ]


def test_a_strict_entry_is_refused_when_the_chart_moved_on_and_an_observation_lands(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    first = Nurse(database, users["nurse"], session_id, clock)
    second = Nurse(database, users["physician"], session_id, clock)
    first.check_in()
    first.chart("start", 5)
    second.seen = first.seen
    first.chart("pause", 20, reason="equipment")
    with pytest.raises(Conflict, match="changed since entry 2"):
        second.chart("pause", 21, reason="clinical")
    second.chart("vitals", 22, **baseline_vitals())  # lands although entry 3 was not seen
    detail = sessions.get_session(database, users["nurse"], session_id, clock=clock)
    assert detail.chart.state == "paused" and len(detail.chart.vitals) == 1
    with pytest.raises(Conflict, match="last entry is 4"):
        first.chart("note", 23, expected=9, note="from the future")


def test_an_illegal_transition_is_a_conflict_and_a_rule_refusal_is_invalid_input(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    nurse = Nurse(database, users["nurse"], session_id, clock)
    with pytest.raises(Conflict, match="the session is scheduled"):
        nurse.chart("start", 5)
    nurse.check_in()
    with pytest.raises(InvalidInput, match="not a rate of the signed order"):
        nurse.chart("start", 5, rate_ml_per_h=999)
    with pytest.raises(InvalidInput, match="in the future"):
        nurse.chart("start", 5 * 60)  # 14:00 on a clock stopped at 12:00


def test_corrections_and_voids_keep_the_original_in_the_log(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    nurse = Nurse(database, users["nurse"], session_id, clock)
    nurse.check_in()
    nurse.chart("vitals", 10, **baseline_vitals(spo2=70))
    entry = ENTRY.validate_python(
        {"kind": "vitals", "occurred_at": nurse.at(10), **baseline_vitals()}
    )
    detail = sessions.correct(
        database,
        users["nurse"],
        session_id,
        2,
        Correction(expected_seq=2, entry=entry, reason="probe slipped"),
        clock=clock,
    )
    assert [v.spo2 for v in detail.chart.vitals] == [98]
    nurse.seen = detail.chart.last_seq
    nurse.chart("note", 11, note="wrong patient's note")
    detail = sessions.void(
        database,
        users["nurse"],
        session_id,
        4,
        VoidRequest(expected_seq=4, reason="wrong bed"),
        clock=clock,
    )
    assert detail.chart.notes == []
    log = sessions.session_log(database, users["nurse"], session_id)
    assert [(e.seq, e.kind, e.amends_seq) for e in log] == [
        (1, "check_in", None),
        (2, "vitals", None),
        (3, "vitals", 2),
        (4, "note", None),
        (5, "void", 4),
    ]
    assert log[2].reason == "probe slipped"


def test_who_may_read_chart_and_override(database: Database, users: dict[str, Actor]) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    sessions.get_session(database, users["pharmacist"], session_id, clock=clock)
    for role in ("researcher", "admin"):
        with pytest.raises(PermissionDenied):
            sessions.get_session(database, users[role], session_id, clock=clock)
    with pytest.raises(PermissionDenied):
        Nurse(database, users["pharmacist"], session_id, clock).check_in()
    nurse = Nurse(database, users["nurse"], session_id, clock)
    nurse.check_in()
    nurse.chart("start", 5)
    nurse.chart("stop", 30, reason="patient_request")
    nurse.chart("begin_observation", 31)
    with pytest.raises(PermissionDenied, match="physician"):
        nurse.chart(
            "discharge", 40, escort_present=True, emergency_plan_given=True, override_reason="ok"
        )
    physician = Nurse(database, users["physician"], session_id, clock)
    physician.seen = nurse.seen
    detail = physician.chart(
        "discharge",
        40,
        escort_present=True,
        emergency_plan_given=True,
        override_reason="lift home, family present; reviewed",
    )
    assert detail.chart.state == "discharged"
    assert detail.chart.discharged is not None and detail.chart.discharged.overridden


def test_every_action_is_audited_and_a_refused_read_too(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    Nurse(database, users["nurse"], session_id, clock).check_in()
    sessions.worklist(database, users["nurse"], clock=clock)
    with pytest.raises(PermissionDenied):
        sessions.get_session(database, users["admin"], session_id, clock=clock)
    with database.transaction() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    actions = [(r.action, r.outcome) for r in rows]
    assert ("session.schedule", "ok") in actions
    assert ("session.chart", "ok") in actions
    assert ("session.worklist", "ok") in actions
    assert ("session.read", "denied") in actions
    chart_row = next(r for r in rows if r.action == "session.chart")
    assert chart_row.detail["kind"] == "check_in" and chart_row.entity_id == str(session_id)


def test_the_worklist_and_board_show_each_chair_on_the_clinic_date(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    first = scheduled_session(database, users, clock, chair="Chair 1")
    scheduled_session(database, users, clock, chair="Chair 2")
    nurse = Nurse(database, users["nurse"], first, clock)
    nurse.check_in()
    nurse.chart("start", 5)
    nurse.chart("vitals", 160, **baseline_vitals(spo2=88))
    listed = sessions.worklist(database, users["nurse"], clock=clock)
    assert [s.chair for s in listed] == ["Chair 1", "Chair 2"]
    assert [s.id for s in sessions.worklist(database, users["nurse"], chair="Chair 2", clock=clock)]
    assert (
        sessions.worklist(
            database, users["nurse"], on=clock.today() + timedelta(days=1), clock=clock
        )
        == []
    )
    board = sessions.board(database, users["pharmacist"], clock=clock)
    chair = next(c for c in board.chairs if c.chair == "Chair 1")
    assert chair.session is not None and chair.session.state == "running"
    assert chair.session.running_rate_mg_per_h is not None
    assert any(a.code == "session:vital-alert" for a in chair.session.alerts)
    assert chair.minutes_to_next_observation is not None
    assert chair.minutes_to_next_observation == pytest.approx(-5.0)  # due 11:55, read at 12:00


def test_the_patient_s_lifetime_dose_adds_up_every_session(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    nurse = Nurse(database, users["nurse"], session_id, clock)
    nurse.check_in()
    detail = nurse.chart("start", 0)
    nurse.chart("stop", 60, reason="patient_request")
    rate = detail.chart.running_rate_mg_per_h
    dose = sessions.patient_sessions(database, users["physician"], detail.patient_id, clock=clock)
    assert dose.lifetime_delivered_mg == pytest.approx(rate)
    assert len(dose.sessions) == 1
    with pytest.raises(NotFound):
        sessions.patient_sessions(database, users["physician"], 999_999, clock=clock)


def test_the_session_rows_and_chart_are_append_only(
    database: Database, users: dict[str, Actor]
) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    session_id = scheduled_session(database, users)
    for statement in (
        "UPDATE infusion_sessions SET chair = 'X'",
        "DELETE FROM infusion_sessions",
    ):
        with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
            session.execute(text(statement))
    with database.transaction() as session:
        assert session.get(InfusionSession, session_id) is not None


def test_replaying_a_posted_log_stores_nothing(database: Database, users: dict[str, Actor]) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    nurse = Nurse(database, users["nurse"], session_id, clock)
    events = [
        {"entry": check_in_entry(nurse.at(0))},
        {"entry": {"kind": "start", "occurred_at": nurse.at(5).isoformat()}},
        {"entry": {"kind": "stop", "occurred_at": nurse.at(65).isoformat(), "reason": "other"}},
    ]
    request = sessions.ReplayRequest.model_validate({"events": events})
    view = sessions.replay_session(database, users["nurse"], session_id, request, clock=clock)
    assert view.state == "stopped" and view.dose.running_minutes == 60
    assert sessions.session_log(database, users["nurse"], session_id) == []


def test_a_later_change_to_the_record_does_not_undo_a_check_in(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock, sex="male", pregnancy="not_applicable")
    Nurse(database, users["nurse"], session_id, clock).check_in(pregnancy_test="not_applicable")
    patient_id = sessions.get_session(database, users["nurse"], session_id, clock=clock).patient_id
    record = patients.get_patient(database, users["nurse"], patient_id)
    patients.amend_patient(
        database,
        users["nurse"],
        patient_id,
        {**record.document, "sex": "female", "pregnancy": "unknown"},
        reason="record corrected",
        expected_version=record.version,
    )
    detail = sessions.get_session(database, users["nurse"], session_id, clock=clock)
    assert detail.chart.state == "checked_in" and detail.chart.refusals == []
