"""Who acknowledged a drift row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

The dashboard's Drift page acknowledges a row with a POST (CSRF-checked); it records when
(``acknowledged_at``, there since 0001) and now who: the logged-in user's name, or
``token`` for a token login.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("drift") as batch:
        batch.add_column(sa.Column("acknowledged_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift") as batch:
        batch.drop_column("acknowledged_by")
