"""Lines remember the entries they counted when Kukkingu last confirmed them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

An update refused because its invoice was finalized meanwhile must not count as billed: the
line goes back to what Kukkingu holds and to the entries it counted then, and the
difference is billed as late work. Lines whose last write was confirmed (state synced,
zeroed or frozen with a payload hash) start from the entries they count now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("confirmed_entries", sa.JSON(), nullable=True))
    bind = op.get_bind()
    counted: dict[int, dict[str, int]] = defaultdict(dict)
    rows = bind.execute(
        sa.text(
            "SELECT le.line_id, e.key, le.seconds FROM line_entries le "
            "JOIN entries e ON e.id = le.entry_id "
            "JOIN lines l ON l.id = le.line_id "
            "WHERE l.payload_hash IS NOT NULL AND l.state IN ('synced', 'zeroed', 'frozen')"
        )
    )
    for line_id, key, seconds in rows:
        counted[line_id][key] = seconds
    lines = sa.table("lines", sa.column("id", sa.Integer), sa.column("confirmed_entries", sa.JSON))
    for line_id, entries in counted.items():
        bind.execute(lines.update().where(lines.c.id == line_id).values(confirmed_entries=entries))


def downgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.drop_column("confirmed_entries")
