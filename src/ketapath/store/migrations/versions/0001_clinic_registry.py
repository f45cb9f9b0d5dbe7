"""Clinic registry: users, sign-in, patients, assessments, screening, orders, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 22:07:04.406712

Clinical tables and the audit log are append-only; triggers refuse UPDATE and DELETE on them
(see ``ketapath.store.models``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
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
    "audit_log",
)


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_login_attempts_username_at", ["username", "at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures_reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "role IN ('physician', 'nurse', 'pharmacist', 'researcher', 'admin')",
            name=op.f("ck_users_role"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('api', 'session')", name=op.f("ck_auth_tokens_kind")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_auth_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_tokens_token_hash")),
    )
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pseudonym", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_patients_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("pseudonym", name=op.f("uq_patients_pseudonym")),
    )
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.String(length=40), nullable=False),
        sa.Column("answers", JSON_DOCUMENT, nullable=False),
        sa.Column("score", JSON_DOCUMENT, nullable=True),
        sa.Column("total", sa.Float(), nullable=True),
        sa.Column("administered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["amends_id"], ["assessments.id"], name=op.f("fk_assessments_amends_id_assessments")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_assessments_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_assessments_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_assessments_amends_id")),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessments_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=40), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("detail", JSON_DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_audit_log_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index("ix_audit_log_patient_at", ["patient_id", "at"], unique=False)

    op.create_table(
        "patient_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", JSON_DOCUMENT, nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=10), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_patient_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["amends_id"],
            ["patient_versions.id"],
            name=op.f("fk_patient_versions_amends_id_patient_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_versions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_patient_versions_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_versions")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_patient_versions_amends_id")),
        sa.UniqueConstraint("patient_id", "version", name="uq_patient_versions_patient_version"),
    )
    with op.batch_alter_table("patient_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_patient_versions_full_name"), ["full_name"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_patient_versions_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "courses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("patient_version_id", sa.Integer(), nullable=False),
        sa.Column("protocol_id", sa.String(length=80), nullable=False),
        sa.Column("options", JSON_DOCUMENT, nullable=False),
        sa.Column("course", JSON_DOCUMENT, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_courses_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_courses_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["patient_version_id"],
            ["patient_versions.id"],
            name=op.f("fk_courses_patient_version_id_patient_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_courses_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "diagnoses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_version_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_version_id"],
            ["patient_versions.id"],
            name=op.f("fk_diagnoses_patient_version_id_patient_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnoses")),
    )
    with op.batch_alter_table("diagnoses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diagnoses_code"), ["code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_diagnoses_patient_version_id"), ["patient_version_id"], unique=False
        )

    op.create_table(
        "medications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_version_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("dose", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("frequency", sa.String(length=40), nullable=True),
        sa.Column("route", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_version_id"],
            ["patient_versions.id"],
            name=op.f("fk_medications_patient_version_id_patient_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medications")),
    )
    with op.batch_alter_table("medications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_medications_name"), ["name"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_medications_patient_version_id"), ["patient_version_id"], unique=False
        )

    op.create_table(
        "screening_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("patient_version_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=40), nullable=False),
        sa.Column("result", JSON_DOCUMENT, nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_screening_results_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["patient_version_id"],
            ["patient_versions.id"],
            name=op.f("fk_screening_results_patient_version_id_patient_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["run_by_id"], ["users.id"], name=op.f("fk_screening_results_run_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_results")),
    )
    with op.batch_alter_table("screening_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_screening_results_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("screening_result_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("override_codes", JSON_DOCUMENT, nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("amends_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status = 'signed' OR amends_id IS NOT NULL", name=op.f("ck_orders_cancel_amends")
        ),
        sa.CheckConstraint("status IN ('signed', 'cancelled')", name=op.f("ck_orders_status")),
        sa.ForeignKeyConstraint(
            ["amends_id"], ["orders.id"], name=op.f("fk_orders_amends_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_orders_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_orders_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_orders_recorded_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["screening_result_id"],
            ["screening_results.id"],
            name=op.f("fk_orders_screening_result_id_screening_results"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("amends_id", name=op.f("uq_orders_amends_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_patient_id"), ["patient_id"], unique=False)

    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ketapath_refuse_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'ketapath: % on % refused: clinical records and the audit '
                    'log are append-only; record an amendment instead', TG_OP, TG_TABLE_NAME;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ketapath_refuse_change()"
            )
    else:
        for table in APPEND_ONLY_TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ketapath: {operation} on {table} refused: "
                    "clinical records and the audit log are append-only; record an amendment "
                    "instead'); END"
                )


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ketapath_refuse_change()")
    else:
        for table in APPEND_ONLY_TABLES:
            for operation in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation}")


def downgrade() -> None:
    _drop_append_only_triggers()
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_patient_id"))

    op.drop_table("orders")
    with op.batch_alter_table("screening_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_screening_results_patient_id"))

    op.drop_table("screening_results")
    with op.batch_alter_table("medications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_medications_patient_version_id"))
        batch_op.drop_index(batch_op.f("ix_medications_name"))

    op.drop_table("medications")
    with op.batch_alter_table("diagnoses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_diagnoses_patient_version_id"))
        batch_op.drop_index(batch_op.f("ix_diagnoses_code"))

    op.drop_table("diagnoses")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_courses_patient_id"))

    op.drop_table("courses")
    with op.batch_alter_table("patient_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_versions_patient_id"))
        batch_op.drop_index(batch_op.f("ix_patient_versions_full_name"))

    op.drop_table("patient_versions")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_patient_at")
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessments_patient_id"))

    op.drop_table("assessments")
    op.drop_table("patients")
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_tokens_user_id"))

    op.drop_table("auth_tokens")
    op.drop_table("users")
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_username_at")

    op.drop_table("login_attempts")
