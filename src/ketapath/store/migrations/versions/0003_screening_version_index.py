"""Index screening_results.patient_version_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 01:30:00

Every plan preview and every signature looks up the latest screen of the patient's current
record version. Without this index that lookup scanned the whole table (SQLite: "SCAN
screening_results"; PostgreSQL: a backwards walk of the primary key): 8 ms at 10,000 screens
and 28 ms at 100,000, against 0.02 ms with it (benchmarks/bench_api.py, docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("screening_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_screening_results_patient_version_id"),
            ["patient_version_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("screening_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_screening_results_patient_version_id"))
