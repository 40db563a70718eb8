"""Issues remember which JQL rules the source says they match.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

A Jira rule may select work by JQL instead of project keys. Only Jira can evaluate JQL, so
the connector tags each issue with the indexes of the JQL rules that returned it, and the
planner matches on the tags.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_issues") as batch:
        batch.add_column(
            sa.Column("jql_rules", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("source_issues") as batch:
        batch.drop_column("jql_rules")
