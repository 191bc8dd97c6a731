"""deliveries: every webhook delivery, recorded once.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the values at this revision: a later change adds a revision, not an edit here.
_STATUSES = "'received', 'planning', 'planned', 'ignored', 'failed'"


def json_object_check(column: str) -> str:
    """SQL that is true when `column` holds a JSON object (each database spells it its own way)."""
    if op.get_context().dialect.name == "postgresql":
        return f"json_typeof({column}) = 'object'"
    return f"json_type({column}) = 'object'"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100), nullable=True),
        sa.Column("installation_id", sa.BigInteger, nullable=True),
        sa.Column("repository", sa.String(300), nullable=True),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("not_before", ts, nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", ts, nullable=True),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.CheckConstraint("id <> ''", name="ck_deliveries_id_not_empty"),
        sa.CheckConstraint("event <> ''", name="ck_deliveries_event_not_empty"),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_deliveries_status"),
        sa.CheckConstraint("attempts >= 0", name="ck_deliveries_attempts"),
        sa.CheckConstraint(json_object_check("payload"), name="ck_deliveries_payload_object"),
        sa.CheckConstraint(
            "status <> 'planning' OR (lease_expires_at IS NOT NULL AND worker_id IS NOT NULL)",
            name="ck_deliveries_planning_lease",
        ),
        sa.CheckConstraint(
            "status NOT IN ('ignored', 'failed') OR reason IS NOT NULL",
            name="ck_deliveries_reason",
        ),
    )
    op.create_index("ix_deliveries_status", "deliveries", ["status", "not_before"])
    op.create_index("ix_deliveries_received_at", "deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_received_at", table_name="deliveries")
    op.drop_index("ix_deliveries_status", table_name="deliveries")
    op.drop_table("deliveries")
