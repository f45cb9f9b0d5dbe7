"""The schema: made by the migrations, matching the models, append-only where clinical."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ketapath.services import audit
from ketapath.services.permissions import SYSTEM
from ketapath.store import migrate
from ketapath.store.db import Database
from ketapath.store.models import APPEND_ONLY_TABLES, Assessment, AuditEntry, Base, LoginAttempt


def test_the_migrations_build_exactly_the_schema_the_models_describe(database: Database) -> None:
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_the_database_is_at_the_newest_migration(database: Database) -> None:
    assert migrate.current_revision(database.engine) == migrate.head_revision()


def test_every_clinical_table_refuses_updates_and_deletes(database: Database) -> None:
    with database.transaction() as session:
        audit.record(session, SYSTEM, "test.write", entity="test")
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("UPDATE audit_log SET action = 'tampered'"))
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("DELETE FROM audit_log"))
    with database.transaction() as session:
        assert session.scalar(select(AuditEntry.action)) == "test.write"


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_each_append_only_table_has_its_guard(database: Database, table: str) -> None:
    with database.engine.connect() as connection:
        if database.backend == "postgresql":
            names = connection.execute(
                text(
                    "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE c.relname = :table AND c.relnamespace = "
                    "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
                ),
                {"table": table},
            ).scalars()
        else:
            names = connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                {"t": table},
            ).scalars()
        assert set(names) >= (
            {f"{table}_append_only", f"{table}_no_truncate"}
            if database.backend == "postgresql"
            else {f"{table}_no_update", f"{table}_no_delete"}
        )


def test_timestamps_come_back_as_the_same_utc_instant(database: Database) -> None:
    local = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=10)))
    with database.transaction() as session:
        session.add(LoginAttempt(at=local, username="x", succeeded=False, channel="api"))
    with database.transaction() as session:
        stored = session.scalar(select(LoginAttempt.at))
    assert stored is not None
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored == local.astimezone(UTC)


def test_a_naive_timestamp_is_refused(database: Database) -> None:
    with pytest.raises(Exception, match="timezone-aware"), database.transaction() as session:
        session.add(
            LoginAttempt(
                at=datetime(2026, 3, 1, 9, 30), username="x", succeeded=False, channel="api"
            )
        )
        session.flush()


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError), database.transaction() as session:
        session.add(
            Assessment(
                patient_id=999_999,
                instrument_id="nrs",
                answers={"pain": 3},
                administered_at=datetime.now(UTC),
            )
        )


def test_the_audit_log_names_patients_without_depending_on_the_patients_table(
    database: Database,
) -> None:
    with database.transaction() as session:
        audit.record(session, SYSTEM, "patient.read", entity="patient", patient_id=999_999)
    with database.transaction() as session:
        assert session.scalar(select(AuditEntry.patient_id)) == 999_999
    with database.engine.connect() as connection:
        foreign_keys = inspect(connection).get_foreign_keys("audit_log")
        indexes = {
            i["name"]: i["column_names"] for i in inspect(connection).get_indexes("audit_log")
        }
    assert [fk["referred_table"] for fk in foreign_keys] == ["users"]
    assert indexes["ix_audit_log_patient_at"] == ["patient_id", "at"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_mode_with_foreign_keys(database: Database) -> None:
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_read_only_transaction_does_not_wait_for_a_writer(database: Database) -> None:
    with database.transaction() as writer:
        audit.record(writer, SYSTEM, "test.write", entity="test")
        writer.flush()  # the writer holds SQLite's write lock until it commits
        with database.read_only() as reader:
            assert reader.scalar(select(AuditEntry.id)) is None  # sees the last commit only


def test_the_migrations_go_down_to_nothing_and_up_again(database: Database) -> None:
    migrate.downgrade(database.engine, "base")
    with database.engine.connect() as connection:
        left = set(inspect(connection).get_table_names()) - {"alembic_version"}
    assert left == set()
    migrate.upgrade(database.engine)
    assert migrate.current_revision(database.engine) == migrate.head_revision()
