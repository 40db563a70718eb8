"""The price list cache (Cliniko billable items, SPEC §11).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

A rule may take its hourly rate from a Cliniko billable item. The items are cached here, so
a Cliniko outage does not stop billing: ``price_items`` holds each item as last read,
``price_list`` (one row) when the list was read, up to which ``updated_at``, and why the
last attempt failed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "price_items",
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("item_code", sa.String(100), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("item_type", sa.String(32), nullable=False),
        sa.Column("price", sa.Text(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_price_items")),
    )
    op.create_index(op.f("ix_price_items_item_code"), "price_items", ["item_code"])
    op.create_table(
        "price_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("base_url", sa.String(255), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("full_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_list")),
    )


def downgrade() -> None:
    op.drop_table("price_list")
    op.drop_index(op.f("ix_price_items_item_code"), table_name="price_items")
    op.drop_table("price_items")
