"""The controlled-drug ledger (issue 11): products, storage locations and the chained ledger.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 06:30:00

``stock_products``: each controlled-drug product stocked (drug, strength in micrograms per
mL, container volume in microlitres, form, manufacturer, product code). ``stock_locations``:
the safes and cabinets it is kept in. ``ledger_lines``: every receipt, dispensing,
administration, waste, count, loss, theft, resolution and correction, one row each, chained
by hash (``seq``, ``prev_hash``, ``row_hash``; ``ketapath.services.ledger``). The three tables
refuse UPDATE and DELETE by trigger on both databases, and TRUNCATE on PostgreSQL, like the
clinical tables of 0001-0008 (the PostgreSQL trigger functions of 0001 and 0004 are reused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ketapath.store.migrations.append_only import (
    create_append_only_triggers,
    drop_append_only_triggers,
)

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NEW_APPEND_ONLY_TABLES = ("stock_products", "stock_locations", "ledger_lines")


def _made_by(table: str) -> list[Any]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f(f"fk_{table}_created_by_id_users")
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "stock_products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("strength_ug_per_ml", sa.BigInteger(), nullable=False),
        sa.Column("container_ul", sa.BigInteger(), nullable=False),
        sa.Column("form", sa.String(length=40), nullable=False),
        sa.Column("manufacturer", sa.String(length=200), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        *_made_by("stock_products"),
        sa.CheckConstraint(
            "strength_ug_per_ml > 0", name=op.f("ck_stock_products_strength_positive")
        ),
        sa.CheckConstraint("container_ul > 0", name=op.f("ck_stock_products_container_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_products")),
        sa.UniqueConstraint("name", name=op.f("uq_stock_products_name")),
    )
    op.create_table(
        "stock_locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        *_made_by("stock_locations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_locations")),
        sa.UniqueConstraint("name", name=op.f("uq_stock_locations_name")),
    )
    op.create_table(
        "ledger_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("lot", sa.String(length=40), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("stock_change_ug", sa.BigInteger(), nullable=False),
        sa.Column("amount_ug", sa.BigInteger(), nullable=False),
        sa.Column("containers", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("witness_id", sa.Integer(), nullable=True),
        sa.Column("witness_username", sa.String(length=64), nullable=True),
        sa.Column("corrects_seq", sa.BigInteger(), nullable=True),
        sa.Column("resolves_seq", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("detail", JSON_DOCUMENT, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_ledger_lines_seq_positive")),
        sa.CheckConstraint("amount_ug >= 0", name=op.f("ck_ledger_lines_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["stock_products.id"],
            name=op.f("fk_ledger_lines_product_id_stock_products"),
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["stock_locations.id"],
            name=op.f("fk_ledger_lines_location_id_stock_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["infusion_sessions.id"],
            name=op.f("fk_ledger_lines_session_id_infusion_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_ledger_lines_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ledger_lines_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["witness_id"], ["users.id"], name=op.f("fk_ledger_lines_witness_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_lines")),
    )
    with op.batch_alter_table("ledger_lines", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_lines_seq", ["seq"], unique=True)
        batch_op.create_index(
            "ix_ledger_lines_stock", ["product_id", "lot", "location_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_lines_session_id"), ["session_id"], unique=False
        )
    create_append_only_triggers(NEW_APPEND_ONLY_TABLES)


def downgrade() -> None:
    drop_append_only_triggers(NEW_APPEND_ONLY_TABLES)
    with op.batch_alter_table("ledger_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_lines_session_id"))
        batch_op.drop_index("ix_ledger_lines_stock")
        batch_op.drop_index("ix_ledger_lines_seq")
    op.drop_table("ledger_lines")
    op.drop_table("stock_locations")
    op.drop_table("stock_products")
