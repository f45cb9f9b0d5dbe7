"""Databases for the integration tests: SQLite and PostgreSQL, schema made by the migrations.

PostgreSQL is the server on 127.0.0.1:5432, database ``test`` (trust auth); override with
``KETAPATH_TEST_POSTGRES_URL``. Each test session works in a fresh schema of its own, dropped
at the end, so repeated or parallel runs do not collide. When the server is absent the
PostgreSQL cases are skipped with the reason, unless ``KETAPATH_REQUIRE_POSTGRES=1`` (CI),
which makes them fail instead.
"""

from __future__ import annotations

import functools
import getpass
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

if TYPE_CHECKING:
    from ketapath.services.clock import ClinicClock

BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))
TEST_PASSWORD = "correct horse battery"
T = TypeVar("T")


def _postgres_candidates() -> list[str]:
    explicit = os.environ.get("KETAPATH_TEST_POSTGRES_URL")
    if explicit:
        return [explicit]
    users = ["postgres", getpass.getuser()]
    return [f"postgresql+psycopg://{user}@127.0.0.1:5432/test" for user in users]


@functools.cache
def _connectable_postgres() -> tuple[str | None, str]:
    reasons = []
    for url in _postgres_candidates():
        engine = make_engine(url + ("&" if "?" in url else "?") + "connect_timeout=3")
        try:
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            return url, ""
        except Exception as error:  # any failure to connect means "absent"
            reasons.append(f"{make_url(url).render_as_string()}: {type(error).__name__}")
        finally:
            engine.dispose()
    return None, "; ".join(reasons)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh, migrated schema on the PostgreSQL server (dropped after the session)."""
    base, why = _connectable_postgres()
    if base is None:
        message = f"PostgreSQL server not reachable ({why})"
        if os.environ.get("KETAPATH_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " and KETAPATH_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(message)
    schema = f"kp_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # A fresh schema per session; commits need not wait for the disk in tests.
    url = f"{base}?options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def _empty_postgres(db: Database) -> None:
    """Empty every table between tests. The append-only tables refuse TRUNCATE; the test
    role is a superuser, which may switch triggers off for its own session."""
    tables = [t for t in inspect(db.engine).get_table_names() if t != "alembic_version"]
    with db.engine.begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "ketapath.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        db = Database(f"sqlite:///{path}")
    else:
        db = Database(request.getfixturevalue("postgres_url"))
        _empty_postgres(db)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its cheapest, so that creating users does not dominate the suite's time."""
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def users(database: Database) -> dict[str, Actor]:
    """One user per role (user name = role), password ``TEST_PASSWORD``."""
    actors = {}
    for role in ROLES:
        view = auth.add_user(database, SYSTEM, role, role, TEST_PASSWORD, full_name=role.title())
        actors[role] = Actor(view.id, view.username, view.role)
    return actors


@pytest.fixture
def settings(database: Database) -> Settings:
    return Settings(
        database_url=database.url,
        secret_key="integration-test-secret-key",
        lockout_threshold=3,
    )


@pytest.fixture
def client(settings: Settings, database: Database, _clients: dict[str, TestClient]) -> TestClient:
    """The application on the test database; HTTPS so that Secure cookies flow.

    One application per backend serves the whole session (building it for every test
    dominated the suite's time); each test points it at its own database and starts
    without cookies.
    """
    client = _clients.get(database.backend)
    if client is None:
        client = TestClient(create_app(settings, database=database), base_url="https://testserver")
        client.__enter__()
        _clients[database.backend] = client
    app = client.app
    app.state.db = database  # type: ignore[attr-defined]
    app.state.settings = settings  # type: ignore[attr-defined]
    client.cookies.clear()
    return client


@pytest.fixture(scope="session")
def _clients() -> Iterator[dict[str, TestClient]]:
    clients: dict[str, TestClient] = {}
    yield clients
    for client in clients.values():
        client.__exit__(None, None, None)


def browser_sign_in(
    client: TestClient, username: str, password: str = TEST_PASSWORD
) -> httpx.Response:
    """Sign a browser in as a browser client does: the sign-in token first, then the session."""
    token = client.get("/api/v1/auth/csrf").json()["csrf_token"]
    return client.post(
        "/api/v1/auth/session",
        data={"username": username, "password": password},
        headers={"X-CSRF-Token": token},
    )


def bearer(client: TestClient, username: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def headers(client: TestClient, users: dict[str, Actor]) -> dict[str, dict[str, str]]:
    """Bearer headers for each role (user name = role)."""
    return {role: bearer(client, role) for role in users}


def count_statements(database: Database, call: Callable[[], T]) -> tuple[int, T]:
    """How many SQL statements ``call`` sends, and what it returns."""
    from sqlalchemy import event

    seen: list[object] = []

    def count_it(*args: object) -> None:
        seen.append(args[2])

    event.listen(database.engine, "before_cursor_execute", count_it)
    try:
        result = call()
    finally:
        event.remove(database.engine, "before_cursor_execute", count_it)
    return len(seen), result


# ------------------------------------------------------------------ infusion sessions


def signed_order(
    database: Database,
    users: dict[str, Actor],
    *,
    protocol_id: str = "asra-initial",
    setting: str = "clinic",
    **changes: object,
) -> int:
    """A screened patient (``tests.conftest.base_patient`` with ``changes``) and a physician's
    signed order for ``protocol_id``; returns the order id."""
    from tests.conftest import base_patient

    from ketapath.services import orders, patients, screening
    from ketapath.services.orders import SignRequest

    document = {**base_patient(**changes), "name": str(changes.get("name", "Session Patient"))}
    document.pop("id", None)
    patient_id = patients.create_patient(database, users["nurse"], document).id
    screening.run_screening(database, users["physician"], patient_id)
    request = SignRequest(
        protocol_id=protocol_id,
        setting=setting,
        override_reason="test: reviewed",  # type: ignore[arg-type]
    )
    return orders.sign_order(database, users["physician"], patient_id, request).id


def clinic_noon(days: int = 0) -> ClinicClock:
    """A clinic clock stopped at 12:00 UTC today (plus ``days``), in UTC: tests chart whole
    mornings without meeting midnight."""
    from datetime import UTC, datetime, time, timedelta

    from ketapath.services.clock import ClinicClock

    day = datetime.now(UTC).date() + timedelta(days=days)
    return ClinicClock(zone=UTC, fixed=datetime.combine(day, time(12, 0), tzinfo=UTC))


def scheduled_session(
    database: Database,
    users: dict[str, Actor],
    clock: ClinicClock | None = None,
    *,
    chair: str = "Chair 1",
    **order: object,
) -> int:
    """A signed order scheduled from the clock's today in ``chair``; the first session's id."""
    from ketapath.services import sessions
    from ketapath.services.sessions import ScheduleRequest

    clock = clock or clinic_noon()
    order_id = signed_order(database, users, **order)
    request = ScheduleRequest(first_date=clock.today(), chair=chair)
    return sessions.schedule_course(database, users["nurse"], order_id, request, clock=clock)[0].id


def check_in_entry(at: datetime, **changes: object) -> dict[str, object]:
    """The fields of an unremarkable check-in at ``at`` (a nurse's confirmations, a baseline)."""
    from tests.conftest import baseline_vitals

    entry: dict[str, object] = {
        "kind": "check_in",
        "occurred_at": at.isoformat(),
        "consent_confirmed": True,
        "fasting_confirmed": True,
        "escort_present": True,
        "allergies_confirmed": True,
        "pregnancy_test": "negative",
        "baseline": baseline_vitals(),
        "baseline_pain_nrs": 6,
    }
    entry.update(changes)
    return entry


# ------------------------------------------------------------------ behind the application's back


@contextmanager
def as_superuser(database: Database) -> Iterator[Connection]:
    """A connection on which the append-only triggers do not fire (committed at the end)."""
    with database.engine.begin() as connection:
        if database.backend == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            yield connection
            return
        triggers = connection.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        for name, _sql in triggers:
            connection.execute(text(f'DROP TRIGGER "{name}"'))
        yield connection
        for _name, sql in triggers:
            connection.execute(text(sql))


# ------------------------------------------------------------------ the controlled-drug ledger


class LedgerDesk:
    """The controlled-drug ledger through the API: one product (50 mg/mL, 10 mL vials) in one
    safe, lot ``lot``; posts as a role (bearer ``headers``) and answers the raw response.
    ``stock_up`` receives the first vials as the pharmacist."""

    API = "/api/v1/ledger"

    def __init__(self, client: TestClient, headers: dict[str, dict[str, str]]) -> None:
        self.client, self.headers = client, headers
        self.product_id = self.location_id = 0
        self.lot = "KET-2031A"

    def post(self, path: str, body: dict[str, object], role: str = "pharmacist") -> httpx.Response:
        return self.client.post(self.API + path, json=body, headers=self.headers[role])

    def get(self, path: str, role: str = "pharmacist", **params: object) -> httpx.Response:
        query = {k: v for k, v in params.items() if v is not None}
        # (httpx replaces a query written in the path by ``params``, even an empty one)
        return self.client.get(self.API + path, params=query or None, headers=self.headers[role])

    def ok(self, response: httpx.Response, status: int = 201) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def stock_up(self, vials: int = 10) -> LedgerDesk:
        product = {
            "name": "Ketamine 50 mg/mL, 10 mL vial",
            "strength_mg_per_ml": "50",
            "container_ml": "10",
            "manufacturer": "Example Pharma",
        }
        self.product_id = self.ok(self.post("/products", product))["id"]
        location = {"name": "CD safe 1", "description": "Pharmacy, locked room"}
        self.location_id = self.ok(self.post("/locations", location))["id"]
        self.ok(self.receive(vials))
        return self

    def receipt(self, vials: int, **changes: object) -> dict[str, object]:
        from ketapath.services.clock import clinic_clock

        today = clinic_clock(self.client.app.state.settings).today()  # type: ignore[attr-defined]
        body: dict[str, object] = {
            "product_id": self.product_id,
            "location_id": self.location_id,
            "lot": self.lot,
            "expiry": (today + timedelta(days=400)).isoformat(),
            "containers": vials,
            "received_on": today.isoformat(),
            "supplier_name": "Wholesaler Ltd",
            "supplier_address": "1 Supply Road, Springfield",
            "supplier_registration": "RW1234567",
            "invoice_number": "INV-001",
        }
        body.update(changes)
        return body

    def receive(self, vials: int, **changes: object) -> httpx.Response:
        return self.post("/receipts", self.receipt(vials, **changes))

    def dispensing(self, session_id: int, ml: str = "4", bag_ml: str = "200") -> dict[str, object]:
        return {
            "session_id": session_id,
            "product_id": self.product_id,
            "location_id": self.location_id,
            "lot": self.lot,
            "volume_ml": ml,
            "final_volume_ml": bag_ml,
        }

    def dispense(self, session_id: int, role: str = "nurse", **kw: str) -> httpx.Response:
        return self.post("/dispensings", self.dispensing(session_id, **kw), role)

    def waste(
        self,
        session_id: int,
        *,
        role: str = "nurse",
        witness: str = "pharmacist",
        password: str = TEST_PASSWORD,
        **amount: object,
    ) -> httpx.Response:
        body = {
            "session_id": session_id,
            "witness_username": witness,
            "witness_password": password,
            **amount,
        }
        return self.post("/wastes", body, role)

    def balance_mg(self) -> float:
        lines = self.ok(self.get("/stock"), 200)["lines"]
        return float(sum(x["balance_mg"] for x in lines if x["lot"] == self.lot))


# ------------------------------------------------------------------ a course given


def deliver_session(
    database: Database,
    actor: Actor,
    session_id: int,
    clock: ClinicClock,
    *,
    minutes: float = 120,
    bolus_mg: float | None = None,
    adjunct_mg: float | None = None,
    pause: tuple[float, float] | None = None,
    side_effect: str | None = None,
    stop_reason: str | None = None,
) -> Any:
    """Chart one session through the services on the clock's day: check-in at 09:00, start at
    09:05 (a bolus and an adjunct just after, if given), a side effect and a pause from
    ``pause[0]`` to ``pause[1]`` minutes after the start (if given), and the end ``minutes``
    after the start: complete, or a stop for ``stop_reason``; then the observation begins.
    Returns the chart as the services replay it (``SessionDetail``)."""
    from pydantic import TypeAdapter

    from ketapath.domain.session_events import ChartEntry
    from ketapath.services import sessions

    assert clock.fixed is not None
    t0 = clock.fixed.replace(hour=9, minute=0, second=0, microsecond=0)
    entries: list[tuple[float, dict[str, Any]]] = [(0, check_in_entry(t0)), (5, {"kind": "start"})]
    if bolus_mg:
        entries.append((6, {"kind": "bolus", "dose_mg": bolus_mg}))
    if adjunct_mg:
        entries.append(
            (7, {"kind": "adjunct", "drug": "midazolam", "dose": adjunct_mg, "unit": "mg"})
        )
    if pause:
        if side_effect:
            entries.append(
                (
                    5 + pause[0] - 1,
                    {"kind": "side_effect", "effect": side_effect, "severity": "moderate"},
                )
            )
        entries.append(
            (
                5 + pause[0],
                {"kind": "pause", "reason": "side_effect" if side_effect else "equipment"},
            )
        )
        entries.append((5 + pause[1], {"kind": "resume"}))
    end: dict[str, Any] = (
        {"kind": "stop", "reason": stop_reason} if stop_reason else {"kind": "complete"}
    )
    entries.append((5 + minutes, end))
    entries.append((5 + minutes + 1, {"kind": "begin_observation"}))
    adapter: TypeAdapter[Any] = TypeAdapter(ChartEntry)
    detail: Any = None
    seen = 0
    for offset, fields in entries:
        at = t0 + timedelta(minutes=offset)
        data = {**fields, "occurred_at": at}
        if data["kind"] == "adjunct":
            data.setdefault("route", "iv")
        write = sessions.ChartWrite(expected_seq=seen, entry=adapter.validate_python(data))
        result = sessions.chart(database, actor, session_id, write, clock=clock)
        seen = result.chart.last_seq
        detail = result
    return detail


def given_course(
    database: Database,
    users: dict[str, Actor],
    *,
    sessions_given: int = 2,
    protocol_id: str = "mixed-kang-3session",
    **patient: object,
) -> tuple[int, list[int]]:
    """A signed course scheduled from today (``clinic_noon``), with its first
    ``sessions_given`` sessions charted on their own days (the first with a pause for a side
    effect, a bolus and midazolam; the second stopped early at the patient's request).
    Returns the order id and the session ids in order. Charting a later session's day uses
    ``clinic_noon(days)``; read the course with a clock on or after the last of them."""
    from ketapath.services import sessions
    from ketapath.services.sessions import ScheduleRequest

    clock = clinic_noon()
    order_id = signed_order(
        database,
        users,
        protocol_id=protocol_id,
        diagnoses=patient.pop("diagnoses", ["mixed-neuropathic"]),
        **patient,
    )
    scheduled = sessions.schedule_course(
        database,
        users["nurse"],
        order_id,
        ScheduleRequest(first_date=clock.today(), chair="Chair 1"),
        clock=clock,
    )
    ids = [s.id for s in scheduled]
    for index, summary in enumerate(scheduled[:sessions_given]):
        day = (summary.scheduled_on - clock.today()).days
        options: dict[str, Any] = (
            {
                "bolus_mg": 5.0,
                "adjunct_mg": 2.0,
                "pause": (25, 90),
                "side_effect": "nausea-vomiting",
            }
            if index == 0
            else {"stop_reason": "patient_request", "minutes": 70}
        )
        deliver_session(database, users["nurse"], summary.id, clinic_noon(day), **options)
    return order_id, ids


# ------------------------------------------------------------------ FHIR


def fhir_patient(database: Database, users: dict[str, Actor], clock: ClinicClock) -> int:
    """A patient with something of everything a FHIR Bundle holds: diagnoses (one not
    recognised), comorbidities, an allergy, medicines (one not recognised), assessments, a
    signed course with a session charted (check-in, start, a bolus, observations, an
    adjunct, stop) and a second session scheduled; returns the patient id."""
    from datetime import timedelta

    from pydantic import TypeAdapter
    from tests.conftest import base_patient, baseline_vitals

    from ketapath.domain.session_events import ChartEntry
    from ketapath.services import assessments, orders, patients, screening, sessions
    from ketapath.services.assessments import AssessmentInput
    from ketapath.services.orders import SignRequest
    from ketapath.services.sessions import ChartWrite, ScheduleRequest

    document = base_patient(
        name="Fhir Export",
        birth_date="1970-04-02",
        height_cm=171,
        weight_measured_on=clock.today().isoformat(),
        comorbidities=["asthma", {"code": "frobnitz syndrome", "note": "per GP letter"}],
        allergies=[{"substance": "penicillin", "reaction": "rash"}],
        medications=[
            {"name": "oxycodone", "dose": 20, "unit": "mg", "frequency": "bd", "route": "oral"},
            {"name": "co-codamol 30/500", "dose": 2, "unit": "tablets", "frequency": "qds"},
            {"name": "wizzleprofen", "daily_dose": 3, "unit": "mg", "indication": "aches"},
        ],
        gp="Dr Grey",
    )
    document.pop("id")
    document.pop("age_years")
    nurse, physician = users["nurse"], users["physician"]
    patient_id = patients.create_patient(database, nurse, document, clock=clock).id
    for instrument, answers in (
        ("nrs", {"pain": 7}),
        ("phq9", {f"q{i}": 1 for i in range(1, 10)}),
    ):
        assessments.record_assessment(
            database, nurse, patient_id, AssessmentInput(instrument_id=instrument, answers=answers)
        )
    screening.run_screening(database, physician, patient_id)
    request = SignRequest(protocol_id="mixed-kang-3session", override_reason="test: reviewed")  # type: ignore[arg-type]
    order_id = orders.sign_order(database, physician, patient_id, request, clock=clock).id
    scheduled = sessions.schedule_course(
        database,
        nurse,
        order_id,
        ScheduleRequest(first_date=clock.today(), chair="C1"),
        clock=clock,
    )
    entry: TypeAdapter[Any] = TypeAdapter(ChartEntry)
    nine = (clock.fixed or clock.now()).replace(hour=9, minute=0, second=0, microsecond=0)
    seen = 0
    for minutes, kind, fields in (
        (
            0,
            "check_in",
            {k: v for k, v in check_in_entry(nine).items() if k not in ("kind", "occurred_at")},
        ),
        (5, "start", {}),
        (6, "bolus", {"dose_mg": 5}),
        (20, "vitals", baseline_vitals(heart_rate=80, etco2=38)),
        (25, "adjunct", {"drug": "midazolam", "dose": 1, "unit": "mg", "route": "iv"}),
        (50, "stop", {"reason": "patient_request"}),
    ):
        at = nine + timedelta(minutes=minutes)
        write = ChartWrite(
            expected_seq=seen,
            entry=entry.validate_python({"kind": kind, "occurred_at": at, **fields}),
        )
        seen = sessions.chart(database, nurse, scheduled[0].id, write, clock=clock).chart.last_seq
    return patient_id


# ------------------------------------------------------------------ a course given in the past


@dataclass(frozen=True)
class GivenCourse:
    """A signed course whose sessions were charted on past clinic days (``given_course``)."""

    order_id: int
    patient_id: int
    session_ids: tuple[int, ...]
    session_days: tuple[date, ...]

    @property
    def last_day(self) -> date:
        return self.session_days[-1]


def past_noon(day: date) -> ClinicClock:
    """A clinic clock (UTC) stopped at 13:00 on ``day``."""
    from datetime import UTC, time

    from ketapath.services.clock import ClinicClock

    return ClinicClock(zone=UTC, fixed=datetime.combine(day, time(13, 0), tzinfo=UTC))


def past_course(
    database: Database,
    users: dict[str, Actor],
    *,
    days_ago: int,
    protocol_id: str = "asra-initial",
    stop: str | None = None,
    sessions: int | None = None,
    patient_id: int | None = None,
    **patient: object,
) -> GivenCourse:
    """A screened patient's signed course scheduled ``days_ago`` days before the clinic's
    today (UTC), each session (the first ``sessions`` of them; default all) checked in at
    09:00, started at 09:15 and completed at 12:15 on its own day, or stopped at 10:15 for
    ``stop``; the clinic clock of each write is 13:00 on that day. With ``patient_id`` the
    course is that patient's next one (screened again and signed)."""
    from datetime import UTC, time

    from ketapath.services import orders, screening
    from ketapath.services import sessions as infusions
    from ketapath.services.orders import SignRequest
    from ketapath.services.sessions import ScheduleRequest

    if patient_id is None:
        order_id = signed_order(database, users, protocol_id=protocol_id, **patient)
    else:
        screening.run_screening(database, users["physician"], patient_id)
        request = SignRequest(
            protocol_id=protocol_id,
            setting="clinic",
            override_reason="test: reviewed",  # type: ignore[arg-type]
        )
        order_id = orders.sign_order(database, users["physician"], patient_id, request).id
    first = datetime.now(UTC).date() - timedelta(days=days_ago)
    scheduled = infusions.schedule_course(
        database,
        users["nurse"],
        order_id,
        ScheduleRequest(first_date=first, chair="Chair 9"),
        clock=past_noon(first),
    )
    chosen = scheduled if sessions is None else scheduled[:sessions]
    for summary in chosen:
        day = summary.scheduled_on
        at = datetime.combine(day, time(9, 0), tzinfo=UTC)
        end = (
            {"kind": "stop", "occurred_at": at + timedelta(hours=1, minutes=15), "reason": stop}
            if stop
            else {"kind": "complete", "occurred_at": at + timedelta(hours=3, minutes=15)}
        )
        entries = [
            check_in_entry(at),
            {"kind": "start", "occurred_at": at + timedelta(minutes=15)},
            end,
        ]
        for seq, entry in enumerate(entries):
            write = infusions.ChartWrite.model_validate({"expected_seq": seq, "entry": entry})
            infusions.chart(database, users["nurse"], summary.id, write, clock=past_noon(day))
    return GivenCourse(
        order_id=order_id,
        patient_id=scheduled[0].patient_id,
        session_ids=tuple(s.id for s in chosen),
        session_days=tuple(s.scheduled_on for s in chosen),
    )


def write_diary(
    database: Database,
    users: dict[str, Actor],
    order_id: int,
    pains: dict[date, int],
    *,
    sleep: dict[date, int] | None = None,
) -> None:
    """The course's diary written through a link the nurse gives on the earliest day, each
    day written at 13:00 on that day. The diary's in-memory rate limit is reset first: its
    window counts writes at the clocks' times, and another test's link of the same id may
    have written at later ones."""
    from ketapath.services import diary

    diary.reset_rate_limits()
    first = min(pains)
    link = diary.create_link(
        database, users["nurse"], order_id, days_valid=120, clock=past_noon(first)
    )
    opened = diary.open_link(database, link.url.rsplit("/", 1)[1], clock=past_noon(first))
    for day, pain in sorted(pains.items()):
        body: dict[str, object] = {"day": day.isoformat(), "pain_nrs": pain}
        if sleep and day in sleep:
            body["sleep_quality"] = sleep[day]
        diary.record_entry(database, opened.session, body, clock=past_noon(day))


def course_assessment(
    database: Database,
    users: dict[str, Actor],
    course: GivenCourse,
    instrument_id: str,
    answers: dict[str, object],
    *,
    label: str,
    day: date,
    timepoint_days: int | None = None,
) -> int:
    """An assessment of ``course`` given at 11:00 on ``day`` (recorded by the nurse)."""
    from datetime import UTC, time

    from ketapath.services import assessments
    from ketapath.services.assessments import AssessmentInput

    data = AssessmentInput.model_validate(
        {
            "instrument_id": instrument_id,
            "answers": answers,
            "administered_at": datetime.combine(day, time(11, 0), tzinfo=UTC),
            "order_id": course.order_id,
            "label": label,
            "timepoint_days": timepoint_days,
        }
    )
    return assessments.record_assessment(
        database, users["nurse"], course.patient_id, data, clock=past_noon(day)
    ).id
