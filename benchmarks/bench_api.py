"""API latency benchmark: a clinic's database, the real ASGI app, SQLite and PostgreSQL.

Workload: a clinic of 2,000 patients (``--quick``: 150), created through the services (not
raw SQL, so the audit log, diagnoses and medicines rows are real): each patient has 1-3
record versions, 2-4 pain scores (some amended), a few audited reads, and half of them a
screen and a signed order. Seeding time is reported separately from the timed requests.

Timed: "clinic visits" on random patients through the API with a bearer token (obtained
once: argon2 sign-in is slow on purpose and is not what is measured). A visit is seven
requests, in the order a clinician makes them: patient search (by surname), patient read,
record an NRS pain score, run the screen, plan preview, sign the order (with the preview's
digest), timeline. Two measurements:

- latency, one client: the app in process (FastAPI's TestClient, no network); per endpoint
  n, p50, p95, max in ms and the SQL statements per request, against the targets below;
- throughput, 8 concurrent clients: a real uvicorn server (one process, as ``ketapath
  serve`` runs it) on a local port, 8 client threads each running visits for a fixed time
  (and 1 client for the same time, for comparison); requests per second and latency under
  load. The client threads share the machine's CPUs with the server.

Backends: SQLite (a file in a temporary directory, WAL, ``synchronous=FULL`` as the clinic
runs it) and PostgreSQL at 127.0.0.1:5432, database ``test`` (trust auth; override with
``KETAPATH_BENCH_POSTGRES_URL``), in a schema of its own that is dropped afterwards. When
PostgreSQL is unreachable it is skipped with the reason.

Targets (single client, this 2-core machine): p95 under 100 ms for every endpoint; with 8
clients, at least 50 requests per second (a busy clinic of ~20 staff each clicking every
few seconds needs ~10 per second). Exits non-zero on a missed target only with ``--strict``;
an unexpected HTTP status always fails the run.

Usage: python benchmarks/bench_api.py [--quick] [--strict] [--backend sqlite|postgresql]
       [--profile] (cProfile of the slowest endpoint's service call)
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import getpass
import io
import os
import platform
import pstats
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import sqlalchemy
from _common import cpu_model, postgres_database, process_cpu_seconds, uvicorn_server
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import assessments, auth, orders, patients, screening, timeline
from ketapath.services.assessments import AssessmentInput
from ketapath.services.orders import PlanRequest, SignRequest
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

API = "/api/v1"
PASSWORD = "benchmark password 1"
ENDPOINTS = ("search", "read", "assessment", "screening", "plan", "sign", "timeline")
LABELS = {
    "search": "GET  /patients?q=<surname>",
    "read": "GET  /patients/{id}",
    "assessment": "POST /patients/{id}/assessments",
    "screening": "POST /patients/{id}/screenings",
    "plan": "POST /patients/{id}/plans",
    "sign": "POST /patients/{id}/orders",
    "timeline": "GET  /patients/{id}/timeline",
    "me": "GET  /auth/me (token check only)",
}
TARGET_P95_MS = dict.fromkeys(ENDPOINTS, 100.0)
TARGET_THROUGHPUT_RPS = 50.0
CLIENTS = 8


@dataclass(frozen=True)
class Scale:
    patients: int
    visits: int  # timed single-client visits (7 requests each)
    warmup: int
    load_seconds: float  # per throughput run (8 clients, then 1 client)


FULL = Scale(patients=2000, visits=150, warmup=10, load_seconds=20.0)
QUICK = Scale(patients=150, visits=30, warmup=5, load_seconds=4.0)

# Invented names: the search looks a surname up, as a receptionist would.
FIRST = (  # noqa: SIM905
    "Robin Alex Sam Jordan Casey Riley Morgan Taylor Jamie Avery Quinn Rowan Skyler Parker "
    "Hayden Emerson Finley Dakota Reese Sage Elliot Kai Blake Drew Logan"
).split()
SURNAMES = (  # noqa: SIM905
    "Quill Abbott Barrow Castell Dunmore Ellery Fairlie Garron Hallam Ibbotson Jessop "
    "Kilbride Lowther Maddox Northey Ormsby Pennick Quarrie Rainford Selwyn Tolland Upcott "
    "Vickery Wardle Yeoman Ashdown Birtles Corliss Dawber Eckersley Fothergill Gaskell "
    "Hesketh Ingleby Jagger Kershaw Lumb Marsden Nuttall Oddie Pickles Ramsden Shackleton "
    "Thwaite Uttley Varley Whitworth Yarwood Ackroyd Brearley"
).split()
DIAGNOSES = (
    ("crps-1", "crps-schwartzman-10day"),
    ("crps-2", "crps-schwartzman-10day"),
    ("sci-pain", "asra-initial"),
    ("phantom-limb", "asra-initial"),
    ("phn", "asra-initial"),
    ("central-pain", "asra-initial"),
    ("painful-neuropathy", "asra-initial"),
)
MEDICINES = (
    {"name": "morphine", "dose": 30, "unit": "mg", "frequency": "bd", "route": "oral"},
    {"name": "oxycodone", "dose": 20, "unit": "mg", "frequency": "bd", "route": "oral"},
    {"name": "pregabalin", "dose": 150, "unit": "mg", "frequency": "bd", "route": "oral"},
    {"name": "gabapentin", "dose": 300, "unit": "mg", "frequency": "tds", "route": "oral"},
    {"name": "duloxetine", "dose": 60, "unit": "mg", "frequency": "daily", "route": "oral"},
    {"name": "amitriptyline", "dose": 25, "unit": "mg", "frequency": "nocte", "route": "oral"},
)


# -- the clinic ---------------------------------------------------------------------------


@dataclass
class Clinic:
    """What the timed part needs to know about the seeded clinic."""

    patient_ids: list[int]
    surnames: dict[int, str]
    protocols: dict[int, str]
    actors: dict[str, Actor]
    seed_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def patient_document(rng: random.Random) -> tuple[dict[str, Any], str, str]:
    surname = rng.choice(SURNAMES)
    sex = rng.choice(("female", "male"))
    diagnosis, protocol = rng.choice(DIAGNOSES)
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 60 * 365))
    document: dict[str, Any] = {
        "name": f"{rng.choice(FIRST)} {surname}",
        "birth_date": birth.isoformat(),
        "sex": sex,
        "pregnancy": "not_pregnant" if sex == "female" else "not_applicable",
        "weight_kg": round(rng.uniform(50.0, 120.0), 1),
        "height_cm": round(rng.uniform(150.0, 195.0)),
        "diagnoses": [diagnosis],
        "medications": rng.sample(MEDICINES, rng.randint(0, 3)),
        "consent": "given",
        "assessment": {
            "central_sensitisation": True,
            "opioid_context": {"poor_opioid_response": True},
            "multidisciplinary_care": True,
        },
        "purpose": ["pain_relief"],
    }
    return document, surname, protocol


def plan_request(protocol: str) -> PlanRequest:
    return PlanRequest(protocol_id=protocol, setting="clinic")


def seed_clinic(db: Database, n_patients: int, rng: random.Random) -> Clinic:
    """Users (one per role) and ``n_patients`` patients with their history, via the services."""
    actors: dict[str, Actor] = {}
    for role in ("physician", "nurse", "admin"):
        view = auth.add_user(db, SYSTEM, role, role, PASSWORD, full_name=f"Bench {role}")
        actors[role] = Actor(view.id, view.username, view.role)
    nurse, physician = actors["nurse"], actors["physician"]
    clinic = Clinic([], {}, {}, actors)
    start = time.perf_counter()
    for _ in range(n_patients):
        document, surname, protocol = patient_document(rng)
        record = patients.create_patient(db, nurse, document)
        pid = record.id
        clinic.patient_ids.append(pid)
        clinic.surnames[pid] = surname
        clinic.protocols[pid] = protocol
        for version in range(1, 1 + rng.choice((0, 1, 1, 2))):
            document = {**document, "weight_kg": round(document["weight_kg"] - 0.5, 1)}
            patients.amend_patient(
                db, physician, pid, document, reason="re-weighed", expected_version=version
            )
        for days_ago in sorted(rng.sample(range(1, 400), rng.randint(2, 4)), reverse=True):
            when = datetime.now(UTC) - timedelta(days=days_ago)
            data = AssessmentInput(
                instrument_id="nrs", answers={"pain": rng.randint(3, 9)}, administered_at=when
            )
            view = assessments.record_assessment(db, nurse, pid, data)
            if rng.random() < 0.1:
                fixed = AssessmentInput(
                    instrument_id="nrs", answers={"pain": rng.randint(3, 9)}, administered_at=when
                )
                assessments.amend_assessment(db, nurse, view.id, fixed, reason="misheard")
        patients.get_patient(db, physician, pid)
        timeline.patient_timeline(db, nurse, pid)
        if rng.random() < 0.5:
            screening.run_screening(db, physician, pid)
            preview = orders.preview_course(db, physician, pid, plan_request(protocol))
            orders.sign_order(db, physician, pid, sign_request(protocol, preview))
    clinic.seed_seconds = time.perf_counter() - start
    with db.read_only() as session:
        for table in ("patient_versions", "assessments", "screening_results", "orders"):
            clinic.counts[table] = session.scalar(text(f"SELECT count(*) FROM {table}")) or 0
        clinic.counts["audit_log"] = session.scalar(text("SELECT count(*) FROM audit_log")) or 0
    return clinic


def sign_request(protocol: str, preview: Any) -> SignRequest:
    return SignRequest(
        protocol_id=protocol,
        setting="clinic",
        override_reason="benchmark: reviewed with the patient",
        course_digest=preview.digest,
        patient_version=preview.patient_version,
    )


# -- one visit ----------------------------------------------------------------------------


EXPECTED = {
    "search": 200,
    "read": 200,
    "assessment": 201,
    "screening": 201,
    "plan": 200,
    "sign": 201,
    "timeline": 200,
}


class UnexpectedStatus(RuntimeError):
    pass


def visit(
    request: Callable[..., httpx.Response],
    headers: dict[str, dict[str, str]],
    clinic: Clinic,
    pid: int,
    record: Callable[[str, float], None],
) -> None:
    """The seven requests of one clinic visit for patient ``pid``; each one timed."""
    nurse, physician = headers["nurse"], headers["physician"]
    protocol = clinic.protocols[pid]
    body = {"protocol_id": protocol, "setting": "clinic"}

    def timed(name: str, method: str, url: str, hdrs: dict[str, str], **kw: Any) -> Any:
        start = time.perf_counter()
        response = request(method, url, headers=hdrs, **kw)
        record(name, time.perf_counter() - start)
        if response.status_code != EXPECTED[name]:
            raise UnexpectedStatus(f"{name}: {response.status_code} {response.text[:300]}")
        return response.json()

    timed("search", "GET", f"{API}/patients", nurse, params={"q": clinic.surnames[pid].lower()})
    timed("read", "GET", f"{API}/patients/{pid}", nurse)
    timed(
        "assessment",
        "POST",
        f"{API}/patients/{pid}/assessments",
        nurse,
        json={"instrument_id": "nrs", "answers": {"pain": 5}},
    )
    timed("screening", "POST", f"{API}/patients/{pid}/screenings", physician)
    preview = timed("plan", "POST", f"{API}/patients/{pid}/plans", physician, json=body)
    timed(
        "sign",
        "POST",
        f"{API}/patients/{pid}/orders",
        physician,
        json={
            **body,
            "override_reason": "benchmark: reviewed with the patient",
            "course_digest": preview["digest"],
            "patient_version": preview["patient_version"],
        },
    )
    timed("timeline", "GET", f"{API}/patients/{pid}/timeline", nurse)


# -- measurement --------------------------------------------------------------------------


@dataclass
class Samples:
    seconds: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in LABELS})
    statements: dict[str, list[int]] = field(default_factory=lambda: {e: [] for e in LABELS})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.seconds[name].append(seconds)

    def total(self) -> int:
        return sum(len(v) for v in self.seconds.values())


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@contextlib.contextmanager
def counting_statements(db: Database) -> Iterator[list[int]]:
    counter = [0]

    def _count(*_: Any) -> None:
        counter[0] += 1

    event.listen(db.engine, "before_cursor_execute", _count)
    try:
        yield counter
    finally:
        event.remove(db.engine, "before_cursor_execute", _count)


def single_client(
    db: Database, url: str, clinic: Clinic, scale: Scale, rng: random.Random
) -> tuple[Samples, dict[str, dict[str, str]]]:
    """Latency of each endpoint with one client, the app in process (no network)."""
    settings = Settings(database_url=url, secret_key=secrets.token_urlsafe(32))
    samples = Samples()
    with TestClient(create_app(settings, database=db), base_url="https://testserver") as client:
        headers = {role: bearer(client, role) for role in ("nurse", "physician")}
        scratch = Samples()
        for _ in range(scale.warmup):
            visit(client.request, headers, clinic, rng.choice(clinic.patient_ids), scratch.add)
        with counting_statements(db) as counter:

            def record(name: str, seconds: float) -> None:
                samples.add(name, seconds)
                samples.statements[name].append(counter[0])
                counter[0] = 0

            for _ in range(scale.visits):
                counter[0] = 0
                visit(client.request, headers, clinic, rng.choice(clinic.patient_ids), record)
            # The floor every endpoint stands on: HTTP, FastAPI, the bearer token's lookup.
            for _ in range(scale.visits):
                counter[0] = 0
                start = time.perf_counter()
                response = client.get(f"{API}/auth/me", headers=headers["nurse"])
                record("me", time.perf_counter() - start)
                if response.status_code != 200:
                    raise UnexpectedStatus(f"me: {response.status_code} {response.text[:300]}")
    return samples, headers


def bearer(client: TestClient | httpx.Client, username: str) -> dict[str, str]:
    response = client.post(f"{API}/auth/token", data={"username": username, "password": PASSWORD})
    if response.status_code != 200:
        raise UnexpectedStatus(f"sign-in: {response.status_code} {response.text[:300]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (Linux /proc/stat; NaN elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
        idle = ticks[3] + ticks[4]
        return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass
class LoadResult:
    clients: int
    seconds: float
    samples: Samples
    errors: list[str]
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per second of run

    @property
    def requests_per_second(self) -> float:
        return self.samples.total() / self.seconds


def load(
    server: tuple[str, int],
    headers: dict[str, dict[str, str]],
    clinic: Clinic,
    clients: int,
    seconds: float,
    *,
    visits: int | None = None,
) -> LoadResult:
    """``clients`` threads, each running visits against the server until the time is up
    (or, with ``visits``, until each has made that many)."""
    base, server_pid = server
    samples = Samples()
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()

    def worker(number: int) -> None:
        rng = random.Random(1000 + number)
        with httpx.Client(base_url=base, timeout=60) as client:
            barrier.wait()
            made = 0
            while not stop.is_set() and (visits is None or made < visits):
                made += 1
                try:
                    visit(
                        client.request, headers, clinic, rng.choice(clinic.patient_ids), samples.add
                    )
                except (UnexpectedStatus, httpx.HTTPError) as error:
                    errors.append(str(error))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    before = (process_cpu_seconds(server_pid), time.process_time(), machine_busy_seconds())
    if visits is None:
        time.sleep(seconds)
        stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    after = (process_cpu_seconds(server_pid), time.process_time(), machine_busy_seconds())
    used = [(b - a) / elapsed for a, b in zip(before, after, strict=True)]
    cpu = {"app server": used[0], "clients": used[1], "rest": used[2] - used[0] - used[1]}
    return LoadResult(clients, elapsed, samples, errors, cpu)


# -- profile ------------------------------------------------------------------------------


def service_call(
    db: Database, clinic: Clinic, name: str, rng: random.Random
) -> Callable[[], float]:
    """A function that calls the service behind endpoint ``name`` on a random patient (no
    HTTP, no token check) and returns the seconds that call took. What the call needs first
    (a screen and a preview before signing) is done untimed."""
    nurse, physician = clinic.actors["nurse"], clinic.actors["physician"]

    def call() -> float:
        pid = rng.choice(clinic.patient_ids)
        protocol = clinic.protocols[pid]
        work: Callable[[], Any]
        if name == "search":
            work = partial(patients.search_patients, db, nurse, clinic.surnames[pid].lower())
        elif name == "read":
            work = partial(patients.get_patient, db, nurse, pid)
        elif name == "assessment":
            data = AssessmentInput(instrument_id="nrs", answers={"pain": 5})
            work = partial(assessments.record_assessment, db, nurse, pid, data)
        elif name == "screening":
            work = partial(screening.run_screening, db, physician, pid)
        elif name == "timeline":
            work = partial(timeline.patient_timeline, db, nurse, pid)
        elif name == "plan":
            work = partial(orders.preview_course, db, physician, pid, plan_request(protocol))
        else:
            screening.run_screening(db, physician, pid)
            preview = orders.preview_course(db, physician, pid, plan_request(protocol))
            work = partial(orders.sign_order, db, physician, pid, sign_request(protocol, preview))
        start = time.perf_counter()
        work()
        return time.perf_counter() - start

    return call


def service_times(db: Database, clinic: Clinic, calls: int, rng: random.Random) -> Samples:
    """The same endpoints' service calls, timed without HTTP, FastAPI and the token check."""
    samples = Samples()
    for _ in range(calls):
        for name in ENDPOINTS:
            samples.add(name, service_call(db, clinic, name, rng)())
    return samples


def profile(db: Database, clinic: Clinic, name: str, calls: int) -> str:
    call = service_call(db, clinic, name, random.Random(7))
    for _ in range(3):
        call()
    profiler = cProfile.Profile()
    profiler.enable()
    elapsed = sum(call() for _ in range(calls))
    profiler.disable()
    out = io.StringIO()
    out.write(
        f"cProfile of the service behind '{name}' ({calls} calls, {elapsed / calls * 1000:.1f} "
        "ms per call under the profiler"
        + (
            "; the profile also holds the screen and preview each sign needs"
            if name == "sign"
            else ""
        )
        + ")\n"
    )
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(12)
    return out.getvalue()


# -- backends -----------------------------------------------------------------------------


def postgres_base_url() -> tuple[str | None, str]:
    explicit = os.environ.get("KETAPATH_BENCH_POSTGRES_URL")
    candidates = (
        [explicit]
        if explicit
        else [
            f"postgresql+psycopg://{user}@127.0.0.1:5432/test"
            for user in ("postgres", getpass.getuser())
        ]
    )
    reasons = []
    for url in candidates:
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


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="ketapath-bench-")
    try:
        yield f"sqlite:///{directory}/clinic.sqlite3"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def server_version(db: Database) -> str:
    with db.read_only() as session:
        if db.backend == "sqlite":
            return "SQLite " + str(session.scalar(text("select sqlite_version()")))
        version = str(session.scalar(text("show server_version")))
        return f"PostgreSQL {version.split()[0]}"


# -- report -------------------------------------------------------------------------------


def latency_table(
    samples: Samples, *, with_targets: bool, service: Samples | None = None
) -> tuple[list[str], list[str]]:
    """Rows per endpoint; with targets also the SQL statements per request, the service
    call's own p50 (no HTTP) and pass/fail. Returns the rows and the missed targets."""
    lines = []
    missed = []
    header = f"  {'endpoint':<34} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    if with_targets:
        header += f" {'SQL/req':>8} {'service p50':>12}   target p95"
    lines.append(header)
    for name in LABELS:
        values = [s * 1000 for s in samples.seconds[name]]
        if not values:
            continue
        p95 = percentile(values, 95)
        line = (
            f"  {LABELS[name]:<34} {len(values):>5} {statistics.median(values):>8.1f} "
            f"{p95:>8.1f} {max(values):>8.1f}"
        )
        if with_targets and name not in TARGET_P95_MS:
            line += f" {statistics.median(samples.statements[name]):>8.0f} {'-':>12}   (none)"
        elif with_targets:
            target = TARGET_P95_MS[name]
            ok = p95 < target
            if not ok:
                missed.append(f"{name} p95 {p95:.1f} ms >= {target:.0f} ms")
            statements = statistics.median(samples.statements[name])
            own = service.seconds[name] if service else []
            own_p50 = f"{statistics.median(own) * 1000:.1f}" if own else "-"
            line += (
                f" {statements:>8.0f} {own_p50:>12}   < {target:.0f}: {'pass' if ok else 'FAIL'}"
            )
        lines.append(line)
    return lines, missed


def run_backend(label: str, url: str, scale: Scale, args: argparse.Namespace) -> list[str]:
    """Migrate, seed, time; returns the missed targets."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    db = Database(url)
    rng = random.Random(20261122)
    try:
        print(f"\n== {label}: {server_version(db)}")
        clinic = seed_clinic(db, scale.patients, rng)
        counts = ", ".join(f"{v:,} {k}" for k, v in clinic.counts.items())
        per_patient_ms = clinic.seed_seconds / len(clinic.patient_ids) * 1000
        print(
            f"seeded {len(clinic.patient_ids):,} patients through the services in "
            f"{clinic.seed_seconds:.1f} s ({per_patient_ms:.1f} ms per patient): {counts}"
        )
        samples, headers = single_client(db, url, clinic, scale, rng)
        service = service_times(db, clinic, scale.visits, rng)
        lines, missed = latency_table(samples, with_targets=True, service=service)
        print(
            f"latency, 1 client, in process ({scale.visits} visits after {scale.warmup} warm-up):"
        )
        print("\n".join(lines))
        if args.profile:
            slowest = max(ENDPOINTS, key=lambda e: statistics.median(samples.seconds[e]))
            print(profile(db, clinic, slowest, calls=20 if args.quick else 60))
        if not args.no_server:
            with uvicorn_server(url) as server:
                # A fresh process loads the knowledge base on first use: warm it up first.
                warm = load(server, headers, clinic, 1, 0.0, visits=scale.warmup)
                if warm.errors:
                    raise UnexpectedStatus(f"{label}: warm-up failed: {warm.errors[0]}")
                results = [
                    load(server, headers, clinic, clients, scale.load_seconds)
                    for clients in (CLIENTS, 1)
                ]
            for result in results:
                print(
                    f"throughput, {result.clients} client{'s' if result.clients > 1 else ''} "
                    f"over HTTP (uvicorn, 1 process), {result.seconds:.0f} s: "
                    f"{result.requests_per_second:.1f} requests/s "
                    f"({result.samples.total():,} requests, {len(result.errors)} errors); CPUs "
                    "busy: "
                    + ", ".join(f"{k} {v:.2f}" for k, v in result.cpu.items())
                    + f" (of {os.cpu_count()}); app server CPU per request "
                    f"{result.cpu['app server'] / result.requests_per_second * 1000:.1f} ms"
                )
                for error in result.errors[:5]:
                    print(f"  error: {error}")
                table, _ = latency_table(result.samples, with_targets=False)
                print("\n".join(table))
            eight = results[0]
            ok = eight.requests_per_second >= TARGET_THROUGHPUT_RPS
            print(
                f"target >= {TARGET_THROUGHPUT_RPS:.0f} requests/s with {CLIENTS} clients: "
                f"{'pass' if ok else 'FAIL'}"
            )
            if not ok:
                missed.append(f"throughput {eight.requests_per_second:.1f} requests/s")
            if any(r.errors for r in results):
                raise UnexpectedStatus(f"{label}: requests failed under load")
        return [f"{label}: {m}" for m in missed]
    finally:
        db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="150 patients, 30 visits, 4 s load runs: under a minute",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), help="only this one")
    parser.add_argument("--profile", action="store_true", help="cProfile the slowest endpoint")
    parser.add_argument("--no-server", action="store_true", help="skip the uvicorn load runs")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    load_average = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"ketapath API benchmark{' (--quick)' if args.quick else ''}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}, python "
        f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, load average "
        f"{load_average}"
    )
    missed: list[str] = []
    if args.backend in (None, "sqlite"):
        with sqlite_database() as url:
            missed += run_backend("SQLite (WAL, synchronous=FULL)", url, scale, args)
    if args.backend in (None, "postgresql"):
        base, why = postgres_base_url()
        if base is None:
            print(f"\n== PostgreSQL skipped: server not reachable ({why})")
        else:
            with postgres_database(base) as url:
                missed += run_backend("PostgreSQL", url, scale, args)
    print()
    if missed:
        print("targets missed: " + "; ".join(missed))
        return 1 if args.strict else 0
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
