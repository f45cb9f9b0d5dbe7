"""The clinic's drug library versions (append-only).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00

Each row is one approved version of the clinic's drug library (pumps, stocked strengths,
limits per care setting): its number, name, content digest, the validated document, why it
was loaded and who approved it. Triggers refuse UPDATE and DELETE, as for the clinical
records of 0001/0002 (the PostgreSQL trigger function of 0001 is reused).

Merge note: 0004 and 0005 are other branches' migrations; when they are merged, this
migration's ``down_revision`` becomes "0005" so that the revisions stay one line.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLE = "drug_libraries"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", JSON_DOCUMENT, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_drug_libraries_version_positive")),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["users.id"], name=op.f("fk_drug_libraries_approved_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drug_libraries")),
        sa.UniqueConstraint("version", name=op.f("uq_drug_libraries_version")),
    )
    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION ketapath_refuse_change()"
        )
        # the TRUNCATE guard of migration 0004, for a table added after it
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ketapath_refuse_truncate()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, 'ketapath: {operation} on {TABLE} refused: "
            "clinical records and the audit log are append-only; record an amendment "
            "instead'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
    else:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{operation}")
    op.drop_table(TABLE)
