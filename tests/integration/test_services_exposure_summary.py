"""Stored exposure summaries through the services, on SQLite and PostgreSQL: computed and
stored on first read, answered from the store while their inputs stand, recomputed (a new row
superseding the last, with the reason) after a chart correction, a weight change, a new model
version or new thresholds; provisional while a pump runs; per course with what remains of one
session in the next; permissions and audit."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from tests.conftest import base_patient
from tests.integration.conftest import check_in_entry, clinic_noon, signed_order

from ketapath.config import Settings
from ketapath.domain import exposure_summary as summary_domain
from ketapath.domain.exposure import doses_given
from ketapath.domain.session_events import ChartEntry
from ketapath.knowledge.exposure import load_exposure_thresholds
from ketapath.services import exposure_summary, patients, sessions
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import NotFound, PermissionDenied
from ketapath.services.permissions import Actor
from ketapath.services.sessions import ChartWrite, Correction, ScheduleRequest
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine
from ketapath.store.models import AuditEntry, ExposureSummaryRecord

ENTRY: TypeAdapter[Any] = TypeAdapter(ChartEntry)


class Nurse:
    """Charts one session, times in minutes after 09:00 of the clock's day."""

    def __init__(self, database: Database, actor: Actor, session_id: int, clock: ClinicClock):
        self.database, self.actor, self.session_id, self.clock = database, actor, session_id, clock
        self.seen = 0

    def at(self, minutes: float) -> datetime:
        assert self.clock.fixed is not None
        return self.clock.fixed.replace(hour=9, minute=0) + timedelta(minutes=minutes)

    def chart(self, kind: str, minutes: float, **fields: Any) -> Any:
        entry = ENTRY.validate_python({"kind": kind, "occurred_at": self.at(minutes), **fields})
        write = ChartWrite(expected_seq=self.seen, entry=entry)
        detail = sessions.chart(self.database, self.actor, self.session_id, write, clock=self.clock)
        self.seen = detail.chart.last_seq
        return detail

    def correct(self, seq: int, kind: str, minutes: float, **fields: Any) -> Any:
        entry = ENTRY.validate_python({"kind": kind, "occurred_at": self.at(minutes), **fields})
        request = Correction(expected_seq=self.seen, entry=entry, reason="time misread")
        detail = sessions.correct(
            self.database, self.actor, self.session_id, seq, request, clock=self.clock
        )
        self.seen = detail.chart.last_seq
        return detail

    def given(self, *, stop_at: float = 100) -> None:
        """Check-in, start, a pause of 20 min, resume, stop: seq 1-5 (pause is seq 3)."""
        fields = check_in_entry(self.at(0))
        fields.pop("kind"), fields.pop("occurred_at")
        self.chart("check_in", 0, **fields)
        self.chart("start", 5)
        self.chart("pause", 40, reason="patient_request")
        self.chart("resume", 60)
        self.chart("stop", stop_at, reason="other")


def _course(
    database: Database, users: dict[str, Actor], clock: ClinicClock, **order: Any
) -> tuple[int, list[int]]:
    order_id = signed_order(database, users, **order)
    request = ScheduleRequest(first_date=clock.today(), chair="Chair 5")
    scheduled = sessions.schedule_course(database, users["nurse"], order_id, request, clock=clock)
    return order_id, [s.id for s in scheduled]


def _rows(database: Database, subject: str) -> list[ExposureSummaryRecord]:
    with database.transaction() as session:
        return list(
            session.scalars(
                select(ExposureSummaryRecord)
                .where(ExposureSummaryRecord.subject == subject)
                .order_by(ExposureSummaryRecord.id)
            )
        )


def test_a_session_is_summarised_once_stored_and_then_read_from_the_store(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    _, (session_id, *_) = _course(database, users, clock)
    nurse = Nurse(database, users["nurse"], session_id, clock)
    nurse.given()
    first = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    assert first.status == "stored" and first.record is not None
    assert first.record.reason == "first computed" and first.history == []
    assert first.model_id == "perez-ruixo" and first.analyte == "S-ketamine"
    assert first.ketamine is not None and first.norketamine is not None
    assert first.ketamine.auc_mg_h_per_l > 0 and first.ketamine.peak_mg_per_l > 0
    assert first.norketamine.auc_inf_mg_h_per_l > first.norketamine.auc_mg_h_per_l
    assert {t.threshold_id for t in first.ketamine.time_above} >= {"ketamine-100"}
    converted = next(t for t in first.ketamine.time_above if t.threshold_id == "ketamine-100")
    assert converted.applied_mg_per_l == pytest.approx(0.05) and converted.converted
    # the numbers are the domain's, from the doses the chart gives
    again = exposure_summary.session_summary(database, users["physician"], session_id, clock=clock)
    assert again.record is not None and again.record.id == first.record.id
    assert again.ketamine == first.ketamine and again.norketamine == first.norketamine
    assert len(_rows(database, f"session:{session_id}")) == 1
    view = sessions.get_session(database, users["nurse"], session_id, clock=clock).chart
    assert first.total_mg == pytest.approx(view.dose.delivered_mg, rel=1e-9)
    with database.transaction() as session:
        audited = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "exposure.summary")
        ).all()
    assert [d["stored_id"] for d in audited] == [first.record.id, first.record.id]
    assert [d["recomputed"] for d in audited] == [False, False]


def test_a_chart_correction_stores_a_new_summary_superseding_the_old(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    _, (session_id, *_) = _course(database, users, clock)
    nurse = Nurse(database, users["nurse"], session_id, clock)
    nurse.given()
    before = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    nurse.correct(3, "pause", 30, reason="patient_request")  # the pause began 10 min earlier
    after = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    assert after.record is not None and before.record is not None
    assert after.record.id != before.record.id
    assert after.record.reason == "recomputed: the doses charted changed"
    assert [h.id for h in after.history] == [before.record.id]
    assert after.total_mg < before.total_mg
    assert after.ketamine is not None and before.ketamine is not None
    assert after.ketamine.auc_inf_mg_h_per_l < before.ketamine.auc_inf_mg_h_per_l
    rows = _rows(database, f"session:{session_id}")
    assert [r.supersedes_id for r in rows] == [None, rows[0].id]
    assert rows[0].summary["ketamine"]["auc_mg_h_per_l"] == before.ketamine.auc_mg_h_per_l


def test_a_weight_change_recomputes_the_summary_with_the_new_record(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    order_id, (session_id, *_) = _course(database, users, clock)
    Nurse(database, users["nurse"], session_id, clock).given()
    before = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    assert before.covariates is not None
    # 180 kg: outside Perez-Ruixo's study range (39-170 kg), so the clinic's rule takes Kamp
    document = {**base_patient(), "name": "Session Patient", "weight_kg": 180.0}
    document.pop("id", None)
    patients.amend_patient(
        database,
        users["nurse"],
        before.patient_id,
        document,
        reason="re-weighed",
        expected_version=before.patient_version,
        clock=clock,
    )
    after = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    assert after.covariates is not None and after.covariates.weight_kg == 180.0
    assert after.patient_version == before.patient_version + 1
    assert after.record is not None and after.record.patient_version == after.patient_version
    assert after.record.reason == (
        "recomputed: the patient's weight, age, sex or height, the model or its parameters changed"
    )
    assert before.model_id == "perez-ruixo" and after.model_id == "kamp"
    assert after.total_mg == before.total_mg  # the same doses
    assert after.norketamine is None and after.analyte == "racemic ketamine"
    assert after.history[0].patient_version == before.patient_version
    assert any(f.code == "exposure:outside-model-range" for f in after.findings) is False
    course = exposure_summary.course_summary(database, users["nurse"], order_id, clock=clock)
    assert course.covariates is not None and course.covariates.weight_kg == 180.0


def test_a_new_model_version_or_new_thresholds_recompute_and_keep_the_history(
    database: Database,
    users: dict[str, Actor],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    clock = clinic_noon()
    _, (session_id, *_) = _course(database, users, clock)
    Nurse(database, users["nurse"], session_id, clock).given()
    first = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    monkeypatch.setattr(summary_domain, "pk_models_version", lambda: 999)
    second = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    assert second.record is not None and second.record.model_version == 999
    assert second.record.reason == "recomputed: the model or its parameters changed"
    assert second.ketamine == first.ketamine  # the same parameters: the same numbers
    own = tmp_path / "thresholds.yaml"
    own.write_text(
        "kind: exposure_thresholds\nversion: 3\nentries:\n"
        "  - id: ketamine-80\n    name: ketamine 80 ng/mL\n    analyte: racemic ketamine\n"
        "    concentration_ng_per_ml: 80\n    basis: policy\n"
        "    meaning: Our clinic's own reference line.\n"
        "    source: {cite: [{ref: ketapath-clinic-policy, at: our lines}]}\n",
        encoding="utf-8",
    )
    settings = Settings(exposure_thresholds_file=str(own))
    third = exposure_summary.session_summary(
        database, users["nurse"], session_id, clock=clock, settings=settings
    )
    assert third.record is not None and third.record.thresholds_version == 3
    assert third.record.reason == "recomputed: the reference concentrations changed"
    assert third.ketamine is not None
    assert [t.threshold_id for t in third.ketamine.time_above] == ["ketamine-80"]
    assert third.norketamine is not None and third.norketamine.time_above == []
    assert [h.id for h in third.history] == [second.record.id, first.record.id]  # type: ignore[union-attr]


def test_a_running_pump_is_provisional_and_not_stored_and_nothing_given_is_said(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    _, (session_id, *_) = _course(database, users, clock)
    nurse = Nurse(database, users["nurse"], session_id, clock)
    fields = check_in_entry(nurse.at(0))
    fields.pop("kind"), fields.pop("occurred_at")
    nurse.chart("check_in", 0, **fields)
    empty = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    assert empty.status == "nothing given" and empty.ketamine is None and empty.record is None
    nurse.chart("start", 5)
    running = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    assert running.status == "provisional" and running.record is None
    assert running.ketamine is not None and running.ketamine.peak_mg_per_l > 0
    assert _rows(database, f"session:{session_id}") == []


def test_a_course_counts_what_remains_of_each_session_in_the_next(
    database: Database, users: dict[str, Actor]
) -> None:
    day_one = clinic_noon()
    order_id, ids = _course(database, users, day_one, protocol_id="crps-schwartzman-10day")
    Nurse(database, users["nurse"], ids[0], day_one).given(stop_at=170)
    day_two = clinic_noon(1)
    Nurse(database, users["nurse"], ids[1], day_two).given(stop_at=170)
    course = exposure_summary.course_summary(database, users["physician"], order_id, clock=day_two)
    assert course.status == "stored" and course.sessions_in_course == 10
    first, second = course.sessions[0], course.sessions[1]
    assert first.status == second.status == "stored" and first.offset_min == 0
    assert second.offset_min == pytest.approx(24 * 60)
    assert [s.status for s in course.sessions[2:]] == ["nothing given"] * 8
    one = exposure_summary.session_summary(database, users["nurse"], ids[0], clock=day_two)
    two = exposure_summary.session_summary(database, users["nurse"], ids[1], clock=day_two)
    assert course.ketamine is not None and one.ketamine is not None and two.ketamine is not None
    assert course.total_mg == pytest.approx(one.total_mg + two.total_mg)
    # the model is linear: the course's AUC to infinity is the sessions' sum
    assert course.ketamine.auc_inf_mg_h_per_l == pytest.approx(
        one.ketamine.auc_inf_mg_h_per_l + two.ketamine.auc_inf_mg_h_per_l, rel=1e-9
    )
    assert course.norketamine is not None and one.norketamine and two.norketamine
    # norketamine left from day one is still there on day two
    assert course.norketamine.peak_mg_per_l > max(
        one.norketamine.peak_mg_per_l, two.norketamine.peak_mg_per_l
    )
    assert len(_rows(database, f"course:{order_id}")) == 1
    again = exposure_summary.course_summary(database, users["nurse"], order_id, clock=day_two)
    assert again.record is not None and course.record is not None
    assert again.record.id == course.record.id


def test_the_summary_follows_the_roles_and_says_what_is_missing(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    order_id, (session_id, *_) = _course(database, users, clock)
    assert (
        exposure_summary.session_summary(
            database, users["pharmacist"], session_id, clock=clock
        ).status
        == "nothing given"
    )
    for role in ("researcher", "admin"):
        with pytest.raises(PermissionDenied):
            exposure_summary.session_summary(database, users[role], session_id, clock=clock)
        with pytest.raises(PermissionDenied):
            exposure_summary.course_summary(database, users[role], order_id, clock=clock)
    with pytest.raises(NotFound):
        exposure_summary.session_summary(database, users["nurse"], 999_999, clock=clock)
    with pytest.raises(NotFound):
        exposure_summary.course_summary(database, users["nurse"], 999_999, clock=clock)


def test_stored_summaries_are_never_changed_and_equal_a_fresh_computation(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    _, (session_id, *_) = _course(database, users, clock)
    Nurse(database, users["nurse"], session_id, clock).given()
    stored = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(select(ExposureSummaryRecord))  # reading is fine
        session.query(ExposureSummaryRecord).update({"reason": "tampered"})
    (row,) = _rows(database, f"session:{session_id}")
    # deterministic: the stored inputs give the stored numbers again
    view = sessions.get_session(database, users["nurse"], session_id, clock=clock).chart
    from ketapath.domain.exposure import DeliveryLog
    from ketapath.pk import Covariates

    doses, _ = doses_given(
        DeliveryLog(
            tuple((s.start, s.end, s.rate_mg_per_h) for s in view.segments),
            tuple((b.at, b.mg) for b in view.boluses),
            view.at,
        )
    )
    assert stored.covariates is not None
    patient = Covariates(**stored.covariates.model_dump())
    fresh = summary_domain.summarise_doses(patient, doses, load_exposure_thresholds())
    assert fresh.as_dict() == row.summary
    assert summary_domain.inputs_of(patient, doses, load_exposure_thresholds()).digest == (
        row.inputs_digest
    )


def test_a_refresh_stores_what_reads_would_and_then_only_what_changed(
    database: Database, users: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ketapath.services.permissions import SYSTEM

    day_one = clinic_noon()
    order_id, ids = _course(database, users, day_one, protocol_id="crps-schwartzman-10day")
    Nurse(database, users["nurse"], ids[0], day_one).given()
    Nurse(database, users["nurse"], ids[1], clinic_noon(1)).given()
    clock = clinic_noon(1)
    first = exposure_summary.refresh(database, SYSTEM, clock=clock)
    assert (first.sessions, first.courses, first.stored, first.unchanged) == (10, 1, 3, 0)
    assert first.nothing_given == 8 and first.provisional == 0
    # a read finds the refreshed rows standing
    read = exposure_summary.session_summary(database, users["nurse"], ids[0], clock=clock)
    assert read.record is not None and read.record.reason == "first computed"
    course = exposure_summary.course_summary(database, users["nurse"], order_id, clock=clock)
    assert course.record is not None and len(_rows(database, f"course:{order_id}")) == 1
    again = exposure_summary.refresh(database, users["physician"], clock=clock)
    assert (again.stored, again.unchanged) == (0, 3)
    monkeypatch.setattr(summary_domain, "pk_models_version", lambda: 999)
    changed = exposure_summary.refresh(database, SYSTEM, clock=clock)
    assert (changed.stored, changed.unchanged) == (3, 0)
    newest = _rows(database, f"session:{ids[0]}")[-1]
    assert newest.reason == "recomputed: the model or its parameters changed"
    assert newest.model_version == 999
    # the batch computed the same numbers a read computes
    assert newest.summary == _rows(database, f"session:{ids[0]}")[0].summary
    with pytest.raises(PermissionDenied):
        exposure_summary.refresh(database, users["nurse"], clock=clock)
    with database.transaction() as session:
        audited = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "exposure.refresh")
        ).all()
    assert [d["stored"] for d in audited if d] == [3, 0, 3]


# -- the refresh in batches -------------------------------------------------------------------
@pytest.fixture
def twin(database: Database, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A second empty, migrated database on the backend of ``database`` (PostgreSQL: a schema
    of its own on the same server, dropped after the test)."""
    if database.backend == "sqlite":
        path = tmp_path / "twin.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        db = Database(f"sqlite:///{path}")
        yield db
        db.dispose()
        return
    base = make_url(database.url).set(query={})
    schema = f"kp_twin_{secrets.token_hex(4)}"
    admin = make_engine(base.render_as_string(hide_password=False))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.set(query={"options": f"-csearch_path={schema}"})
    db = Database(url.render_as_string(hide_password=False))
    migrate.upgrade(db.engine)
    try:
        yield db
    finally:
        db.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _staff(database: Database) -> dict[str, Actor]:
    """One user per role, as the ``users`` fixture makes them (the same ids on a twin)."""
    from ketapath.services import auth
    from ketapath.services.permissions import ROLES, SYSTEM

    return {
        role: Actor(view.id, view.username, view.role)
        for role in ROLES
        for view in [auth.add_user(database, SYSTEM, role, role, "correct horse battery")]
    }


def _registry_refreshed(
    database: Database, users: dict[str, Actor], orders_per_transaction: int
) -> list[dict[str, Any]]:
    """Four courses (two sessions given over two days, and eight not; one session given and
    corrected after the first refresh; a pump still running; nothing given), refreshed, then
    a weight change and a chart correction, refreshed again; the two reports."""
    from ketapath.services.permissions import SYSTEM

    day_one, day_two = clinic_noon(), clinic_noon(1)
    ten_days, ids = _course(database, users, day_one, protocol_id="crps-schwartzman-10day")
    Nurse(database, users["nurse"], ids[0], day_one).given()
    Nurse(database, users["nurse"], ids[1], day_two).given(stop_at=170)
    _, (corrected_id, *_) = _course(database, users, day_one, name="Second Patient")
    corrected = Nurse(database, users["nurse"], corrected_id, day_one)
    corrected.given()
    _, (running_id, *_) = _course(database, users, day_two, name="Third Patient")
    running = Nurse(database, users["nurse"], running_id, day_two)
    fields = check_in_entry(running.at(0))
    fields.pop("kind"), fields.pop("occurred_at")
    running.chart("check_in", 0, **fields)
    running.chart("start", 5)
    _course(database, users, day_two, name="Fourth Patient")
    reports = [
        exposure_summary.refresh(
            database, SYSTEM, clock=day_two, orders_per_transaction=orders_per_transaction
        )
    ]
    patient_id = _rows(database, f"course:{ten_days}")[0].patient_id
    document = {**base_patient(), "name": "Session Patient", "weight_kg": 180.0}
    document.pop("id", None)
    patients.amend_patient(
        database, users["nurse"], patient_id, document, reason="re-weighed", expected_version=1
    )
    corrected.correct(3, "pause", 30, reason="patient_request")
    reports.append(
        exposure_summary.refresh(
            database, SYSTEM, clock=day_two, orders_per_transaction=orders_per_transaction
        )
    )
    return [r.model_dump(exclude={"seconds"}) for r in reports]


def _stored(database: Database) -> list[Any]:
    """Every stored summary row, every column but the time it was computed."""
    columns = [c for c in ExposureSummaryRecord.__table__.columns if c.name != "computed_at"]
    with database.transaction() as session:
        return list(session.execute(select(*columns).order_by(columns[0])))


def test_a_refresh_in_batches_stores_exactly_what_a_refresh_order_by_order_stores(
    database: Database, twin: Database
) -> None:
    one_by_one = _registry_refreshed(database, _staff(database), orders_per_transaction=1)
    batched = _registry_refreshed(twin, _staff(twin), orders_per_transaction=200)
    assert one_by_one == batched
    first, second = batched
    assert (first["sessions"], first["courses"], first["stored"]) == (13, 4, 5)
    assert (first["provisional"], first["nothing_given"]) == (2, 10)
    assert (second["stored"], second["unchanged"], second["provisional"]) == (5, 0, 2)
    rows = _stored(database)
    assert rows == _stored(twin)
    assert [r.reason for r in rows] == ["first computed"] * 5 + [
        "recomputed: the patient's weight, age, sex or height, the model or its parameters changed"
    ] * 3 + ["recomputed: the doses charted changed"] * 2
    assert [r.supersedes_id for r in rows[5:]] == [r.id for r in rows[:5]]
    with database.transaction() as a, twin.transaction() as b:
        audited = [
            s.scalars(
                select(AuditEntry.detail)
                .where(AuditEntry.action == "exposure.refresh")
                .order_by(AuditEntry.seq)
            ).all()
            for s in (a, b)
        ]
    assert audited[0] == audited[1] == batched


def _statements(database: Database, call: Callable[[], object]) -> int:
    """The statements ``call`` sends, but the inserts of stored rows (SQLite sends one a row)."""
    seen: list[str] = []

    def note(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", note)
    try:
        call()
    finally:
        event.remove(database.engine, "before_cursor_execute", note)
    return sum(1 for s in seen if not s.startswith("INSERT INTO exposure_summaries"))


def test_a_refresh_reads_its_orders_in_a_fixed_number_of_statements(
    database: Database, users: dict[str, Actor]
) -> None:
    from ketapath.services.permissions import SYSTEM

    clock = clinic_noon()

    def refresh(orders_per_transaction: int = 200) -> None:
        exposure_summary.refresh(
            database, SYSTEM, clock=clock, orders_per_transaction=orders_per_transaction
        )

    _, (first, *_) = _course(database, users, clock)
    Nurse(database, users["nurse"], first, clock).given()
    one = _statements(database, refresh), _statements(database, refresh)
    for n in range(3):
        _, (session_id, *_) = _course(database, users, clock, name=f"Patient {n}")
        Nurse(database, users["nurse"], session_id, clock).given()
    four = _statements(database, refresh), _statements(database, refresh)
    assert four == one  # storing, then finding all unchanged: as many for four orders as one
    assert _statements(database, lambda: refresh(orders_per_transaction=1)) > four[1]


# PostgreSQL only: SQLite admits one writer at a time, so nothing is stored during a refresh
@pytest.mark.parametrize(
    "database", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_refresh_meeting_a_row_stored_at_the_same_moment_keeps_that_row(
    database: Database, users: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ketapath.services.permissions import SYSTEM

    clock = clinic_noon()
    order_id, (session_id, *_) = _course(database, users, clock)
    Nurse(database, users["nurse"], session_id, clock).given()
    summarise = exposure_summary._summarise_stale
    read: list[int | None] = []

    def read_meanwhile(stale: Any, limits: Any) -> Any:
        # a nurse opens the session's summary while the refresh computes: it stores its row
        view = exposure_summary.session_summary(database, users["nurse"], session_id, clock=clock)
        read.append(view.record.id if view.record else None)
        return summarise(stale, limits)

    monkeypatch.setattr(exposure_summary, "_summarise_stale", read_meanwhile)
    report = exposure_summary.refresh(database, SYSTEM, clock=clock)
    assert (report.stored, report.unchanged) == (2, 0)  # the nurse's row stands for the refresh
    assert [r.id for r in _rows(database, f"session:{session_id}")] == read
    assert len(_rows(database, f"course:{order_id}")) == 1
