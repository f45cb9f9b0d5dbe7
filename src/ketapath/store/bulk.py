"""Bulk loading of many rows at once (the synthetic registry): COPY on PostgreSQL, one
``executemany`` on SQLite. For loading data that was made elsewhere, never for the clinic's
own actions (those go through the services, one audited transaction each).

Rows carry their ids (:func:`next_ids` hands out ranges after the largest id in use), so
that rows of several tables can refer to each other before any is written; on PostgreSQL the
id sequences are moved past them afterwards (:func:`advance_sequences`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, text

from ketapath.store.models import Base


def table(name: str) -> Table:
    """A table of the clinic's schema by name."""
    return Base.metadata.tables[name]


def next_ids(connection: Connection, names: Iterable[str]) -> dict[str, int]:
    """The first free id of each table (one more than the largest in use)."""
    out = {}
    for name in names:
        largest = connection.execute(select(func.max(table(name).c.id))).scalar()
        out[name] = int(largest or 0) + 1
    return out


def insert_rows(connection: Connection, name: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (dicts with the same keys) into table ``name``; returns how many."""
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        _copy(connection, name, rows)
    else:
        connection.execute(insert(table(name)), list(rows))
    return len(rows)


def _copy(connection: Connection, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    columns = list(rows[0])
    json_columns = {c.name for c in table(name).columns if c.type.__class__.__name__ == "JSON"}
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = f"COPY {name} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                tuple(
                    json.dumps(row[c]) if c in json_columns and row[c] is not None else row[c]
                    for c in columns
                )
            )


def advance_sequences(connection: Connection, names: Iterable[str]) -> None:
    """Move each table's id sequence past its largest id (PostgreSQL; SQLite needs none)."""
    if connection.dialect.name != "postgresql":
        return
    for name in names:
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {name}), false)"
            )
        )


def is_empty(connection: Connection, names: Iterable[str]) -> bool:
    """Whether none of the tables holds a row."""
    return all(
        connection.execute(select(func.count()).select_from(table(n))).scalar() == 0 for n in names
    )


def plain(value: Any) -> Any:
    """A value as JSON data (dates as ISO text), for JSON columns."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
