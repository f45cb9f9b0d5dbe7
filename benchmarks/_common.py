"""What the server benchmarks share: a free port, the app under uvicorn, a process's CPU time,
a throw-away PostgreSQL schema, the CPU's name. Imported by ``bench_api.py`` and
``bench_chart_writes.py`` (run as scripts from this folder)."""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
from sqlalchemy import text

from ketapath.store.db import make_engine

API = "/api/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn_server(url: str) -> Iterator[tuple[str, int]]:
    """``ketapath``'s app under uvicorn (one process) on a free local port: (URL, pid)."""
    port = free_port()
    env = {
        **os.environ,
        "KETAPATH_DATABASE_URL": url,
        "KETAPATH_SECRET_KEY": secrets.token_urlsafe(32),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "ketapath.api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    server = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}{API}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start (exit code {server.poll()})")
            time.sleep(0.1)
        yield base, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


@contextlib.contextmanager
def postgres_database(base: str) -> Iterator[str]:
    schema = f"kp_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
