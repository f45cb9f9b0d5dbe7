"""Engine and transactions.

SQLite (the default, one file) runs in WAL mode with foreign keys on, and every transaction
starts with ``BEGIN IMMEDIATE``: every service call writes an audit row, even a read, so
taking the write lock at the start avoids the "database is locked" failure that a deferred
transaction meets when it upgrades from reading to writing. ``busy_timeout`` makes a second
writer wait its turn instead of failing.

PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY_OPTION = "ketapath_read_only"
# The server answers requests from a pool of 40 threads (FastAPI's default for the routes);
# each may hold a connection, so the pool lends up to 40 (10 kept open). With SQLAlchemy's
# default of 15, twenty chairs charting at once waited for connections (docs/performance.md).
POOL = {"pool_size": 10, "max_overflow": 30}


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (SQLAlchemy's default is psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine configured for the clinic: WAL + foreign keys on SQLite."""
    url = normalise_url(url)
    if is_sqlite(url):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False}, **_pooled(url)
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, **POOL)


def _pooled(url: str) -> dict[str, Any]:
    """The pool's size for a SQLite file (an in-memory database keeps SQLAlchemy's own)."""
    database = make_url(url).database
    return dict(POOL) if database not in (None, "", ":memory:") else {}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL is durable across application crashes; FULL also survives
            # power loss, which is what a chart entry needs.
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine plus a session factory; ``transaction()`` is the only way to write."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        # SQLite admits one writer at a time. The writers of this process take turns on a
        # lock rather than on SQLite's busy handler, which sleeps in steps of up to 100 ms:
        # under twenty concurrent chart writes the slowest waited ten times longer than the
        # work ahead of them (docs/performance.md). Other processes still meet busy_timeout.
        self._writer = threading.Lock() if is_sqlite(self.url) else None

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back if it raises."""
        if self._writer is None:
            with self._sessions() as session, session.begin():
                yield session
            return
        turn = self._writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            with self._sessions() as session, session.begin():
                yield session
        finally:
            if turn:
                self._writer.release()

    @contextmanager
    def read_only(self) -> Iterator[Session]:
        """A transaction that only reads and does not take SQLite's write lock.

        For checks that write nothing, not even an audit row (e.g. resolving a bearer token
        on every request); anything that records must use ``transaction()``.
        """
        with self._readers() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
