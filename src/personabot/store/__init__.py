"""The durable store: deliveries, runs and their queue guarantees (SQLite or PostgreSQL)."""

from personabot.store.db import normalize_url
from personabot.store.schema import DELIVERY_STATUSES, RUN_STATUSES, TRIGGERS
from personabot.store.store import (
    MAX_ATTEMPTS,
    ClaimedRun,
    Delivery,
    DeliveryInfo,
    RunRecord,
    Store,
    utcnow,
)

__all__ = [
    "DELIVERY_STATUSES",
    "MAX_ATTEMPTS",
    "RUN_STATUSES",
    "TRIGGERS",
    "ClaimedRun",
    "Delivery",
    "DeliveryInfo",
    "RunRecord",
    "Store",
    "normalize_url",
    "utcnow",
]
