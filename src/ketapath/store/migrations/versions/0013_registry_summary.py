"""The registry (issue 13): one summary row per course, and the marks that say whose records
changed since it was computed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:00:00

``registry_courses`` is derived data (recomputed, replaced; not a clinical record, so not
append-only). ``registry_dirty`` gets a row for the patient whenever a record the summary reads
is inserted: a trigger on each of those tables, in the same transaction as the insert, so a
change can never be missed by the summary however it was written. On PostgreSQL the triggers
fire once per statement over its new rows (a transition table), so a bulk load pays once per
statement; on SQLite once per row. Every one of these tables is append-only, so an insert is
the only change there is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables whose rows carry the patient's id; session_events reach it through their session.
MARKED_TABLES = (
    "patient_versions",
    "orders",
    "infusion_sessions",
    "assessments",
    "assessment_contexts",
    "diary_entries",
    "safety_results",
)
CHART_TABLE = "session_events"


def upgrade() -> None:
    op.create_table(
        "registry_courses",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("protocol_id", sa.String(length=80), nullable=False),
        sa.Column("setting", sa.String(length=10), nullable=False),
        sa.Column("indication", sa.String(length=80), nullable=True),
        sa.Column("diagnoses", sa.String(length=400), nullable=False),
        sa.Column("icd10cm", sa.String(length=400), nullable=False),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("sessions_planned", sa.Integer(), nullable=False),
        sa.Column("sessions_given", sa.Integer(), nullable=False),
        sa.Column("first_session_on", sa.Date(), nullable=True),
        sa.Column("last_session_on", sa.Date(), nullable=True),
        sa.Column("delivered_mg", sa.Float(), nullable=False),
        sa.Column("dose_mg_per_kg", sa.Float(), nullable=True),
        sa.Column("infusion_hours", sa.Float(), nullable=False),
        sa.Column("adjuncts", sa.String(length=200), nullable=False),
        sa.Column("side_effects", sa.Integer(), nullable=False),
        sa.Column("troublesome_side_effects", sa.Integer(), nullable=False),
        sa.Column("stopped_for_side_effect", sa.Integer(), nullable=False),
        sa.Column("chart_refusals", sa.Integer(), nullable=False),
        sa.Column("safety_abnormal", sa.Integer(), nullable=False),
        sa.Column("cumulative_mg_per_kg", sa.Float(), nullable=True),
        sa.Column("baseline_nrs", sa.Integer(), nullable=True),
        sa.Column("follow_up_days", sa.Integer(), nullable=True),
        sa.Column("follow_up_nrs", sa.Integer(), nullable=True),
        sa.Column("responder_30", sa.String(length=16), nullable=False),
        sa.Column("responder_50", sa.String(length=16), nullable=False),
        sa.Column("relief_status", sa.String(length=16), nullable=False),
        sa.Column("relief_days", sa.Integer(), nullable=True),
        sa.Column("relief_event", sa.Boolean(), nullable=True),
        sa.Column("auc_status", sa.String(length=12), nullable=False),
        sa.Column("auc", sa.Float(), nullable=True),
        sa.Column("exposure_auc", sa.Float(), nullable=True),
        sa.Column("exposure_status", sa.String(length=20), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_registry_courses_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_registry_courses_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_registry_courses")),
    )
    op.create_index(
        op.f("ix_registry_courses_patient_id"), "registry_courses", ["patient_id"], unique=False
    )
    op.create_index(
        op.f("ix_registry_courses_first_session_on"),
        "registry_courses",
        ["first_session_on"],
        unique=False,
    )
    op.create_table(
        "registry_dirty",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_dirty")),
    )
    op.create_table(
        "registry_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("definitions", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_registry_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_state")),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_marks()
    else:
        _sqlite_marks()


def _postgresql_marks() -> None:
    op.execute(
        "CREATE FUNCTION ketapath_registry_mark() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO registry_dirty (patient_id) "
        "SELECT DISTINCT patient_id FROM inserted; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE FUNCTION ketapath_registry_mark_chart() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO registry_dirty (patient_id) "
        "SELECT DISTINCT s.patient_id FROM inserted i "
        "JOIN infusion_sessions s ON s.id = i.session_id; RETURN NULL; END $$"
    )
    for table in MARKED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_registry_mark AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
            "EXECUTE FUNCTION ketapath_registry_mark()"
        )
    op.execute(
        f"CREATE TRIGGER {CHART_TABLE}_registry_mark AFTER INSERT ON {CHART_TABLE} "
        "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
        "EXECUTE FUNCTION ketapath_registry_mark_chart()"
    )


def _sqlite_marks() -> None:
    for table in MARKED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_registry_mark AFTER INSERT ON {table} "
            "BEGIN INSERT INTO registry_dirty (patient_id) VALUES (NEW.patient_id); END"
        )
    op.execute(
        f"CREATE TRIGGER {CHART_TABLE}_registry_mark AFTER INSERT ON {CHART_TABLE} "
        "BEGIN INSERT INTO registry_dirty (patient_id) "
        "SELECT patient_id FROM infusion_sessions WHERE id = NEW.session_id; END"
    )


def downgrade() -> None:
    postgresql_backend = op.get_bind().dialect.name == "postgresql"
    for table in (*MARKED_TABLES, CHART_TABLE):
        if postgresql_backend:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_registry_mark ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_registry_mark")
    if postgresql_backend:
        op.execute("DROP FUNCTION IF EXISTS ketapath_registry_mark_chart()")
        op.execute("DROP FUNCTION IF EXISTS ketapath_registry_mark()")
    op.drop_table("registry_state")
    op.drop_table("registry_dirty")
    op.drop_index(op.f("ix_registry_courses_first_session_on"), table_name="registry_courses")
    op.drop_index(op.f("ix_registry_courses_patient_id"), table_name="registry_courses")
    op.drop_table("registry_courses")
