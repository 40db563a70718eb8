"""Webhooks (SPEC §12): runs started by a webhook, and the changes webhooks reported.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

A run's ``trigger`` may be ``webhook``: the trigger CHECK is widened. ``webhook_reports``
holds the changes webhooks reported (a GitHub comment deleted, a Jira worklog written or
deleted) until the source's next sync reads them (one row per source, kind and item).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("schedule", "on_demand", "cli")
NEW = (*OLD, "webhook")


def _trigger_check(values: Sequence[str]) -> str:
    column = op.get_context().dialect.identifier_preparer.quote("trigger")  # reserved
    return "{} IN ({})".format(column, ", ".join(f"'{value}'" for value in values))


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_trigger"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_trigger"), _trigger_check(NEW))
    op.create_table(
        "webhook_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("repo", sa.String(255), nullable=True),
        sa.Column("issue_id", sa.String(255), nullable=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("comments", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_webhook_reports_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_reports")),
        sa.UniqueConstraint(
            "source_id",
            "kind",
            "item_id",
            name=op.f("uq_webhook_reports_source_id_kind_item_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("webhook_reports")
    op.execute("UPDATE runs SET \"trigger\" = 'on_demand' WHERE \"trigger\" = 'webhook'")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_trigger"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_trigger"), _trigger_check(OLD))
