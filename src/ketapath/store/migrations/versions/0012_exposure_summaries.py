"""Stored exposure summaries (issue 13 item 2): AUC, peak and time above reference
concentrations of ketamine and norketamine, per infusion session and per course.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 12:00:00

``exposure_summaries`` is append-only like the clinical tables (UPDATE and DELETE refused by
trigger on both databases, TRUNCATE on PostgreSQL; the trigger functions of 0001 and 0004 are
reused): a summary whose inputs changed (the chart, the patient's record, the model, the
thresholds, the method) is superseded by a new row (``supersedes_id``, unique: one chain per
subject), never overwritten. One first row per subject (partial unique index).

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ketapath.store.migrations.append_only import (
    create_append_only_triggers,
    drop_append_only_triggers,
)

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLE = "exposure_summaries"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("patient_version_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=40), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("thresholds_version", sa.Integer(), nullable=False),
        sa.Column("method_version", sa.Integer(), nullable=False),
        sa.Column("inputs_digest", sa.String(length=64), nullable=False),
        sa.Column("inputs", JSON_DOCUMENT, nullable=False),
        sa.Column("summary", JSON_DOCUMENT, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_by_id", sa.Integer(), nullable=True),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "scope IN ('session', 'course')", name=op.f("ck_exposure_summaries_scope")
        ),
        sa.CheckConstraint(
            "scope = 'course' OR session_id IS NOT NULL",
            name=op.f("ck_exposure_summaries_session_scope"),
        ),
        sa.ForeignKeyConstraint(
            ["computed_by_id"],
            ["users.id"],
            name=op.f("fk_exposure_summaries_computed_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_exposure_summaries_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_exposure_summaries_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["patient_version_id"],
            ["patient_versions.id"],
            name=op.f("fk_exposure_summaries_patient_version_id_patient_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["infusion_sessions.id"],
            name=op.f("fk_exposure_summaries_session_id_infusion_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["exposure_summaries.id"],
            name=op.f("fk_exposure_summaries_supersedes_id_exposure_summaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exposure_summaries")),
        sa.UniqueConstraint("supersedes_id", name=op.f("uq_exposure_summaries_supersedes_id")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exposure_summaries_order_id"), ["order_id"])
        batch_op.create_index(batch_op.f("ix_exposure_summaries_patient_id"), ["patient_id"])
        batch_op.create_index(batch_op.f("ix_exposure_summaries_subject"), ["subject"])
        batch_op.create_index(
            "uq_exposure_summaries_subject_first",
            ["subject"],
            unique=True,
            sqlite_where=sa.text("supersedes_id IS NULL"),
            postgresql_where=sa.text("supersedes_id IS NULL"),
        )
    create_append_only_triggers((TABLE,))


def downgrade() -> None:
    drop_append_only_triggers((TABLE,))
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(
            "uq_exposure_summaries_subject_first",
            sqlite_where=sa.text("supersedes_id IS NULL"),
            postgresql_where=sa.text("supersedes_id IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_exposure_summaries_subject"))
        batch_op.drop_index(batch_op.f("ix_exposure_summaries_patient_id"))
        batch_op.drop_index(batch_op.f("ix_exposure_summaries_order_id"))
    op.drop_table(TABLE)
