"""Find an issue's dirty marks by index.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

A source's own ingest skips issues marked already, so it asks, for each batch, which of the
batch's issues hold a mark. With only the ``(source_id, id)`` index each question read every
mark of the source, and a first sync (one mark per issue, thousands of batches) grew with
the square of its issues. ``(source_id, issue_id)`` answers it by lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_dirty_issues_source_id_issue_id"),
        "dirty_issues",
        ["source_id", "issue_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dirty_issues_source_id_issue_id"), table_name="dirty_issues")
