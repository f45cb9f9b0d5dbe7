"""Audit log chained by hash, independent of the patients table; TRUNCATE refused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 20:30:00

- ``audit_log.patient_id`` loses its foreign key and becomes a BIGINT: it is the patient
  number that was asked for, which a refused request may name without the patient existing
  (such a refusal failed with a foreign-key error, a 500, and went unaudited). The index
  ``ix_audit_log_patient_at`` stays for per-patient queries.
- ``seq``, ``prev_hash`` and ``row_hash`` chain the rows (``ketapath.services.audit``);
  existing rows are chained here in the order of their ids, and ``seq`` gets a unique index.
  The append-only triggers of ``audit_log`` are lifted for that backfill only, inside this
  migration's transaction, and put back.
- On PostgreSQL, ``ketapath_audit_append(...)`` appends one row to the chain in one call
  (lock, head, hash, insert).
- On PostgreSQL a statement-level ``BEFORE TRUNCATE`` trigger refuses TRUNCATE on every
  append-only table (the row triggers of 0001/0002 do not fire for TRUNCATE). SQLite has no
  TRUNCATE: its ``DELETE`` without ``WHERE`` fires the existing DELETE triggers.

Downgrade drops the chain columns and the TRUNCATE triggers but does not put the foreign key
back: refusals may name patients that do not exist, and the audit is not rewritten to fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ketapath.services.audit import CHAINED_FIELDS, GENESIS_HASH, chain_hash
from ketapath.store.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
APPEND_ONLY_TABLES = (
    "patient_versions",
    "diagnoses",
    "medications",
    "assessments",
    "screening_results",
    "courses",
    "orders",
    "opioid_plans",
    "opioid_doses",
    "audit_log",
)
BACKFILL_BATCH = 1000
PATIENT_FOREIGN_KEY = "fk_audit_log_patient_id_patients"

# How the backfill reads and writes audit_log (types as the application stores them).
audit_log = sa.table(
    "audit_log",
    sa.column("id", sa.Integer()),
    sa.column("seq", sa.BigInteger()),
    sa.column("at", UTCDateTime()),
    sa.column("user_id", sa.Integer()),
    sa.column("username", sa.String()),
    sa.column("role", sa.String()),
    sa.column("action", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("entity", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("patient_id", sa.BigInteger()),
    sa.column("detail", JSON_DOCUMENT),
    sa.column("prev_hash", sa.String()),
    sa.column("row_hash", sa.String()),
)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _drop_audit_row_triggers() -> None:
    if _postgresql():
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def _create_audit_row_triggers() -> None:
    """The UPDATE/DELETE guards of 0001 on audit_log (SQLite drops them with the table when
    batch mode copies it, so they are made again)."""
    if _postgresql():
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION ketapath_refuse_change()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{operation.lower()} BEFORE {operation} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, 'ketapath: {operation} on audit_log refused: "
            "clinical records and the audit log are append-only; record an amendment "
            "instead'); END"
        )


def _create_truncate_guards() -> None:
    if not _postgresql():
        return
    op.execute(
        """
        CREATE FUNCTION ketapath_refuse_truncate() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'ketapath: TRUNCATE on % refused: clinical records and the audit '
                'log are append-only', TG_TABLE_NAME;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ketapath_refuse_truncate()"
        )


def _drop_truncate_guards() -> None:
    if not _postgresql():
        return
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS ketapath_refuse_truncate()")


def _create_append_function() -> None:
    """PostgreSQL: append one row to the chain in one call (``ketapath.services.audit``).

    Takes the chain's advisory lock (keyed by the schema; held until the transaction ends),
    reads the head (a VOLATILE function takes a new snapshot for each query, so it sees the
    row committed by the lock's previous holder), and inserts the row with ``seq``,
    ``prev_hash`` and ``row_hash = sha256("<seq>:<prev_hash>:<content hash>")``, the formula
    of ``ketapath.services.audit.link_hash``.
    """
    if not _postgresql():
        return
    op.execute(
        f"""
        CREATE FUNCTION ketapath_audit_append(
            p_at timestamptz, p_user_id integer, p_username varchar, p_role varchar,
            p_action varchar, p_outcome varchar, p_entity varchar, p_entity_id varchar,
            p_patient_id bigint, p_detail jsonb, p_content_hash varchar
        ) RETURNS bigint VOLATILE AS $$
        DECLARE
            head_seq bigint;
            head_hash varchar;
            new_hash varchar;
        BEGIN
            PERFORM pg_advisory_xact_lock(
                hashtextextended('ketapath.audit_log:' || coalesce(current_schema(), ''), 0));
            SELECT a.seq, a.row_hash INTO head_seq, head_hash
                FROM audit_log a ORDER BY a.seq DESC LIMIT 1;
            IF head_seq IS NULL THEN
                head_seq := 0;
                head_hash := '{GENESIS_HASH}';
            END IF;
            new_hash := encode(sha256(convert_to(
                (head_seq + 1)::text || ':' || head_hash || ':' || p_content_hash, 'UTF8')),
                'hex');
            INSERT INTO audit_log (seq, at, user_id, username, role, action, outcome, entity,
                                   entity_id, patient_id, detail, prev_hash, row_hash)
            VALUES (head_seq + 1, p_at, p_user_id, p_username, p_role, p_action, p_outcome,
                    p_entity, p_entity_id, p_patient_id, p_detail, head_hash, new_hash);
            RETURN head_seq + 1;
        END;
        $$ LANGUAGE plpgsql
        """
    )


def _backfill_chain() -> None:
    """Chain the rows already there, oldest (lowest id) first."""
    connection = op.get_bind()
    seq, prev_hash, after = 0, GENESIS_HASH, -1
    columns = [audit_log.c[name] for name in CHAINED_FIELDS if name not in ("seq", "prev_hash")]
    while True:
        rows = connection.execute(
            sa.select(audit_log.c.id, *columns)
            .where(audit_log.c.id > after)
            .order_by(audit_log.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        updates = []
        for row in rows:
            seq += 1
            fields = {**row._mapping, "seq": seq, "prev_hash": prev_hash}
            row_hash = chain_hash(fields)
            updates.append({"row": row.id, "seq": seq, "prev": prev_hash, "hash": row_hash})
            prev_hash = row_hash
        connection.execute(
            audit_log.update()
            .where(audit_log.c.id == sa.bindparam("row"))
            .values(
                seq=sa.bindparam("seq"),
                prev_hash=sa.bindparam("prev"),
                row_hash=sa.bindparam("hash"),
            ),
            updates,
        )
        after = rows[-1].id


def upgrade() -> None:
    _drop_audit_row_triggers()
    # Absent after a downgrade from this revision (which does not put it back).
    foreign_keys = {fk["name"] for fk in sa.inspect(op.get_bind()).get_foreign_keys("audit_log")}
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        if PATIENT_FOREIGN_KEY in foreign_keys:
            batch_op.drop_constraint(PATIENT_FOREIGN_KEY, type_="foreignkey")
        batch_op.alter_column(
            "patient_id", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True
        )
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
    _backfill_chain()
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("row_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index("ix_audit_log_seq", ["seq"], unique=True)
    _create_audit_row_triggers()
    _create_truncate_guards()
    _create_append_function()


def downgrade() -> None:
    if _postgresql():
        op.execute(
            "DROP FUNCTION IF EXISTS ketapath_audit_append(timestamptz, integer, varchar, "
            "varchar, varchar, varchar, varchar, varchar, bigint, jsonb, varchar)"
        )
    _drop_truncate_guards()
    _drop_audit_row_triggers()
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_seq")
        batch_op.drop_column("row_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
        batch_op.alter_column(
            "patient_id", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True
        )
    _create_audit_row_triggers()
