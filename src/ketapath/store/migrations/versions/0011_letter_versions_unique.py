"""Letters: one row per version (issue 12 item 6).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 10:40:00

Two first drafts of the same letter made at the same moment could both read "no version yet"
and both be stored as version 1 (``amends_id`` is unique, but a first draft amends nothing).
A unique index on (patient_id, order_id, kind, version) makes the second insert fail, and
``ketapath.services.letters`` then numbers it again or answers a conflict. NULLs are distinct
in a unique index, so letters without a course (``order_id`` NULL) have their own partial
index on (patient_id, kind, version). No table is created, so no append-only trigger either
(``letters`` has its triggers from 0010).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.create_index(
            "uq_letters_patient_order_kind_version",
            ["patient_id", "order_id", "kind", "version"],
            unique=True,
        )
        batch_op.create_index(
            "uq_letters_patient_kind_version_without_order",
            ["patient_id", "kind", "version"],
            unique=True,
            sqlite_where=sa.text("order_id IS NULL"),
            postgresql_where=sa.text("order_id IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_letters_patient_kind_version_without_order",
            sqlite_where=sa.text("order_id IS NULL"),
            postgresql_where=sa.text("order_id IS NULL"),
        )
        batch_op.drop_index("uq_letters_patient_order_kind_version")
