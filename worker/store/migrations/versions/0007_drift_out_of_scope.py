"""Drift can be ``out_of_scope``: time a finalized invoice holds whose entry left every rule.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

An issue moved to a project or repository no rule maps, or labelled non-billable, after its
invoice was finalized: the invoice keeps the time, and the operator sees why it no longer
belongs there (it was recorded as ``entry_deleted``, which it is not). The kind CHECK is
widened.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("less_time", "entry_deleted", "entry_edited")
NEW = (*OLD, "out_of_scope")


def _kind_check(values: Sequence[str]) -> str:
    return "kind IN ({})".format(", ".join(f"'{value}'" for value in values))


def upgrade() -> None:
    with op.batch_alter_table("drift") as batch:
        batch.drop_constraint(op.f("ck_drift_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_drift_kind"), _kind_check(NEW))


def downgrade() -> None:
    op.execute("UPDATE drift SET kind = 'entry_deleted' WHERE kind = 'out_of_scope'")
    with op.batch_alter_table("drift") as batch:
        batch.drop_constraint(op.f("ck_drift_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_drift_kind"), _kind_check(OLD))
