"""Lines remember that Kukkingu refused their content (400/422).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

One refused billable used to fail its whole batch of 100 on every sync. The refused line is
now isolated and recorded (Kukkingu's message and the digest of the refused content); the
rest is billed, and the line is tried again only when its content changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("rejected", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rejected_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.drop_column("rejected_digest")
        batch.drop_column("rejected")
