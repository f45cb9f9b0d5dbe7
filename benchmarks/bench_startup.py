"""Start-up benchmark: how long a clinician waits for a command, and for the first preview.

Timed, each as the median wall time over repeated runs in fresh processes (nothing is kept
warm between runs; the operating system's file cache is, as it is for a clinician typing
one command after another):

- ``ketapath protocols list``;
- ``ketapath screen docs/examples/patient-crps.json``;
- a single-patient ``ketapath simulate`` (``kamp``, 72 kg, a 4-h infusion, four times);
- the first protocol preview after the server starts: ``ketapath serve`` is started on a
  prepared SQLite database (one physician, one patient, a bearer token and a web session
  issued beforehand, so no request comes before the one timed); as soon as the server
  accepts connections (uvicorn listens only once the app's start-up has run) the first
  request is timed, once as ``POST /api/v1/patients/{id}/plans`` and, on another fresh
  server, as the web page ``GET /patients/{id}/plan?protocol_id=...``. The time from
  starting the process to accepting connections is reported too (no target).

Beside the wall time, each command's CPU time (user + system, from the operating system's
accounting of the child process) is reported: on a machine that other jobs keep busy the
wall time grows with the wait for a CPU, the CPU time much less.

The commands run through the ``ketapath`` console script next to this Python (the one a
clinician runs), so they import whatever ``ketapath`` that Python finds (``PYTHONPATH``).
Every run must succeed (exit 0 / HTTP 200) or the benchmark fails.

Targets (issue 9): median under 0.5 s for ``protocols list`` and ``screen``, under 1.0 s
for ``simulate``, under 0.3 s for the first preview. ``--strict`` exits 1 on a missed target.

Usage: python benchmarks/bench_startup.py [--runs N] [--server-runs N] [--quick] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PATIENT_FILE = ROOT / "docs" / "examples" / "patient-crps.json"
PASSWORD = "benchmark password 1"
PROTOCOL = "asra-initial"

COMMANDS: dict[str, tuple[list[str], float]] = {
    "ketapath protocols list": (["protocols", "list"], 0.5),
    "ketapath screen docs/examples/patient-crps.json": (["screen", str(PATIENT_FILE)], 0.5),
    "ketapath simulate (one patient)": (
        [
            "simulate",
            "--model",
            "kamp",
            "--weight-kg",
            "72",
            "--age",
            "45",
            "--sex",
            "female",
            "--height-cm",
            "165",
            "--infusion",
            "0:240:25.2",
            "--times",
            "0,60,240,1440",
        ],
        1.0,
    ),
}
PREVIEW_TARGET_S = 0.3


def ketapath_command() -> list[str]:
    """The console script beside this interpreter, else the same entry point via -c."""
    script = Path(sys.executable).with_name("ketapath")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ketapath.cli import main; main()"]


@dataclass
class Result:
    label: str
    seconds: list[float]
    target: float | None
    cpu_seconds: list[float] | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def row(self) -> str:
        verdict = "" if self.target is None else ("pass" if self.median < self.target else "MISS")
        target = "-" if self.target is None else f"< {self.target:g}"
        cpu = "-" if not self.cpu_seconds else f"{statistics.median(self.cpu_seconds):.3f}"
        return (
            f"| {self.label} | {self.median:.3f} | {min(self.seconds):.3f} | "
            f"{max(self.seconds):.3f} | {cpu} | {len(self.seconds)} | {target} | {verdict} |"
        )


def time_command(label: str, args: list[str], target: float, runs: int) -> Result:
    command = ketapath_command() + args
    env = {**os.environ, "KETAPATH_SECRET_KEY": secrets.token_urlsafe(32)}
    # one untimed run: fills the file cache and the .pyc files, as a second command would find
    subprocess.run(command, env=env, capture_output=True, check=True, cwd=ROOT)
    seconds: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, cwd=ROOT)
        seconds.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"{label}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    return Result(label, seconds, target, cpu)


# -- the server -----------------------------------------------------------------------------


@dataclass
class Clinic:
    url: str
    patient_id: int
    bearer: str
    cookie_name: str
    cookie: str
    secret_key: str


def prepare_clinic(folder: Path) -> Clinic:
    """A migrated SQLite database with a physician, a patient, a token and a web session."""
    from starlette.responses import Response

    from ketapath.api.deps import set_session_cookie
    from ketapath.config import Settings
    from ketapath.services import auth, patients
    from ketapath.services.permissions import SYSTEM, Actor
    from ketapath.store import migrate
    from ketapath.store.db import Database, make_engine

    url = f"sqlite:///{folder / 'bench.sqlite3'}"
    secret_key = secrets.token_urlsafe(32)
    settings = Settings(database_url=url, secret_key=secret_key, cookie_secure=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    db = Database(url)
    view = auth.add_user(db, SYSTEM, "dr.bench", "physician", PASSWORD, full_name="Dr Bench")
    physician = Actor(view.id, view.username, view.role)
    document = {
        "name": "Bench Patient",
        "birth_date": "1970-05-01",
        "sex": "female",
        "pregnancy": "not_pregnant",
        "weight_kg": 70,
        "height_cm": 168,
        "diagnoses": ["G90.511"],
        "medications": [{"name": "oxycodone", "dose": 20, "unit": "mg", "frequency": "bd"}],
        "consent": "given",
        "assessment": {"central_sensitisation": True, "multidisciplinary_care": True},
        "purpose": ["pain_relief"],
    }
    record = patients.create_patient(db, physician, document)
    token = auth.issue_api_token(db, settings, "dr.bench", PASSWORD).token
    session = auth.start_session(db, settings, "dr.bench", PASSWORD)
    response = Response()
    set_session_cookie(response, settings, session)
    cookie = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    db.dispose()
    return Clinic(url, record.id, token, settings.session_cookie_name, cookie, secret_key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(clinic: Clinic) -> Iterator[tuple[str, float]]:
    """``ketapath serve`` on a free port: (base URL, seconds until it accepted a connection)."""
    port = free_port()
    env = {
        **os.environ,
        "KETAPATH_DATABASE_URL": clinic.url,
        "KETAPATH_SECRET_KEY": clinic.secret_key,
        "KETAPATH_COOKIE_SECURE": "false",
    }
    start = time.perf_counter()
    server = subprocess.Popen(
        [*ketapath_command(), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                stderr = server.stderr.read().decode() if server.stderr else ""
                raise RuntimeError(f"the server did not start: {stderr[-800:]}")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{port}", time.perf_counter() - start
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def first_request(
    clinic: Clinic, send: Callable[[httpx.Client, str], httpx.Response]
) -> tuple[float, float]:
    """(seconds to accept connections, seconds for the first request) on a fresh server."""
    with serving(clinic) as (base, ready), httpx.Client(timeout=30) as client:
        start = time.perf_counter()
        response = send(client, base)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"first request: {response.status_code} {response.text[:300]}")
        return ready, elapsed


def time_server(runs: int) -> list[Result]:
    folder = Path(tempfile.mkdtemp(prefix="ketapath-bench-startup-"))
    try:
        clinic = prepare_clinic(folder)

        def api(client: httpx.Client, base: str) -> httpx.Response:
            return client.post(
                f"{base}/api/v1/patients/{clinic.patient_id}/plans",
                json={"protocol_id": PROTOCOL, "setting": "clinic"},
                headers={"Authorization": f"Bearer {clinic.bearer}"},
            )

        def page(client: httpx.Client, base: str) -> httpx.Response:
            return client.get(
                f"{base}/patients/{clinic.patient_id}/plan",
                params={"protocol_id": PROTOCOL, "setting": "clinic"},
                headers={"Cookie": f"{clinic.cookie_name}={clinic.cookie}"},
            )

        ready: list[float] = []
        api_s: list[float] = []
        page_s: list[float] = []
        first_request(clinic, api)  # untimed: .pyc files and the file cache
        for _ in range(runs):
            up, took = first_request(clinic, api)
            ready.append(up)
            api_s.append(took)
            up, took = first_request(clinic, page)
            ready.append(up)
            page_s.append(took)
        return [
            Result("first preview after start: `POST /api/v1/.../plans`", api_s, PREVIEW_TARGET_S),
            Result(
                "first preview after start: web page `/patients/{id}/plan`",
                page_s,
                PREVIEW_TARGET_S,
            ),
            Result("`ketapath serve`: start until accepting connections", ready, None),
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21, help="runs per command (default 21)")
    parser.add_argument(
        "--server-runs", type=int, default=7, help="fresh servers per preview (default 7)"
    )
    parser.add_argument("--quick", action="store_true", help="7 runs per command, 3 servers")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-server", action="store_true", help="only the commands")
    args = parser.parse_args()
    runs, server_runs = (7, 3) if args.quick else (args.runs, args.server_runs)
    load_average = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"ketapath start-up benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}, python "
        f"{platform.python_version()}, load average {load_average}"
    )
    print(f"command: {' '.join(ketapath_command())}")
    results = [time_command(label, a, t, runs) for label, (a, t) in COMMANDS.items()]
    if not args.no_server:
        results += time_server(server_runs)
    print()
    print("| what | median s | min s | max s | CPU s (median) | runs | target s | |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        print(result.row())
    missed = [r.label for r in results if r.target is not None and r.median >= r.target]
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if missed:
        print("targets missed: " + "; ".join(missed))
        return 1 if args.strict else 0
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
