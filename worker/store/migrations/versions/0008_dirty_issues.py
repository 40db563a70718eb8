"""Plan what changed: dirty issues, each line's issue, and the rules a ledger was planned by.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

A sync used to re-plan a source's whole ledger. Now ingest (and invoice status changes,
refused writes) mark the issues whose billing may have changed in ``dirty_issues``, and the
planner loads only those issues' entries and lines. ``lines.issue_id`` (the issue of the
line's group, until now only inside ``group_key``) finds an issue's lines by index.
``sources.plan_hash`` starts empty, so the first sync after the upgrade plans in full.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_CHUNK = 1000


def upgrade() -> None:
    op.create_table(
        "dirty_issues",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("issue_id", sa.String(255), nullable=False),
    )
    op.create_index(
        op.f("ix_dirty_issues_source_id_id"), "dirty_issues", ["source_id", "id"], unique=False
    )
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("plan_hash", sa.String(64), nullable=True))
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("issue_id", sa.String(255), nullable=True))
    bind = op.get_bind()
    lines = sa.table(
        "lines",
        sa.column("id", sa.Integer),
        sa.column("group_key", sa.String),
        sa.column("issue_id", sa.String),
    )
    rows = bind.execute(sa.select(lines.c.id, lines.c.group_key)).all()
    values = [{"line": line_id, "issue": str(json.loads(key)[4])} for line_id, key in rows]
    statement = (
        lines.update()
        .where(lines.c.id == sa.bindparam("line"))
        .values(issue_id=sa.bindparam("issue"))
    )
    for start in range(0, len(values), BACKFILL_CHUNK):
        bind.execute(statement, values[start : start + BACKFILL_CHUNK])
    with op.batch_alter_table("lines") as batch:
        batch.alter_column("issue_id", existing_type=sa.String(255), nullable=False)
        batch.create_index(op.f("ix_lines_source_id_issue_id"), ["source_id", "issue_id"])


def downgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.drop_index(op.f("ix_lines_source_id_issue_id"))
        batch.drop_column("issue_id")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("plan_hash")
    op.drop_index(op.f("ix_dirty_issues_source_id_id"), table_name="dirty_issues")
    op.drop_table("dirty_issues")
