"""After the infusion (issue 12): assessments tied to a course, indicators of success, the
patient diary (links and entries), repeat decisions, safety follow-up results, letters.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 06:07:36

Clinical rows are append-only like those of 0001-0009 (UPDATE and DELETE refused by trigger on
both databases, TRUNCATE on PostgreSQL; the PostgreSQL trigger functions of 0001 and 0004 are
reused): ``assessment_contexts``, ``success_indicators``, ``diary_entries``,
``repeat_decisions``, ``safety_results``, ``letters``; a correction is a new row that amends
the one before (``amends_id``, unique). ``diary_links`` is a credential like ``auth_tokens``:
its state (opened, revoked, sent) changes, and every change is audited.
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

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NEW_APPEND_ONLY_TABLES = (
    "assessment_contexts",
    "success_indicators",
    "diary_entries",
    "repeat_decisions",
    "safety_results",
    "letters",
)


def upgrade() -> None:
    op.create_table(
        "safety_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.String(length=40), nullable=False),
        sa.Column("observed_on", sa.Date(), nullable=False),
        sa.Column("values", JSON_DOCUMENT, nullable=False),
        sa.Column("abnormal", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"],
            ["safety_results.id"],
            name=op.f("fk_safety_results_amends_id_safety_results"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_safety_results_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_safety_results_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_results")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_safety_results_amends_id")),
    )
    with op.batch_alter_table("safety_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_safety_results_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "diary_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.Column("sent_to", sa.String(length=320), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_diary_links_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_diary_links_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_diary_links_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_id"], ["users.id"], name=op.f("fk_diary_links_revoked_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diary_links")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_diary_links_session_hash")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_diary_links_token_hash")),
    )
    with op.batch_alter_table("diary_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diary_links_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_diary_links_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("facts", JSON_DOCUMENT, nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('discharge_summary', 'gp_letter', 'patient_information')",
            name=op.f("ck_letters_kind"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_letters_version_positive")),
        sa.ForeignKeyConstraint(
            ["amends_id"], ["letters.id"], name=op.f("fk_letters_amends_id_letters")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_letters_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_letters_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_letters_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["signed_by_id"], ["users.id"], name=op.f("fk_letters_signed_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_letters_amends_id")),
    )
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_letters_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_letters_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "repeat_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("proposal", sa.String(length=20), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("next_protocol_id", sa.String(length=80), nullable=True),
        sa.Column("basis", JSON_DOCUMENT, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "decision IN ('repeat', 'change protocol', 'stop')",
            name=op.f("ck_repeat_decisions_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["amends_id"],
            ["repeat_decisions.id"],
            name=op.f("fk_repeat_decisions_amends_id_repeat_decisions"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_repeat_decisions_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_repeat_decisions_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_repeat_decisions_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repeat_decisions")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_repeat_decisions_amends_id")),
    )
    with op.batch_alter_table("repeat_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repeat_decisions_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_repeat_decisions_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "success_indicators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("indicators", JSON_DOCUMENT, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"],
            ["success_indicators.id"],
            name=op.f("fk_success_indicators_amends_id_success_indicators"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_success_indicators_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_success_indicators_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_success_indicators_recorded_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_success_indicators")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_success_indicators_amends_id")),
    )
    with op.batch_alter_table("success_indicators", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_success_indicators_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_success_indicators_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "assessment_contexts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("timepoint_days", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "label IN ('baseline', 'post-session', 'follow-up')",
            name=op.f("ck_assessment_contexts_label"),
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_assessment_contexts_assessment_id_assessments"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_assessment_contexts_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_assessment_contexts_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_assessment_contexts_recorded_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["infusion_sessions.id"],
            name=op.f("fk_assessment_contexts_session_id_infusion_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_contexts")),
        sa.UniqueConstraint("assessment_id", name=op.f("uq_assessment_contexts_assessment_id")),
    )
    with op.batch_alter_table("assessment_contexts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assessment_contexts_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_assessment_contexts_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "diary_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pain_nrs", sa.Integer(), nullable=False),
        sa.Column("entry", JSON_DOCUMENT, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("pain_nrs BETWEEN 0 AND 10", name=op.f("ck_diary_entries_pain_nrs")),
        sa.ForeignKeyConstraint(
            ["amends_id"],
            ["diary_entries.id"],
            name=op.f("fk_diary_entries_amends_id_diary_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["diary_links.id"], name=op.f("fk_diary_entries_link_id_diary_links")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_diary_entries_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_diary_entries_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_diary_entries_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diary_entries")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_diary_entries_amends_id")),
    )
    with op.batch_alter_table("diary_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diary_entries_order_id"), ["order_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_diary_entries_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            "uq_diary_entries_order_day",
            ["order_id", "day"],
            unique=True,
            sqlite_where=sa.text("amends_id IS NULL"),
            postgresql_where=sa.text("amends_id IS NULL"),
        )
    create_append_only_triggers(NEW_APPEND_ONLY_TABLES)


def downgrade() -> None:
    drop_append_only_triggers(NEW_APPEND_ONLY_TABLES)
    with op.batch_alter_table("diary_entries", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_diary_entries_order_day",
            sqlite_where=sa.text("amends_id IS NULL"),
            postgresql_where=sa.text("amends_id IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_diary_entries_patient_id"))
        batch_op.drop_index(batch_op.f("ix_diary_entries_order_id"))

    op.drop_table("diary_entries")
    with op.batch_alter_table("assessment_contexts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_contexts_patient_id"))
        batch_op.drop_index(batch_op.f("ix_assessment_contexts_order_id"))

    op.drop_table("assessment_contexts")
    with op.batch_alter_table("success_indicators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_success_indicators_patient_id"))
        batch_op.drop_index(batch_op.f("ix_success_indicators_order_id"))

    op.drop_table("success_indicators")
    with op.batch_alter_table("repeat_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repeat_decisions_patient_id"))
        batch_op.drop_index(batch_op.f("ix_repeat_decisions_order_id"))

    op.drop_table("repeat_decisions")
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_letters_patient_id"))
        batch_op.drop_index(batch_op.f("ix_letters_order_id"))

    op.drop_table("letters")
    with op.batch_alter_table("diary_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_diary_links_patient_id"))
        batch_op.drop_index(batch_op.f("ix_diary_links_order_id"))

    op.drop_table("diary_links")
    with op.batch_alter_table("safety_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_safety_results_patient_id"))

    op.drop_table("safety_results")
