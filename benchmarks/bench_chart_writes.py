"""Chart-write latency with 20 chairs charting at once, through the real server, on SQLite and
PostgreSQL (issue 10: p95 under 50 ms).

Setup (not timed): 20 nurses (one account each) and 20 patients, each with a signed order
(the ASRA starting dose) scheduled today in a chair of its own, checked in and started
through the services; one bearer token per nurse.

Timed: ``ketapath``'s app under uvicorn (one process, as ``ketapath serve`` runs it) on a
local port; 20 client threads, one per chair, each posting entries to its own session's chart
over HTTP for ``--seconds`` (default 60; ``--quick`` 15): a full set of vitals (70%), a note
(15%), or a pause then a resume (15%: entries that change the state, sent with the last entry
the writer saw). Each nurse waits 0.5-1.5 s (uniform) between entries, so the clinic posts
about 20 entries a second in all: a full set every second in every chair, far more than a
real clinic (observations every 15 minutes). Latency is from sending the request to reading
the 201 (the answer carries the session replayed with the entry: state, dose, prompts).
Charts grow to about one entry per second of the run, more than a real session holds.

A second run without waiting (every chair posting back to back) shows where the server
saturates; it has no target.

Usage: python benchmarks/bench_chart_writes.py [--quick] [--seconds N] [--strict]
       [--backend sqlite|postgresql] [--no-burst]
"""

from __future__ import annotations

import argparse
import getpass
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy
from _common import cpu_model, postgres_database, process_cpu_seconds, uvicorn_server
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ketapath.services import auth, orders, patients, screening, sessions
from ketapath.services.clock import clinic_clock
from ketapath.services.orders import SignRequest
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.services.sessions import ChartWrite, ScheduleRequest
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

API = "/api/v1"
CHAIRS = 20
PASSWORD = "benchmark password 1"
TARGET_P95_MS = 50.0
VITALS = {
    "heart_rate": 76,
    "systolic": 126,
    "diastolic": 80,
    "spo2": 98,
    "respiratory_rate": 14,
    "sedation": 0,
}
PATIENT: dict[str, Any] = {
    "sex": "male",
    "birth_date": "1970-05-01",
    "weight_kg": 80.0,
    "height_cm": 178,
    "pregnancy": "not_applicable",
    "diagnoses": ["crps-1"],
    "consent": "given",
    "assessment": {
        "central_sensitisation": True,
        "opioid_context": {"poor_opioid_response": True},
        "multidisciplinary_care": True,
    },
    "purpose": ["pain_relief"],
}


@dataclass
class Chair:
    session_id: int
    headers: dict[str, str]
    seen: int = 2  # check-in and start


@dataclass
class Samples:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, value: float) -> None:
        with self.lock:
            self.seconds.setdefault(kind, []).append(value)

    def all(self) -> list[float]:
        return [v for values in self.seconds.values() for v in values]


def percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def seed(db: Database) -> list[tuple[str, int]]:
    """20 nurses, a physician, and a started session per chair: (nurse, session id)."""
    physician_view = auth.add_user(db, SYSTEM, "physician", "physician", PASSWORD)
    physician = Actor(physician_view.id, physician_view.username, physician_view.role)
    clock = clinic_clock()
    now = clock.now()
    out = []
    for chair in range(1, CHAIRS + 1):
        view = auth.add_user(db, SYSTEM, f"nurse{chair}", "nurse", PASSWORD)
        nurse = Actor(view.id, view.username, view.role)
        patient = patients.create_patient(db, nurse, {**PATIENT, "name": f"Chair {chair} Patient"})
        screening.run_screening(db, physician, patient.id)
        order = orders.sign_order(
            db,
            physician,
            patient.id,
            SignRequest(protocol_id="asra-initial", setting="clinic", override_reason="bench"),
        )
        request = ScheduleRequest(first_date=clock.today(), chair=f"Chair {chair}")
        (session, *_) = sessions.schedule_course(db, nurse, order.id, request)
        started = max(now, clock.start_of(clock.today()))
        for seq, entry in enumerate(
            [
                {
                    "kind": "check_in",
                    "occurred_at": started,
                    "consent_confirmed": True,
                    "fasting_confirmed": True,
                    "escort_present": True,
                    "allergies_confirmed": True,
                    "pregnancy_test": "not_applicable",
                    "baseline": VITALS,
                    "baseline_pain_nrs": 7,
                },
                {"kind": "start", "occurred_at": started},
            ]
        ):
            write = ChartWrite.model_validate({"expected_seq": seq, "entry": entry})
            sessions.chart(db, nurse, session.id, write)
        out.append((nurse.username, session.id))
    return out


def entries(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """What a chair posts next: (label, entry fields) in order."""
    draw = rng.random()
    if draw < 0.70:
        return [("vitals", {"kind": "vitals", **VITALS, "heart_rate": rng.randint(60, 100)})]
    if draw < 0.85:
        return [("note", {"kind": "note", "note": "patient comfortable, talking"})]
    return [("pause", {"kind": "pause", "reason": "equipment"}), ("resume", {"kind": "resume"})]


def run(base: str, chairs: list[Chair], seconds: float, think: bool, seed_: int) -> Samples:
    samples = Samples()
    stop_at = time.monotonic() + seconds

    def chair_worker(chair: Chair, number: int) -> None:
        rng = random.Random(seed_ + number)
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < stop_at:
                for label, fields in entries(rng):
                    body = {
                        "expected_seq": chair.seen,
                        "entry": {"occurred_at": datetime.now(UTC).isoformat(), **fields},
                    }
                    began = time.perf_counter()
                    response = client.post(
                        f"{API}/sessions/{chair.session_id}/entries",
                        json=body,
                        headers=chair.headers,
                    )
                    elapsed = time.perf_counter() - began
                    if response.status_code != 201:
                        samples.errors.append(
                            f"{label}: {response.status_code} {response.text[:200]}"
                        )
                        return
                    chair.seen = response.json()["chart"]["last_seq"]
                    samples.add(label, elapsed)
                if think:
                    time.sleep(rng.uniform(0.5, 1.5))

    threads = [
        threading.Thread(target=chair_worker, args=(chair, n)) for n, chair in enumerate(chairs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def table(samples: Samples, seconds: float) -> list[str]:
    lines = [f"  {'entry':<8} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"]
    for label in ("vitals", "note", "pause", "resume"):
        values = [s * 1000 for s in samples.seconds.get(label, [])]
        if values:
            lines.append(
                f"  {label:<8} {len(values):>6} {statistics.median(values):>8.1f} "
                f"{percentile(values, 95):>8.1f} {max(values):>8.1f}"
            )
    every = [s * 1000 for s in samples.all()]
    lines.append(
        f"  {'all':<8} {len(every):>6} {statistics.median(every):>8.1f} "
        f"{percentile(every, 95):>8.1f} {max(every):>8.1f}   ({len(every) / seconds:.1f} writes/s)"
    )
    return lines


def run_backend(label: str, url: str, args: argparse.Namespace) -> list[str]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    db = Database(url)
    try:
        with db.read_only() as session:
            version = (
                "SQLite " + str(session.scalar(text("select sqlite_version()")))
                if db.backend == "sqlite"
                else "PostgreSQL " + str(session.scalar(text("show server_version"))).split()[0]
            )
        print(f"\n== {label}: {version}")
        began = time.perf_counter()
        seeded = seed(db)
        print(f"seeded {CHAIRS} started sessions in {time.perf_counter() - began:.1f} s")
    finally:
        db.dispose()
    missed = []
    with uvicorn_server(url) as (base, pid):
        chairs = []
        for username, session_id in seeded:
            token = httpx.post(
                f"{base}{API}/auth/token", data={"username": username, "password": PASSWORD}
            ).json()["access_token"]
            chairs.append(Chair(session_id, {"Authorization": f"Bearer {token}"}))
        run(base, chairs[:2], 2.0, think=False, seed_=1)  # warm the server up
        cpu_before = process_cpu_seconds(pid)
        samples = run(base, chairs, args.seconds, think=True, seed_=20261202)
        cpu = process_cpu_seconds(pid) - cpu_before
        every = [s * 1000 for s in samples.all()]
        p95 = percentile(every, 95)
        print(f"{CHAIRS} chairs charting at once, 0.5-1.5 s between entries, {args.seconds:.0f} s:")
        print("\n".join(table(samples, args.seconds)))
        print(
            f"  app server CPU: {cpu / len(every) * 1000:.1f} ms per write "
            f"({cpu / args.seconds:.2f} of a CPU); load average "
            + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        )
        ok = p95 < TARGET_P95_MS and not samples.errors
        print(f"target p95 < {TARGET_P95_MS:.0f} ms: {'pass' if ok else 'FAIL'} ({p95:.1f} ms)")
        for error in samples.errors[:5]:
            print(f"  error: {error}")
        if not ok:
            missed.append(f"{label}: p95 {p95:.1f} ms")
        if not args.no_burst:
            burst_seconds = min(10.0, args.seconds)
            burst = run(base, chairs, burst_seconds, think=False, seed_=7)
            print(f"{CHAIRS} chairs posting back to back (no target), {burst_seconds:.0f} s:")
            print("\n".join(table(burst, burst_seconds)))
            for error in burst.errors[:5]:
                print(f"  error: {error}")
    return missed


def postgres_base_url() -> str | None:
    explicit = os.environ.get("KETAPATH_BENCH_POSTGRES_URL")
    candidates = (
        [explicit]
        if explicit
        else [
            f"postgresql+psycopg://{user}@127.0.0.1:5432/test"
            for user in ("postgres", getpass.getuser())
        ]
    )
    for url in candidates:
        engine = make_engine(url + ("&" if "?" in url else "?") + "connect_timeout=3")
        try:
            with engine.connect() as connection:
                connection.execute(text("select 1"))
            return url
        except Exception:  # any failure to connect means "absent"
            continue
        finally:
            engine.dispose()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="15 s runs")
    parser.add_argument("--seconds", type=float, default=None, help="length of the timed run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), help="only this one")
    parser.add_argument("--no-burst", action="store_true", help="skip the back-to-back run")
    args = parser.parse_args()
    args.seconds = args.seconds or (15.0 if args.quick else 60.0)
    print(f"ketapath chart-write benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}, python "
        f"{platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, load average "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    missed: list[str] = []
    if args.backend in (None, "sqlite"):
        folder = tempfile.mkdtemp(prefix="ketapath-bench-")
        try:
            missed += run_backend(
                "SQLite (WAL, synchronous=FULL)", f"sqlite:///{folder}/clinic.sqlite3", args
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.backend in (None, "postgresql"):
        base = postgres_base_url()
        if base is None:
            print("\n== PostgreSQL skipped: server not reachable")
        else:
            with postgres_database(base) as url:
                missed += run_backend(f"PostgreSQL ({make_url(base).host})", url, args)
    print()
    if missed:
        print("target missed: " + "; ".join(missed))
        return 1 if args.strict else 0
    print("target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
