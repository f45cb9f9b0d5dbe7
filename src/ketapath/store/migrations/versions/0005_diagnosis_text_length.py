"""Diagnoses as the consensus tables word them: ``diagnoses.code`` holds 200 characters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 22:00:00

A diagnosis may be written as the ASRA/AAPM/ASA consensus Table 5 words it ("Elevated
intracranial pressure, including secondary traumatic brain injury or tumor", 83 characters);
the 60-character column refused it. The column now has the length of the other names of the
record (200), and the patient file's bound follows it (domain/patient.py CODE_LENGTH).

PostgreSQL widens the column in place (no row is rewritten, so the append-only triggers are
untouched). SQLite does not enforce a VARCHAR length but records it; its table is rebuilt by
Alembic's batch mode, which drops the table's triggers, so the append-only guards of
``diagnoses`` (revision 0001) are created again.

Revisions 0004, 0005 and 0007 are other branches' (issue 8); whoever merges sets
``down_revision`` to the newest revision before this one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "diagnoses"


def upgrade() -> None:
    _set_length(old=60, new=200)


def downgrade() -> None:
    _set_length(old=200, new=60)


def _set_length(*, old: int, new: int) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            TABLE,
            "code",
            type_=sa.String(new),
            existing_type=sa.String(old),
            existing_nullable=False,
            # Going down, longer texts are cut to fit (the record's document keeps them whole).
            postgresql_using=f"left(code, {new})" if new < old else None,
        )
        return
    with op.batch_alter_table(TABLE, schema=None, recreate="always") as batch_op:
        batch_op.alter_column(
            "code", type_=sa.String(new), existing_type=sa.String(old), existing_nullable=False
        )
    for operation in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{operation.lower()}")
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, 'ketapath: {operation} on {TABLE} refused: "
            "clinical records and the audit log are append-only; record an amendment "
            "instead'); END"
        )
