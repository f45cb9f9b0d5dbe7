"""The facts a signing physician saw, frozen into the order; confirmations of stale orders.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00

``orders.facts`` holds what the physician saw at signing (weight and its date, height, sex,
age, pregnancy, allergies, laterality, consent, the dosing facts and the record version);
orders signed before this revision have none (their facts are read from the record version
they were computed from). ``order_confirmations`` rows amend an order whose dosing facts
changed after signing: append-only like the clinical tables of 0001 (triggers refuse UPDATE
and DELETE; the PostgreSQL trigger function of 0001 is reused).

Revisions 0004-0006 are other branches' (issue 8); whoever merges sets ``down_revision`` to
the newest of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NEW_APPEND_ONLY_TABLES = ("order_confirmations",)


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy of the table), so the append-only triggers of
    # ``orders`` stay; existing rows get NULL.
    op.add_column("orders", sa.Column("facts", JSON_DOCUMENT, nullable=True))
    op.create_table(
        "order_confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("patient_version_id", sa.Integer(), nullable=False),
        sa.Column("facts", JSON_DOCUMENT, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_confirmations_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_order_confirmations_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["patient_version_id"],
            ["patient_versions.id"],
            name=op.f("fk_order_confirmations_patient_version_id_patient_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_order_confirmations_recorded_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_confirmations")),
    )
    with op.batch_alter_table("order_confirmations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_confirmations_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_order_confirmations_patient_id"), ["patient_id"], unique=False
        )
    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    postgresql_backend = op.get_bind().dialect.name == "postgresql"
    for table in NEW_APPEND_ONLY_TABLES:
        if postgresql_backend:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ketapath_refuse_change()"
            )
            # the TRUNCATE guard of migration 0004, for the tables added after it
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


def _drop_append_only_triggers() -> None:
    for table in NEW_APPEND_ONLY_TABLES:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            for operation in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("order_confirmations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_confirmations_patient_id"))
        batch_op.drop_index(batch_op.f("ix_order_confirmations_order_id"))
    op.drop_table("order_confirmations")
    # ALTER TABLE ... DROP COLUMN on both databases (SQLite 3.35 and later), not a batch copy,
    # so the triggers of ``orders`` stay.
    op.drop_column("orders", "facts")
