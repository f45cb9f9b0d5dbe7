"""Opioid plans and the opioid doses recorded at follow-ups (PRODUCT step 6).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:57:02.261859

Both tables are clinical records and append-only like those of 0001: triggers refuse UPDATE
and DELETE (the PostgreSQL trigger function of 0001 is reused).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NEW_APPEND_ONLY_TABLES = ("opioid_plans", "opioid_doses")


def upgrade() -> None:
    op.create_table(
        "opioid_doses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=False),
        sa.Column("medications", JSON_DOCUMENT, nullable=False),
        sa.Column("result", JSON_DOCUMENT, nullable=False),
        sa.Column("table_id", sa.String(length=40), nullable=False),
        sa.Column("ome_mg_per_day", sa.Float(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"], ["opioid_doses.id"], name=op.f("fk_opioid_doses_amends_id_opioid_doses")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_opioid_doses_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_opioid_doses_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opioid_doses")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_opioid_doses_amends_id")),
    )
    with op.batch_alter_table("opioid_doses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_opioid_doses_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "opioid_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("patient_version_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("request", JSON_DOCUMENT, nullable=False),
        sa.Column("plan", JSON_DOCUMENT, nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("override_codes", JSON_DOCUMENT, nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status = 'agreed' OR amends_id IS NOT NULL",
            name=op.f("ck_opioid_plans_withdraw_amends"),
        ),
        sa.CheckConstraint(
            "status IN ('agreed', 'withdrawn')", name=op.f("ck_opioid_plans_status")
        ),
        sa.ForeignKeyConstraint(
            ["amends_id"], ["opioid_plans.id"], name=op.f("fk_opioid_plans_amends_id_opioid_plans")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_opioid_plans_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["patient_version_id"],
            ["patient_versions.id"],
            name=op.f("fk_opioid_plans_patient_version_id_patient_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_opioid_plans_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opioid_plans")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_opioid_plans_amends_id")),
    )
    with op.batch_alter_table("opioid_plans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_opioid_plans_patient_id"), ["patient_id"], unique=False
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
        else:
            for operation in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("opioid_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opioid_plans_patient_id"))

    op.drop_table("opioid_plans")
    with op.batch_alter_table("opioid_doses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opioid_doses_patient_id"))

    op.drop_table("opioid_doses")
