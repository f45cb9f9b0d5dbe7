"""Backup and restore of the whole database.

SQLite: the sqlite3 online backup API (a consistent copy even while the clinic is using the
database). PostgreSQL: ``pg_dump`` in its custom format and ``pg_restore``, which must be on
the PATH (Debian: ``postgresql-client``) and of the server's major version or newer.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url

from ketapath.store.db import normalise_url


class BackupError(Exception):
    """A backup or restore could not be made; the message says what to do."""


def backup(url: str, destination: Path, *, overwrite: bool = False) -> Path:
    """Write a complete copy of the database at ``url`` to ``destination``."""
    if destination.exists() and not overwrite:
        raise BackupError(f"{destination} already exists; choose another file name.")
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        _sqlite_copy(_sqlite_path(parsed), destination)
    elif parsed.get_backend_name() == "postgresql":
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={destination}"], parsed)
    else:
        raise BackupError(f"backup of {parsed.get_backend_name()} databases is not supported")
    return destination


def restore(url: str, source: Path) -> None:
    """Replace the database at ``url`` with the backup in ``source``.

    Stop the server first. Run ``ketapath db upgrade`` afterwards if the backup is older
    than the installed version.
    """
    if not source.is_file():
        raise BackupError(f"{source}: no such backup file.")
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_backup(source)
        _sqlite_copy(source, _sqlite_path(parsed))
    elif parsed.get_backend_name() == "postgresql":
        _run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction"],
            parsed,
            source,
        )
    else:
        raise BackupError(f"restore of {parsed.get_backend_name()} databases is not supported")


def _sqlite_path(parsed: URL) -> Path:
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(parsed.database)


def _sqlite_copy(source: Path, destination: Path) -> None:
    if not source.is_file():
        raise BackupError(f"{source}: no such database file.")
    with sqlite3.connect(source) as src, sqlite3.connect(destination) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _check_sqlite_backup(source: Path) -> None:
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as connection:
            ok = connection.execute("PRAGMA integrity_check").fetchone()
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        connection.close()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{source} is not a SQLite database ({error}).") from error
    if ok is None or ok[0] != "ok":
        raise BackupError(f"{source} fails SQLite's integrity check; not restored.")
    if "alembic_version" not in tables or "patients" not in tables:
        raise BackupError(f"{source} is not a ketapath database; not restored.")


def _libpq_arguments(parsed: URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore, and the schema if the URL pins one."""
    arguments = []
    if parsed.host:
        arguments.append(f"--host={parsed.host}")
    if parsed.port:
        arguments.append(f"--port={parsed.port}")
    if parsed.username:
        arguments.append(f"--username={parsed.username}")
    arguments.append(f"--dbname={parsed.database}")
    options = unquote(str(parsed.query.get("options", "")))
    for option in options.split():
        if option.startswith("-csearch_path="):
            arguments.append(f"--schema={option.split('=', 1)[1].split(',')[0]}")
    environment = {"PGPASSWORD": parsed.password} if parsed.password else {}
    return arguments, environment


def _run(command: list[str], parsed: URL, source: Path | None = None) -> None:
    program = shutil.which(command[0])
    if program is None:
        raise BackupError(
            f"{command[0]} is not installed; install the PostgreSQL client tools "
            "(Debian: apt install postgresql-client) of the server's version."
        )
    arguments, environment = _libpq_arguments(parsed)
    full = [program, *command[1:], *arguments, "--no-password"]
    if source is not None:
        full.append(str(source))
    result = subprocess.run(
        full, capture_output=True, text=True, env={**os.environ, **environment}, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()}")
