"""Runs can be ``retrying`` (with the next attempt's time), ``interrupted`` or ``partial``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

A run that failed and waits for its retry is ``retrying`` until the retry starts, with
``retry_at``; a run whose process died is marked ``interrupted`` by the workers' sweep (or
by the redelivery of its own message); a run that synced all but an unreachable part of its
source (a repository the token lost) is ``partial``. The status CHECK is widened for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("running", "succeeded", "failed")
NEW = (*OLD, "retrying", "interrupted", "partial")


def _status_check(values: Sequence[str]) -> str:
    return "status IN ({})".format(", ".join(f"'{value}'" for value in values))


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint(op.f("ck_runs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_status"), _status_check(NEW))


def downgrade() -> None:
    op.execute(
        "UPDATE runs SET status = 'failed' WHERE status IN ('retrying', 'interrupted', 'partial')"
    )
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_status"), _status_check(OLD))
        batch.drop_column("retry_at")
