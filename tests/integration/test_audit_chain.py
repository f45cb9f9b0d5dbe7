"""The audit log detects tampering: rows chained by hash, TRUNCATE refused, `audit verify`.

Tampering is done the way a database superuser would: with the append-only triggers off
(PostgreSQL: ``session_replication_role = replica``; SQLite: the triggers dropped and made
again), since with them on the database refuses UPDATE, DELETE and TRUNCATE outright.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from tests.integration.conftest import as_superuser
from typer.testing import CliRunner

from ketapath.cli import app as cli_app
from ketapath.services import audit
from ketapath.services.audit import GENESIS_HASH, Anchor, chain_hash
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database
from ketapath.store.models import APPEND_ONLY_TABLES, AuditEntry


def _write(database: Database, count: int, action: str = "test.write") -> None:
    for number in range(count):
        with database.transaction() as session:
            audit.record(session, SYSTEM, action, entity="test", detail={"n": number})


def _rows(database: Database) -> list[AuditEntry]:
    with database.transaction() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def test_each_audit_row_carries_the_hash_of_the_row_before_it(database: Database) -> None:
    _write(database, 3)
    rows = _rows(database)
    assert [row.seq for row in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS_HASH
    assert rows[1].prev_hash == rows[0].row_hash
    assert rows[2].prev_hash == rows[1].row_hash
    for row in rows:
        fields = {name: getattr(row, name) for name in audit.CHAINED_FIELDS}
        assert chain_hash(fields) == row.row_hash
    report = audit.verify(database)
    assert report.intact
    assert report.rows_checked == 3
    assert report.head is not None
    assert (report.head.seq, report.head.row_hash) == (3, rows[2].row_hash)


def test_rows_written_in_one_transaction_chain_one_after_the_other(database: Database) -> None:
    with database.transaction() as session:
        for number in range(4):
            audit.record(session, SYSTEM, "test.write", entity="test", detail={"n": number})
    assert [row.seq for row in _rows(database)] == [1, 2, 3, 4]
    assert audit.verify(database).intact


def test_a_rolled_back_row_leaves_no_hole_in_the_chain(database: Database) -> None:
    _write(database, 1)
    with pytest.raises(RuntimeError), database.transaction() as session:
        audit.record(session, SYSTEM, "test.write", entity="test")
        raise RuntimeError("the action failed")
    _write(database, 1)
    assert [row.seq for row in _rows(database)] == [1, 2]
    assert audit.verify(database).intact


def test_numbers_of_every_kind_in_the_detail_verify_after_the_round_trip(
    database: Database,
) -> None:
    detail = {
        "big": 1e300,
        "tiny": 5e-324,
        "tenth": 0.1,
        "whole_float": 2.0,
        "huge_int": 2**60,
        "negative": -17,
        "zero": -0.0,
        "text": "Zoë 'quoted' \"double\" \\ \n",
        "nested": {"b": [1, 2.5, None, True], "a": (3, 4)},
        7: "an int key becomes text",
    }
    with database.transaction() as session:
        audit.record(session, SYSTEM, "test.numbers", entity="test", detail=detail)
    report = audit.verify(database)
    assert report.intact, report.first_break


def test_a_forged_row_is_reported_as_a_hash_mismatch(database: Database) -> None:
    _write(database, 5)
    target = _rows(database)[2]
    with as_superuser(database) as connection:
        connection.execute(
            text("UPDATE audit_log SET username = 'someone.else' WHERE id = :id"),
            {"id": target.id},
        )
    report = audit.verify(database)
    assert report.first_break is not None
    assert report.first_break.problem == "hash mismatch"
    assert (report.first_break.row_id, report.first_break.seq) == (target.id, 3)
    assert report.rows_checked == 2


def test_a_forged_row_with_a_fresh_hash_breaks_the_next_link(database: Database) -> None:
    _write(database, 5)
    rows = _rows(database)
    target = rows[2]
    fields = {name: getattr(target, name) for name in audit.CHAINED_FIELDS}
    fields["outcome"] = "denied"
    with as_superuser(database) as connection:
        connection.execute(
            text("UPDATE audit_log SET outcome = 'denied', row_hash = :hash WHERE id = :id"),
            {"hash": chain_hash(fields), "id": target.id},
        )
    report = audit.verify(database)
    assert report.first_break is not None
    assert report.first_break.problem == "wrong previous hash"
    assert report.first_break.row_id == rows[3].id


def test_a_deleted_row_is_reported_as_missing(database: Database) -> None:
    _write(database, 5)
    target = _rows(database)[1]
    with as_superuser(database) as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": target.id})
    report = audit.verify(database)
    assert report.first_break is not None
    assert report.first_break.problem == "missing rows"
    assert report.first_break.seq == 3
    assert "seq 2 is missing" in report.first_break.message


def test_removing_the_first_rows_is_reported(database: Database) -> None:
    _write(database, 4)
    with as_superuser(database) as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq <= 2"))
    report = audit.verify(database)
    assert report.first_break is not None
    assert report.first_break.problem == "missing rows"
    assert "seq 1 to 2 are missing" in report.first_break.message


def test_a_chain_emptied_or_cut_short_is_caught_by_the_recorded_head(
    database: Database,
) -> None:
    _write(database, 4)
    head = audit.head(database)
    assert head is not None
    anchor = Anchor(head.seq, head.row_hash)
    assert audit.verify(database, anchor=anchor).intact
    with as_superuser(database) as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq >= 3"))
    assert audit.verify(database).intact  # the chain alone cannot tell its end was cut
    report = audit.verify(database, anchor=anchor)
    assert report.first_break is not None
    assert report.first_break.problem == "anchor mismatch"
    with as_superuser(database) as connection:
        connection.execute(text("DELETE FROM audit_log"))
    report = audit.verify(database, anchor=anchor)
    assert report.first_break is not None
    assert report.first_break.problem == "anchor mismatch"


def test_a_chain_rewritten_consistently_is_caught_by_the_recorded_head(
    database: Database,
) -> None:
    _write(database, 3)
    head = audit.head(database)
    assert head is not None
    rows = _rows(database)
    prev_hash = GENESIS_HASH
    with as_superuser(database) as connection:
        for row in rows:
            fields = {name: getattr(row, name) for name in audit.CHAINED_FIELDS}
            fields["prev_hash"] = prev_hash
            if row.seq == 2:
                fields["action"] = "nothing.to.see"
            prev_hash = chain_hash(fields)
            connection.execute(
                text(
                    "UPDATE audit_log SET action = :action, prev_hash = :prev, "
                    "row_hash = :hash WHERE id = :id"
                ),
                {
                    "action": fields["action"],
                    "prev": fields["prev_hash"],
                    "hash": prev_hash,
                    "id": row.id,
                },
            )
    assert audit.verify(database).intact  # consistent: only an outside record can tell
    report = audit.verify(database, anchor=Anchor(head.seq, head.row_hash))
    assert report.first_break is not None
    assert report.first_break.problem == "anchor mismatch"
    assert report.first_break.seq == 3


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_postgresql_refuses_truncate_of_every_append_only_table(
    database: Database, table: str
) -> None:
    _write(database, 2)
    with pytest.raises(DBAPIError, match="TRUNCATE on"), database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {table} CASCADE"))
    assert len(_rows(database)) == 2


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_postgresql_refuses_a_truncate_that_cascades_into_the_records(
    database: Database,
) -> None:
    from ketapath.services import patients

    patients.create_patient(
        database,
        Actor(None, "system", "nurse"),
        {"name": "Pat Cascade", "sex": "male", "weight_kg": 70, "age_years": 40},
    )
    with pytest.raises(DBAPIError, match="TRUNCATE on"), database.engine.begin() as connection:
        connection.execute(text("TRUNCATE patients CASCADE"))


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_sqlite_refuses_emptying_the_audit_log(database: Database) -> None:
    _write(database, 2)
    with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log"))
    assert len(_rows(database)) == 2


def test_concurrent_writers_never_fork_the_chain(database: Database) -> None:
    writers, per_writer = 6, 15
    start = threading.Barrier(writers)

    def write(number: int) -> int:
        start.wait()
        for item in range(per_writer):
            with database.transaction() as session:
                audit.record(
                    session,
                    SYSTEM,
                    "test.concurrent",
                    entity="test",
                    detail={"writer": number, "item": item},
                )
        return per_writer

    with ThreadPoolExecutor(max_workers=writers) as pool:
        written = sum(pool.map(write, range(writers)))
    rows = _rows(database)
    assert written == len(rows) == writers * per_writer
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    report = audit.verify(database)
    assert report.intact, report.first_break


def test_the_migration_chains_the_rows_a_clinic_already_has(database: Database) -> None:
    migrate.downgrade(database.engine, "0003")
    with database.engine.begin() as connection:
        for number in range(7):
            connection.execute(
                text(
                    "INSERT INTO audit_log (at, user_id, username, role, action, outcome, "
                    "entity, entity_id, patient_id, detail) VALUES (:at, NULL, 'system', "
                    "'admin', 'old.write', 'ok', 'test', :eid, NULL, :detail)"
                ),
                {
                    "at": f"2026-01-0{1 + number % 5} 10:00:00.{number:06d}"
                    + ("+00:00" if database.backend == "postgresql" else ""),
                    "eid": str(number),
                    "detail": json.dumps({"n": number, "dose_mg": 12.5 * number}),
                },
            )
    migrate.upgrade(database.engine)
    rows = _rows(database)
    assert [(row.seq, row.entity_id) for row in rows] == [(n + 1, str(n)) for n in range(7)]
    assert audit.verify(database).intact
    _write(database, 1)  # the application goes on from the backfilled head
    report = audit.verify(database)
    assert report.intact
    assert report.rows_checked == 8


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def cli(database: Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("KETAPATH_DATABASE_URL", database.url)
    return CliRunner()


def test_audit_verify_exits_0_on_an_intact_chain_and_1_on_a_broken_one(
    database: Database, cli: CliRunner
) -> None:
    _write(database, 3)
    intact = cli.invoke(cli_app, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "audit chain intact: 3 rows checked" in intact.output
    target = _rows(database)[1]
    with as_superuser(database) as connection:
        connection.execute(
            text("UPDATE audit_log SET detail = '{}' WHERE id = :id"), {"id": target.id}
        )
    broken = cli.invoke(cli_app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"BROKEN at row {target.id} (seq 2): hash mismatch" in broken.output
    document = json.loads(cli.invoke(cli_app, ["audit", "verify", "--json"]).output)
    assert document["intact"] is False
    assert document["first_break"]["problem"] == "hash mismatch"
    assert document["first_break"]["row_id"] == target.id


def test_audit_head_prints_an_anchor_that_verify_checks(database: Database, cli: CliRunner) -> None:
    _write(database, 2)
    printed = cli.invoke(cli_app, ["audit", "head"])
    assert printed.exit_code == 0, printed.output
    anchor = printed.stdout.strip()
    head = audit.head(database)
    assert head is not None
    assert anchor == f"2:{head.row_hash}"
    document = json.loads(cli.invoke(cli_app, ["audit", "head", "--json"]).stdout)
    assert document["anchor"] == anchor
    assert cli.invoke(cli_app, ["audit", "verify", "--anchor", anchor]).exit_code == 0
    wrong = anchor[:-4] + ("0000" if not anchor.endswith("0000") else "1111")
    checked = cli.invoke(cli_app, ["audit", "verify", "--anchor", wrong, "--json"])
    assert checked.exit_code == 1
    assert json.loads(checked.stdout)["first_break"]["problem"] == "anchor mismatch"


def test_audit_verify_refuses_a_malformed_anchor_with_exit_2(
    database: Database, cli: CliRunner
) -> None:
    result = cli.invoke(cli_app, ["audit", "verify", "--anchor", "12:not-a-hash"])
    assert result.exit_code == 2
    assert "SEQ:HASH" in result.output
    assert "Traceback" not in result.output


def test_audit_verify_on_a_database_without_the_schema_is_exit_2_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KETAPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    result = CliRunner().invoke(cli_app, ["audit", "verify"])
    assert result.exit_code == 2
    assert "ketapath db upgrade" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_audit_row_of_a_failed_action_is_not_left_for_the_next_transaction(
    database: Database,
) -> None:
    with pytest.raises(RuntimeError), database.transaction() as session:
        audit.record(session, SYSTEM, "test.failed", entity="test")
        raise RuntimeError("the action failed")
    assert not session.info.get("ketapath.audit_pending")
    assert _rows(database) == []


def test_the_audit_row_joins_the_chain_only_when_its_transaction_commits(
    database: Database,
) -> None:
    with database.transaction() as session:
        audit.record(session, SYSTEM, "test.write", entity="test")
        session.flush()
        assert session.scalar(select(AuditEntry.id)) is None
    assert [row.action for row in _rows(database)] == ["test.write"]


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_superusers_truncate_with_triggers_off_is_caught_by_the_recorded_head(
    database: Database,
) -> None:
    _write(database, 3)
    head = audit.head(database)
    assert head is not None
    with as_superuser(database) as connection:
        connection.execute(text("TRUNCATE audit_log"))
    report = audit.verify(database, anchor=Anchor(head.seq, head.row_hash))
    assert report.first_break is not None
    assert report.first_break.problem == "anchor mismatch"
    assert report.rows_checked == 0


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_row_that_cannot_be_read_back_is_reported_not_a_crash(
    database: Database, cli: CliRunner
) -> None:
    _write(database, 3)
    target = _rows(database)[1]
    with as_superuser(database) as connection:
        connection.execute(
            text("UPDATE audit_log SET at = 'yesterday, about noon' WHERE id = :id"),
            {"id": target.id},
        )
    report = audit.verify(database)
    assert report.first_break is not None
    assert report.first_break.problem == "unreadable row"
    assert (report.first_break.row_id, report.rows_checked) == (target.id, 1)
    result = cli.invoke(cli_app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "unreadable row" in result.output
