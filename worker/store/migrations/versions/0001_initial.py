"""The initial schema: sources, entries, drafts and lines, the outbox, runs, errors, drift.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Hand-reviewed. Frozen: it does not import the models, so later model changes cannot alter
what this revision creates. Constraint and index names follow the models' naming convention
(``pk_<table>``, ``fk_<table>_<column>_<referred table>``, ``uq_<table>_<columns>``,
``ix_<table>_<columns>``, ``ck_<table>_<name>``). Enumerations are VARCHAR(32) with a CHECK,
exactly what ``sa.Enum(native_enum=False, create_constraint=True, length=32)`` produces.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _enum_column(
    table: str, name: str, values: Sequence[str]
) -> tuple[sa.Column[str], sa.CheckConstraint]:
    allowed = ", ".join(f"'{value}'" for value in values)
    column = op.get_context().dialect.identifier_preparer.quote(name)  # "trigger" is reserved
    return (
        sa.Column(name, sa.String(length=32), nullable=False),
        sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{name}")),
    )


def upgrade() -> None:
    kind, kind_check = _enum_column("sources", "kind", ("jira", "github"))
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        kind,
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.Column("last_success_at", _tz(), nullable=True),
        kind_check,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_sources_name")),
    )

    op.create_table(
        "cursors",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_cursors_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("source_id", "stream", name=op.f("pk_cursors")),
    )

    op.create_table(
        "source_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("issue_type", sa.String(length=64), nullable=True),
        sa.Column("source_updated_at", _tz(), nullable=True),
        sa.Column("first_seen_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_source_issues_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_issues")),
        sa.UniqueConstraint(
            "source_id", "external_id", name=op.f("uq_source_issues_source_id_external_id")
        ),
    )
    op.create_index(op.f("ix_source_issues_source_id_key"), "source_issues", ["source_id", "key"])

    state, state_check = _enum_column("entries", "state", ("active", "deleted", "bad", "hidden"))
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("external_issue_id", sa.String(length=255), nullable=True),
        sa.Column("author", sa.String(length=255), nullable=True),
        sa.Column("started_at", _tz(), nullable=True),
        sa.Column("seconds", sa.BigInteger(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        state,
        sa.Column("bad_reason", sa.Text(), nullable=True),
        sa.Column("source_updated_at", _tz(), nullable=True),
        sa.Column("first_seen_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        state_check,
        sa.CheckConstraint(
            "state <> 'bad' OR bad_reason IS NOT NULL", name=op.f("ck_entries_bad_has_reason")
        ),
        sa.CheckConstraint(
            "state = 'bad' OR (external_issue_id IS NOT NULL AND author IS NOT NULL"
            " AND started_at IS NOT NULL AND seconds IS NOT NULL)",
            name=op.f("ck_entries_usable_is_complete"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_entries_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint("key", name=op.f("uq_entries_key")),
    )
    op.create_index(op.f("ix_entries_source_id_state"), "entries", ["source_id", "state"])
    op.create_index(
        op.f("ix_entries_source_id_external_issue_id"),
        "entries",
        ["source_id", "external_issue_id"],
    )

    status, status_check = _enum_column("drafts", "status", ("DRAFT", "FINALIZED", "VOID"))
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("invoice_number", sa.String(length=255), nullable=False),
        sa.Column("kukkingu_id", sa.String(length=64), nullable=True),
        status,
        sa.Column("exchange_rate", sa.Numeric(precision=18, scale=8), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        status_check,
        sa.CheckConstraint("seq >= 1", name=op.f("ck_drafts_seq_positive")),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_drafts_amount_not_negative")),
        sa.CheckConstraint("exchange_rate >= 0", name=op.f("ck_drafts_rate_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
        sa.UniqueConstraint(
            "contract_id",
            "currency",
            "period",
            "seq",
            name=op.f("uq_drafts_contract_id_currency_period_seq"),
        ),
        sa.UniqueConstraint("invoice_number", name=op.f("uq_drafts_invoice_number")),
        sa.UniqueConstraint("kukkingu_id", name=op.f("uq_drafts_kukkingu_id")),
    )
    op.create_index(op.f("ix_drafts_status"), "drafts", ["status"])

    state, state_check = _enum_column("lines", "state", ("pending", "synced", "zeroed", "frozen"))
    op.create_table(
        "lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("reference_type", sa.String(length=32), nullable=False),
        sa.Column("reference_id", sa.String(length=255), nullable=False),
        sa.Column("kukkingu_id", sa.String(length=64), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=True),
        state,
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        state_check,
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_lines_quantity_not_negative")),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_lines_amount_not_negative")),
        sa.CheckConstraint("position >= 0", name=op.f("ck_lines_position_not_negative")),
        sa.ForeignKeyConstraint(["draft_id"], ["drafts.id"], name=op.f("fk_lines_draft_id_drafts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lines")),
        # Invariant 1: one billable per (referenceType, referenceId) on an invoice.
        sa.UniqueConstraint(
            "draft_id",
            "reference_type",
            "reference_id",
            name=op.f("uq_lines_draft_id_reference_type_reference_id"),
        ),
        sa.UniqueConstraint("draft_id", "position", name=op.f("uq_lines_draft_id_position")),
        sa.UniqueConstraint("kukkingu_id", name=op.f("uq_lines_kukkingu_id")),
    )
    op.create_index(
        op.f("ix_lines_contract_id_currency_period_reference_type_reference_id"),
        "lines",
        ["contract_id", "currency", "period", "reference_type", "reference_id"],
    )
    op.create_index(op.f("ix_lines_state"), "lines", ["state"])

    op.create_table(
        "line_entries",
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_line_entries_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.id"], name=op.f("fk_line_entries_line_id_lines")
        ),
        sa.PrimaryKeyConstraint("line_id", "entry_id", name=op.f("pk_line_entries")),
    )
    op.create_index(op.f("ix_line_entries_entry_id"), "line_entries", ["entry_id"])

    trigger, trigger_check = _enum_column("runs", "trigger", ("schedule", "on_demand", "cli"))
    status, status_check = _enum_column("runs", "status", ("running", "succeeded", "failed"))
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        trigger,
        status,
        sa.Column("started_at", _tz(), nullable=False),
        sa.Column("finished_at", _tz(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("requests", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        trigger_check,
        status_check,
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_runs_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_source_id_started_at"), "runs", ["source_id", "started_at"])
    op.create_index(op.f("ix_runs_status"), "runs", ["status"])
    op.create_index(op.f("ix_runs_task_id"), "runs", ["task_id"])

    kind, kind_check = _enum_column(
        "intents",
        "kind",
        ("create_invoice", "create_billables", "update_billable", "update_invoice"),
    )
    status, status_check = _enum_column(
        "intents", "status", ("pending", "done", "failed", "abandoned")
    )
    op.create_table(
        "intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        kind,
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        status,
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("completed_at", _tz(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        kind_check,
        status_check,
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_intents_attempts_not_negative")),
        sa.ForeignKeyConstraint(
            ["draft_id"], ["drafts.id"], name=op.f("fk_intents_draft_id_drafts")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_intents_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intents")),
    )
    op.create_index(op.f("ix_intents_status"), "intents", ["status"])
    op.create_index(op.f("ix_intents_draft_id"), "intents", ["draft_id"])
    op.create_index(op.f("ix_intents_run_id"), "intents", ["run_id"])

    kind, kind_check = _enum_column(
        "errors", "kind", ("bad_entry", "unmapped", "configuration", "api")
    )
    op.create_table(
        "errors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("source_id", sa.Integer(), nullable=True),
        kind,
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("resolved_at", _tz(), nullable=True),
        kind_check,
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_errors_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_errors_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_errors")),
    )
    op.create_index(op.f("ix_errors_kind"), "errors", ["kind"])
    op.create_index(op.f("ix_errors_run_id"), "errors", ["run_id"])
    op.create_index(op.f("ix_errors_source_id"), "errors", ["source_id"])
    op.create_index(op.f("ix_errors_subject"), "errors", ["subject"])

    kind, kind_check = _enum_column("drift", "kind", ("less_time", "entry_deleted", "entry_edited"))
    op.create_table(
        "drift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        kind,
        sa.Column("seconds_delta", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("detected_at", _tz(), nullable=False),
        sa.Column("acknowledged_at", _tz(), nullable=True),
        kind_check,
        sa.ForeignKeyConstraint(["line_id"], ["lines.id"], name=op.f("fk_drift_line_id_lines")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_drift_entry_id_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift")),
    )
    op.create_index(op.f("ix_drift_line_id"), "drift", ["line_id"])
    op.create_index(op.f("ix_drift_entry_id"), "drift", ["entry_id"])


def downgrade() -> None:
    # Dependents first; dropping a table drops its indexes and constraints with it.
    for table in (
        "drift",
        "errors",
        "intents",
        "runs",
        "line_entries",
        "lines",
        "drafts",
        "entries",
        "source_issues",
        "cursors",
        "sources",
    ):
        op.drop_table(table)
