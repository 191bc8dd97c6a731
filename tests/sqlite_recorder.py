"""A small real SQLite delivery recorder: the stand-in for `personabot.store.Store` in web tests.

Duplicates are detected by the database (PRIMARY KEY on the delivery id), not by Python, so the
tests exercise the same "insert or learn it exists" behaviour the real store gives.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    event TEXT NOT NULL,
    action TEXT,
    installation_id INTEGER,
    repository TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('received', 'ignored')),
    reason TEXT,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class SQLiteRecorder:
    """Records deliveries in one SQLite file; safe to call from the web server's worker threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        # SQLite admits one writer at a time anyway. One connection behind a lock queues writers in
        # order; many connections would contend through SQLite's sleep-and-retry busy handler, which
        # shows up as multi-millisecond tail latency.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit is durable against a process crash; only an OS crash can lose
            # the last transactions, and GitHub's delivery log allows redelivery.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute(SCHEMA)

    def record_delivery(
        self,
        id: str,
        event: str,
        action: str | None,
        installation_id: int | None,
        repository: str | None,
        payload: dict[str, Any],
        status: str = "received",
        reason: str | None = None,
    ) -> bool:
        text = json.dumps(payload, separators=(",", ":"))
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO deliveries (id, event, action, installation_id, repository, payload,"
                " status, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (id, event, action, installation_id, repository, text, status, reason),
            )
            return cursor.rowcount == 1

    def rows(self) -> list[dict[str, Any]]:
        """Every stored delivery, oldest first, with the payload parsed back."""
        with self._lock:
            cursor = self._conn.execute(
                "SELECT id, event, action, installation_id, repository, payload, status, reason"
                " FROM deliveries ORDER BY rowid"
            )
            names = [d[0] for d in cursor.description]
            result = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in result:
            row["payload"] = json.loads(row["payload"])
        return result

    def close(self) -> None:
        with self._lock:
            self._conn.close()
