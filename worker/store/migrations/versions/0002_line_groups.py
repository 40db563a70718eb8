"""Lines know what they bill by stable ids; drift rows are unique per (line, entry, kind).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

``lines.source_id`` + ``lines.group_key`` identify the (contract, currency, period, source,
issue[, entry]) a line bills, so an issue moved to another key keeps its line. No release
wrote lines before this revision, so the new NOT NULL columns need no backfill.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("source_id", sa.Integer(), nullable=False))
        batch.add_column(sa.Column("group_key", sa.String(length=1024), nullable=False))
        batch.create_foreign_key("fk_lines_source_id_sources", "sources", ["source_id"], ["id"])
        batch.create_index("ix_lines_source_id_group_key", ["source_id", "group_key"])
    with op.batch_alter_table("drift") as batch:
        batch.create_unique_constraint(
            "uq_drift_line_id_entry_id_kind", ["line_id", "entry_id", "kind"]
        )


def downgrade() -> None:
    with op.batch_alter_table("drift") as batch:
        batch.drop_constraint("uq_drift_line_id_entry_id_kind", type_="unique")
    with op.batch_alter_table("lines") as batch:
        batch.drop_index("ix_lines_source_id_group_key")
        batch.drop_constraint("fk_lines_source_id_sources", type_="foreignkey")
        batch.drop_column("group_key")
        batch.drop_column("source_id")
