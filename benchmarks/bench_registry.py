"""The registry at scale (issue 13, item 6): a synthetic multi-centre registry of 10,000
patients, then every registry page and endpoint timed, on SQLite and PostgreSQL.

For each backend:

1. a fresh database (SQLite: a file in a temporary folder; PostgreSQL: a database created on
   the local server for the run and dropped afterwards, ``--keep`` keeps it), the schema by
   the migrations;
2. ``ketapath registry synth`` in process (``services.registry_synth.synthesise``): the rows
   written in bulk, then every course summarised (timed apart: generating, writing,
   summarising);
3. every analytics endpoint of ``/api/v1/registry`` (JSON and CSV) and the ``/registry`` page
   (each grouping) for a physician and a researcher, through the ASGI app in process
   (FastAPI's TestClient: no network): the first request of the process (it pays the
   imports of lifelines, pandas and matplotlib and the first read of the summary rows), then
   the median and maximum of ``--runs`` more;
4. the first page after a change: one diary day is added (its insert marks the patient), and
   the next page pays the patient's refresh and a new read of the rows.

The de-identified research export (issue 13, item 4) is timed if the API has it
(``/research/export``); otherwise the report says it is absent.

Target: every analytics page and endpoint under 1 s on PostgreSQL at 10,000 patients (warm).
``--patients N`` for a smaller run, ``--backend sqlite|postgresql``, ``--runs N``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from ketapath.store.db import Database, make_engine

PASSWORD = "benchmark password"
TARGET_S = 1.0
ENDPOINTS = [
    ("API overview (group by protocol)", "/api/v1/registry"),
    ("API overview (group by dose band)", "/api/v1/registry?group_by=dose_band"),
    ("API courses, 100 rows", "/api/v1/registry/courses?limit=100"),
    ("API courses, CSV (every course)", "/api/v1/registry/courses?format=csv"),
    ("API responders by protocol", "/api/v1/registry/responders"),
    ("API responders by indication", "/api/v1/registry/responders?group_by=indication"),
    ("API responders by adjuncts, CSV", "/api/v1/registry/responders?group_by=adjuncts&format=csv"),
    ("API relief, one curve", "/api/v1/registry/relief"),
    ("API relief by duration band", "/api/v1/registry/relief?group_by=duration_band"),
    ("API relief by protocol, CSV", "/api/v1/registry/relief?group_by=protocol&format=csv"),
    ("API adverse events", "/api/v1/registry/adverse-events"),
    ("API adverse events, CSV", "/api/v1/registry/adverse-events?format=csv"),
    ("API regression", "/api/v1/registry/regression"),
    ("API regression, CSV", "/api/v1/registry/regression?format=csv"),
    (
        "API filtered (CRPS 10-day, 10-20 mg/kg)",
        "/api/v1/registry?protocol=crps-schwartzman-10day&dose_band=10-20%20mg/kg",
    ),
    ("page /registry (protocol)", "/registry"),
    ("page /registry (indication)", "/registry?group_by=indication"),
    ("page /registry (dose band)", "/registry?group_by=dose_band"),
    ("page /registry (infusion hours)", "/registry?group_by=duration_band"),
    ("page /registry (adjuncts)", "/registry?group_by=adjuncts"),
    (
        "page /registry filtered",
        "/registry?protocol=crps-schwartzman-10day&date_from=2024-01-01&group_by=adjuncts",
    ),
]
EXPORT = "/api/v1/research/export"


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="ketapath-registry-")
    try:
        yield f"sqlite:///{folder}/registry.sqlite3"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_url(keep: bool) -> Iterator[str]:
    """A database created on the local server for this run (dropped afterwards)."""
    base = os.environ.get("KETAPATH_BENCH_POSTGRES_URL") or (
        f"postgresql+psycopg://{'postgres'}@127.0.0.1:5432/test"
    )
    name = f"ketapath_bench_{os.getpid()}_{secrets.token_hex(2)}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    memory = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        memory = f", {int(info.readline().split()[1]) / 1024 / 1024:.0f} GB RAM"
    return (
        f"{cpu}, {os.cpu_count()} CPU{memory}, Python {platform.python_version()}, "
        f"load average {load} at the start"
    )


def users(db: Database) -> None:
    from ketapath.services import auth
    from ketapath.services.permissions import SYSTEM

    for role in ("physician", "researcher"):
        auth.add_user(db, SYSTEM, role, role, PASSWORD)


def timed(client: Any, path: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    response = client.get(path)
    return time.perf_counter() - started, response.status_code, len(response.content)


def sign_in(client: Any, role: str) -> None:
    client.cookies.clear()
    token = client.get("/api/v1/auth/csrf").json()["csrf_token"]
    response = client.post(
        "/api/v1/auth/session",
        data={"username": role, "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code in (200, 204, 303), response.text


def add_diary_day(db: Database) -> None:
    """A diary day for one course: its insert marks the patient for the registry."""
    from ketapath.store.models import DiaryEntry, RegistryCourse

    with db.transaction() as session:
        order_id, patient_id, last = session.execute(
            select(
                RegistryCourse.order_id, RegistryCourse.patient_id, RegistryCourse.last_session_on
            )
            .where(RegistryCourse.status == "complete")
            .limit(1)
        ).one()
        session.add(
            DiaryEntry(
                patient_id=patient_id,
                order_id=order_id,
                day=last + timedelta(days=200),
                pain_nrs=5,
                entry={"sleep_quality": None, "side_effects": [], "opioid_doses": [], "note": ""},
                recorded_at=datetime.now(UTC),
            )
        )


def run_backend(label: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from ketapath.api.app import create_app
    from ketapath.config import Settings
    from ketapath.services.clock import ClinicClock
    from ketapath.services.registry_synth import Config, synthesise
    from ketapath.store import migrate

    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    db = Database(url)
    clock = ClinicClock(UTC)
    print(f"[{label}] writing the synthetic registry of {args.patients} patients ...", flush=True)
    started = time.perf_counter()
    report = synthesise(
        db,
        Config(patients=args.patients, centres=5, seed=args.seed, end=date(2026, 11, 30)),
        clock,
        progress=lambda m: print(f"[{label}]   {m}", flush=True) if args.verbose else None,
    )
    total = time.perf_counter() - started
    users(db)
    observations = (
        report.rows["session_events"] + report.rows["diary_entries"] + report.rows["assessments"]
    )
    result: dict[str, Any] = {
        "backend": label,
        "rows": report.rows,
        "observations": observations,
        "generate_s": report.generate_seconds,
        "write_s": report.write_seconds,
        "summarise_s": report.summary_seconds,
        "synth_total_s": total,
        "endpoints": {},
    }
    print(
        f"[{label}] {report.rows['patients']} patients, {report.rows['orders']} courses, "
        f"{report.rows['infusion_sessions']} sessions, {observations} observations; generate "
        f"{report.generate_seconds:.0f} s, write {report.write_seconds:.0f} s, summarise "
        f"{report.summary_seconds:.0f} s",
        flush=True,
    )
    settings = Settings(database_url=url, secret_key=secrets.token_urlsafe(32), timezone="UTC")
    with TestClient(create_app(settings, database=db), base_url="https://testserver") as client:
        paths = client.get("/api/v1/openapi.json").json()["paths"]
        export = EXPORT.removeprefix("/api/v1") in paths
        for role in ("physician", "researcher"):
            sign_in(client, role)
            for name, path in ENDPOINTS:
                first = timed(client, path)
                runs = [timed(client, path) for _ in range(args.runs)]
                assert first[1] == 200 and all(r[1] == 200 for r in runs), (name, first, runs)
                seconds = [r[0] for r in runs]
                result["endpoints"][f"{role}: {name}"] = {
                    "first_s": first[0],
                    "median_s": statistics.median(seconds),
                    "max_s": max(seconds),
                    "bytes": first[2],
                }
                print(
                    f"[{label}] {role:10} {name:45} first {first[0]:6.3f} s  median "
                    f"{statistics.median(seconds):6.3f} s  max {max(seconds):6.3f} s",
                    flush=True,
                )
            if export:
                first = timed(client, EXPORT)
                result["endpoints"][f"{role}: research export"] = {"first_s": first[0]}
        result["export"] = "timed" if export else "absent: no /research/export on this branch"
        sign_in(client, "physician")
        add_diary_day(db)
        after = timed(client, "/registry")
        result["after_change_s"] = after[0]
        print(f"[{label}] page after a change (one patient refreshed): {after[0]:.3f} s")
    result["load_after"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[{label}] load average after the requests: {result['load_after']}")
    with db.read_only() as session:
        result["server"] = (
            "SQLite " + str(session.scalar(text("select sqlite_version()")))
            if db.backend == "sqlite"
            else "PostgreSQL " + str(session.scalar(text("show server_version"))).split()[0]
        )
    db.dispose()
    return result


def summary(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        warm = [v["median_s"] for v in r["endpoints"].values() if "median_s" in v]
        worst = max(r["endpoints"].items(), key=lambda kv: kv[1].get("median_s", 0))
        lines.append(
            f"{r['backend']} ({r['server']}): warm medians {min(warm):.3f}-{max(warm):.3f} s, "
            f"slowest {worst[0]} {worst[1]['median_s']:.3f} s; after a change "
            f"{r['after_change_s']:.3f} s; target {TARGET_S} s "
            f"{'met' if max(warm) < TARGET_S else 'MISSED'}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--keep", action="store_true", help="Keep the PostgreSQL database.")
    parser.add_argument("--json", type=Path, help="Write the results to this file.")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; user {getpass.getuser()}")
    results = []
    if args.backend in ("sqlite", "both"):
        with sqlite_url() as url:
            results.append(run_backend("sqlite", url, args))
    if args.backend in ("postgresql", "both"):
        with postgres_url(args.keep) as url:
            results.append(run_backend("postgresql", url, args))
    print(summary(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
