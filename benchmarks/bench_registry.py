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

5. the de-identified research export (issue 13, item 4), ``/api/v1/research/export`` as CSV
   and as Parquet, once each as a researcher: wall and CPU time of this process (the app runs
   in it; PostgreSQL's own CPU is not counted), the peak RSS during the request (Linux: the
   high-water mark is reset through ``/proc/self/clear_refs`` before it, and read from
   ``VmHWM`` after; elsewhere the process's lifetime peak), the size of the zip and the rows
   of each table read back from it. Skipped, and said so, if the API has no such route.

Target: every analytics page and endpoint under 1 s on PostgreSQL at 10,000 patients (warm).
``--patients N`` for a smaller run, ``--backend sqlite|postgresql``, ``--runs N``,
``--export-only`` (the registry endpoints are not timed, only the export), ``--no-export``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import getpass
import io
import json
import os
import platform
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
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


def _status_kb(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status in kB (None off Linux)."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def export_rows(fmt: str, data: bytes) -> dict[str, int]:
    """The rows of each table in an export zip, read back from the files."""
    counts: dict[str, int] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        for name in bundle.namelist():
            table, _, ext = name.rpartition(".")
            if table in ("data_dictionary", "safe_harbor", "README"):
                continue
            if ext == "csv":
                with bundle.open(name) as raw:
                    text_ = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                    counts[table] = sum(1 for _ in csv.reader(text_)) - 1
            elif ext == "parquet":
                import pyarrow.parquet as pq

                counts[table] = pq.ParquetFile(io.BytesIO(bundle.read(name))).metadata.num_rows
    return counts


def time_export(client: Any, fmt: str) -> dict[str, Any]:
    """One export request: wall and CPU time, peak RSS during it, zip size, rows per table."""
    gc.collect()
    before_kb = _status_kb("VmRSS")
    reset = _reset_peak()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    response = client.get(f"{EXPORT}?format={fmt}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb = _status_kb("VmHWM") if reset else None
    if peak_kb is None:  # not Linux: the lifetime peak (ru_maxrss is kB on Linux)
        peak_kb = after.ru_maxrss
    assert response.status_code == 200, (fmt, response.status_code, response.text[:300])
    rows = export_rows(fmt, response.content)
    return {
        "format": fmt,
        "wall_s": wall,
        "cpu_s": (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime),
        "rss_before_mb": (before_kb or 0) / 1024,
        "peak_rss_mb": peak_kb / 1024,
        "peak_is_lifetime": not reset,
        "zip_bytes": len(response.content),
        "rows": rows,
        "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


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
        export = EXPORT in paths or EXPORT.removeprefix("/api/v1") in paths
        for role in ("physician", "researcher"):
            sign_in(client, role)
            for name, path in [] if args.export_only else ENDPOINTS:
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
        result["exports"] = []
        if export and not args.no_export:
            sign_in(client, "researcher")
            for fmt in ("csv", "parquet"):
                print(f"[{label}] research export ({fmt}) ...", flush=True)
                measured = time_export(client, fmt)
                result["exports"].append(measured)
                print(
                    f"[{label}] research export {fmt:8} wall {measured['wall_s']:6.1f} s  CPU "
                    f"{measured['cpu_s']:6.1f} s  peak RSS {measured['peak_rss_mb']:6.0f} MB "
                    f"(before {measured['rss_before_mb']:.0f} MB)  zip "
                    f"{measured['zip_bytes'] / 1e6:.1f} MB  load {measured['load']}\n"
                    f"[{label}]   rows {measured['rows']}",
                    flush=True,
                )
        result["export"] = (
            "timed"
            if export and not args.no_export
            else "not timed (--no-export)"
            if export
            else "absent: no /research/export on this branch"
        )
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
        for e in r["exports"]:
            lines.append(
                f"{r['backend']} research export {e['format']}: {e['wall_s']:.1f} s wall, "
                f"{e['cpu_s']:.1f} s CPU, peak RSS {e['peak_rss_mb']:.0f} MB, zip "
                f"{e['zip_bytes'] / 1e6:.1f} MB, {sum(e['rows'].values())} rows"
            )
        warm = [v["median_s"] for v in r["endpoints"].values() if "median_s" in v]
        if not warm:
            continue
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
    parser.add_argument("--export-only", action="store_true", help="Time only the research export.")
    parser.add_argument("--no-export", action="store_true", help="Skip the research export.")
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
