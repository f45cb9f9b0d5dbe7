"""Nothing acknowledged is lost: the real server (``ketapath serve``, uvicorn, a process of its
own) is killed with SIGKILL in the middle of a stream of chart writes, on SQLite and on
PostgreSQL; after a restart every write it had answered 201 is in the chart, unchanged."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import baseline_vitals
from tests.integration.conftest import TEST_PASSWORD, check_in_entry, scheduled_session

from ketapath.services import sessions
from ketapath.services.clock import clinic_clock
from ketapath.services.permissions import Actor
from ketapath.services.sessions import ChartWrite
from ketapath.store.db import Database

ROOT = Path(__file__).resolve().parents[2]
SECRET = "durability-test-secret-key"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``ketapath serve`` on a database, in its own process."""

    def __init__(self, url: str) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "KETAPATH_DATABASE_URL": url,
            "KETAPATH_SECRET_KEY": SECRET,
            "KETAPATH_COOKIE_SECURE": "false",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ketapath.cli import main; main()",
                "serve",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    self.process.stderr.read().decode() if self.process.stderr else ""
                )
            try:
                if httpx.get(f"{self.base}/auth/csrf", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("the server did not start")

    def token(self, username: str) -> dict[str, str]:
        response = httpx.post(
            f"{self.base}/auth/token", data={"username": username, "password": TEST_PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.mark.slow
def test_every_acknowledged_chart_write_survives_a_sigkill_of_the_server(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_clock()
    session_id = scheduled_session(database, users, clock)
    entry = check_in_entry(datetime.now(UTC))
    write = ChartWrite.model_validate({"expected_seq": 0, "entry": entry})
    sessions.chart(database, users["nurse"], session_id, write, clock=clock)
    database.dispose()  # the server processes are the only writers from here

    server = Server(database.url)
    acknowledged: dict[int, int] = {}  # seq -> the heart rate that write carried
    stopped = threading.Event()

    def write_vitals() -> None:
        headers = server.token("nurse")
        with httpx.Client(timeout=5) as client:
            for n in range(10_000):
                heart_rate = 40 + n % 200
                body: dict[str, Any] = {
                    "expected_seq": 1,  # observations land whatever the writer last saw
                    "entry": {
                        "kind": "vitals",
                        "occurred_at": datetime.now(UTC).isoformat(),
                        **baseline_vitals(heart_rate=heart_rate),
                    },
                }
                try:
                    response = client.post(
                        f"{server.base}/sessions/{session_id}/entries", json=body, headers=headers
                    )
                except httpx.HTTPError:
                    break  # the server is gone: this write was never acknowledged
                if response.status_code != 201:
                    break
                acknowledged[response.json()["chart"]["last_seq"]] = heart_rate
        stopped.set()

    writer = threading.Thread(target=write_vitals)
    try:
        writer.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 40 and time.monotonic() < deadline and not stopped.is_set():
            time.sleep(0.01)
        server.kill()  # mid-stream: the writer has a request in flight or about to be
        writer.join(timeout=30)
        assert len(acknowledged) >= 40
    finally:
        server.stop()

    again = Server(database.url)
    try:
        stored = httpx.get(
            f"{again.base}/sessions/{session_id}/entries", headers=again.token("nurse")
        ).json()
    finally:
        again.stop()
    by_seq = {e["seq"]: e for e in stored}
    missing = sorted(set(acknowledged) - set(by_seq))
    assert missing == [], f"acknowledged but lost: {missing}"
    for seq, heart_rate in acknowledged.items():
        assert by_seq[seq]["entry"]["heart_rate"] == heart_rate
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
