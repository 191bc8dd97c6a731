"""runs and run_triggers: the queue, with its guarantees as constraints.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STATUSES = "'queued', 'running', 'succeeded', 'failed', 'skipped', 'awaiting_approval'"
_TRIGGERS = "'push', 'label', 'install', 'comment', 'schedule', 'manual'"


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json_object_check(column: str) -> str:
    if op.get_context().dialect.name == "postgresql":
        return f"json_typeof({column}) = 'object'"
    return f"json_type({column}) = 'object'"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "runs",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(100), nullable=True),
        sa.Column("installation_id", sa.BigInteger, nullable=False),
        sa.Column("repository", sa.String(300), nullable=False),
        sa.Column("persona", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("issue_number", sa.Integer, nullable=True),
        sa.Column("concurrency_key", sa.String(600), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("triggers_coalesced", sa.Integer, nullable=False, server_default="0"),
        sa.Column("not_before", ts, nullable=False),
        sa.Column("lease_expires_at", ts, nullable=True),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.Column("started_at", ts, nullable=True),
        sa.Column("finished_at", ts, nullable=True),
        sa.Column("branch", sa.String(300), nullable=True),
        sa.Column("pr_number", sa.Integer, nullable=True),
        sa.Column("pr_url", sa.String(500), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name="fk_runs_delivery_id_deliveries"
        ),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_runs_status"),
        sa.CheckConstraint(f"trigger IN ({_TRIGGERS})", name="ck_runs_trigger"),
        sa.CheckConstraint("attempts >= 0", name="ck_runs_attempts"),
        sa.CheckConstraint(_json_object_check("spec"), name="ck_runs_spec_object"),
        sa.CheckConstraint("triggers_coalesced >= 0", name="ck_runs_triggers_coalesced"),
        sa.CheckConstraint("installation_id > 0", name="ck_runs_installation_id"),
        sa.CheckConstraint("issue_number IS NULL OR issue_number > 0", name="ck_runs_issue_number"),
        sa.CheckConstraint("pr_number IS NULL OR pr_number > 0", name="ck_runs_pr_number"),
        sa.CheckConstraint("concurrency_key <> ''", name="ck_runs_concurrency_key_not_empty"),
        sa.CheckConstraint("persona <> ''", name="ck_runs_persona_not_empty"),
        # A running run always has an owner, a start and a lease; nothing else holds a lease.
        sa.CheckConstraint(
            "(status = 'running' AND lease_expires_at IS NOT NULL AND worker_id IS NOT NULL"
            " AND started_at IS NOT NULL) OR (status <> 'running' AND lease_expires_at IS NULL)",
            name="ck_runs_lease",
        ),
        sa.CheckConstraint(
            "status NOT IN ('succeeded', 'failed', 'skipped') OR finished_at IS NOT NULL",
            name="ck_runs_finished_at",
        ),
        sa.CheckConstraint(
            "status <> 'failed' OR message IS NOT NULL", name="ck_runs_failed_message"
        ),
    )
    # The queue's two guarantees: a storm of triggers coalesces into one queued run per key, and
    # two workers never work on the same key (branch) at once.
    op.create_index(
        "uq_runs_queued_key",
        "runs",
        ["concurrency_key"],
        unique=True,
        sqlite_where=sa.text("status = 'queued'"),
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "uq_runs_running_key",
        "runs",
        ["concurrency_key"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index("ix_runs_status_not_before", "runs", ["status", "not_before"])
    op.create_index("ix_runs_key_id", "runs", ["concurrency_key", "id"])
    op.create_index("ix_runs_delivery_id", "runs", ["delivery_id"])

    op.create_table(
        "run_triggers",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("run_id", _id(), nullable=False),
        sa.Column("delivery_id", sa.String(100), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("recorded_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_triggers"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_triggers_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name="fk_run_triggers_delivery_id_deliveries"
        ),
        sa.CheckConstraint(f"trigger IN ({_TRIGGERS})", name="ck_run_triggers_trigger"),
    )
    op.create_index("ix_run_triggers_run_id", "run_triggers", ["run_id"])
    op.create_index("ix_run_triggers_delivery_id", "run_triggers", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_run_triggers_delivery_id", table_name="run_triggers")
    op.drop_index("ix_run_triggers_run_id", table_name="run_triggers")
    op.drop_table("run_triggers")
    op.drop_index("ix_runs_delivery_id", table_name="runs")
    op.drop_index("ix_runs_key_id", table_name="runs")
    op.drop_index("ix_runs_status_not_before", table_name="runs")
    op.drop_index("uq_runs_running_key", table_name="runs")
    op.drop_index("uq_runs_queued_key", table_name="runs")
    op.drop_table("runs")
