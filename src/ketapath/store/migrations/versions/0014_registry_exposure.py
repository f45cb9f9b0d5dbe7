"""The registry reads stored exposure (issue 13 items 2 and 3): each course's row carries the
newest stored course exposure summary whose inputs are current, and a stored summary marks its
patient for the registry's refresh.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 12:10:00

Two columns join ``exposure_auc`` on ``registry_courses``: the predicted ketamine peak
(mg/L) and the minutes above the first reference concentration. An insert into
``exposure_summaries`` (a summary stored on read, or by ``ketapath exposure refresh``) adds
its patient to ``registry_dirty``, in the same transaction and in the style of 0013's marks
(once per statement over its new rows on PostgreSQL, once per row on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "exposure_summaries"
COLUMNS = ("exposure_peak", "exposure_minutes_above")


def upgrade() -> None:
    with op.batch_alter_table("registry_courses", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
    # rows made before these columns are summarised again (registry_store.SUMMARY_FORMAT)
    if op.get_bind().dialect.name == "postgresql":
        # ketapath_registry_mark() is 0013's: it marks the distinct patients of the new rows
        op.execute(
            f"CREATE TRIGGER {TABLE}_registry_mark AFTER INSERT ON {TABLE} "
            "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
            "EXECUTE FUNCTION ketapath_registry_mark()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER {TABLE}_registry_mark AFTER INSERT ON {TABLE} "
            "BEGIN INSERT INTO registry_dirty (patient_id) VALUES (NEW.patient_id); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_registry_mark ON {TABLE}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_registry_mark")
    with op.batch_alter_table("registry_courses", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
