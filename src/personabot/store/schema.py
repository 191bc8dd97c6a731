"""The tables as SQLAlchemy Core objects, for queries.

The schema itself is created only by the Alembic migrations in `migrations/`; these definitions
mirror the head revision (a test compares the two) so queries are written against typed columns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

DELIVERY_STATUSES = ("received", "planning", "planned", "ignored", "failed")
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "skipped", "awaiting_approval")
TRIGGERS = ("push", "label", "install", "comment", "schedule", "manual")
TERMINAL_RUN_STATUSES = ("succeeded", "failed", "skipped")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases.

    SQLite has no timestamp type: values are stored as ISO-like text, which compares correctly only
    if every value is in the same zone. So everything is converted to UTC on the way in, and naive
    values read back from SQLite are marked as UTC on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only accepts aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _id_type() -> sa.types.TypeEngine[int]:
    # BIGSERIAL on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


metadata = sa.MetaData()

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("action", sa.String(100)),
    sa.Column("installation_id", sa.BigInteger),
    sa.Column("repository", sa.String(300)),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("payload", sa.JSON(none_as_null=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("not_before", UTCDateTime, nullable=False),
    sa.Column("worker_id", sa.String(200)),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(100), sa.ForeignKey("deliveries.id")),
    sa.Column("installation_id", sa.BigInteger, nullable=False),
    sa.Column("repository", sa.String(300), nullable=False),
    sa.Column("persona", sa.String(200), nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("issue_number", sa.Integer),
    sa.Column("concurrency_key", sa.String(600), nullable=False),
    sa.Column("spec", sa.JSON(none_as_null=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("triggers_coalesced", sa.Integer, nullable=False),
    sa.Column("not_before", UTCDateTime, nullable=False),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("worker_id", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("branch", sa.String(300)),
    sa.Column("pr_number", sa.Integer),
    sa.Column("pr_url", sa.String(500)),
    sa.Column("message", sa.Text),
    sa.Column("error", sa.Text),
)

run_triggers = sa.Table(
    "run_triggers",
    metadata,
    sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
    sa.Column("run_id", _id_type(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("delivery_id", sa.String(100), sa.ForeignKey("deliveries.id"), nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
)
