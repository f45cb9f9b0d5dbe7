"""Append-only triggers for tables created by migration 0008 and later.

Migration 0001 made ``ketapath_refuse_change()`` (PostgreSQL) and migration 0004 made
``ketapath_refuse_truncate()``; from 0008 on, every migration that adds append-only tables
guards them the same way, so the trigger SQL lives here once and those migrations import it.
Migrations 0001 and 0002 keep their own copies: they ran before the TRUNCATE guard existed,
and a migration's behaviour must not change after it has shipped.

On PostgreSQL: ``BEFORE UPDATE OR DELETE`` per row and ``BEFORE TRUNCATE`` per statement. On
SQLite: one ``RAISE(ABORT, ...)`` trigger each for UPDATE and DELETE.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op


def create_append_only_triggers(tables: Iterable[str]) -> None:
    """Refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) on each table."""
    postgresql_backend = op.get_bind().dialect.name == "postgresql"
    for table in tables:
        if postgresql_backend:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ketapath_refuse_change()"
            )
            # the TRUNCATE guard of migration 0004
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ketapath_refuse_truncate()"
            )
            continue
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'ketapath: {operation} on {table} refused: "
                "clinical records and the audit log are append-only; record an amendment "
                "instead'); END"
            )


def drop_append_only_triggers(tables: Iterable[str]) -> None:
    """Undo :func:`create_append_only_triggers` for each table."""
    postgresql_backend = op.get_bind().dialect.name == "postgresql"
    for table in tables:
        if postgresql_backend:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            for operation in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")
