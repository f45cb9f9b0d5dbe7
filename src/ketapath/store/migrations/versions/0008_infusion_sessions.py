"""Infusion sessions and their charts (issue 10), append-only.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00

``infusion_sessions``: one row per session of a signed order (patient, order, session number,
clinic date, chair, who scheduled it); a session moved is a new row replacing it
(``replaces_id``), so one partial unique index keeps one live row per session of an order.
``session_events``: the chart, one row per entry in order (``seq`` unique per session), who
recorded it in which role, the validated entry as JSON, and ``amends_seq`` for a correction
(unique per session: one correction per entry). Both tables refuse UPDATE and DELETE by
trigger on both databases, and TRUNCATE on PostgreSQL, like the clinical tables of 0001-0007
(the PostgreSQL trigger functions of 0001 and 0004 are reused).
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

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NEW_APPEND_ONLY_TABLES = ("infusion_sessions", "session_events")


def upgrade() -> None:
    op.create_table(
        "infusion_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("session_number", sa.Integer(), nullable=False),
        sa.Column("scheduled_on", sa.Date(), nullable=False),
        sa.Column("chair", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "session_number >= 1", name=op.f("ck_infusion_sessions_number_positive")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_infusion_sessions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_infusion_sessions_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_infusion_sessions_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"],
            ["infusion_sessions.id"],
            name=op.f("fk_infusion_sessions_replaces_id_infusion_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infusion_sessions")),
        sa.UniqueConstraint("replaces_id", name=op.f("uq_infusion_sessions_replaces_id")),
    )
    with op.batch_alter_table("infusion_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_infusion_sessions_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_infusion_sessions_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            "ix_infusion_sessions_scheduled_on_chair", ["scheduled_on", "chair"], unique=False
        )
        batch_op.create_index(
            "uq_infusion_sessions_order_session",
            ["order_id", "session_number"],
            unique=True,
            sqlite_where=sa.text("replaces_id IS NULL"),
            postgresql_where=sa.text("replaces_id IS NULL"),
        )
    op.create_table(
        "session_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_role", sa.String(length=20), nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("amends_seq", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_session_events_seq_positive")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["infusion_sessions.id"],
            name=op.f("fk_session_events_session_id_infusion_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_session_events_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_events")),
        sa.UniqueConstraint("session_id", "seq", name="uq_session_events_session_seq"),
        sa.UniqueConstraint("session_id", "amends_seq", name="uq_session_events_session_amends"),
    )
    create_append_only_triggers(NEW_APPEND_ONLY_TABLES)


def downgrade() -> None:
    drop_append_only_triggers(NEW_APPEND_ONLY_TABLES)
    op.drop_table("session_events")
    with op.batch_alter_table("infusion_sessions", schema=None) as batch_op:
        batch_op.drop_index("uq_infusion_sessions_order_session")
        batch_op.drop_index("ix_infusion_sessions_scheduled_on_chair")
        batch_op.drop_index(batch_op.f("ix_infusion_sessions_order_id"))
        batch_op.drop_index(batch_op.f("ix_infusion_sessions_patient_id"))
    op.drop_table("infusion_sessions")
