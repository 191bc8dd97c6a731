"""Fixtures and helpers shared by the store and worker tests.

Every test gets its own database: a file in tmp_path for SQLite, and a fresh schema with a unique
name (selected through the connection's search_path) for PostgreSQL, dropped afterwards.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from personabot.store import Store
from personabot.triggers import RunSpec

PG_ENV = "PERSONABOT_TEST_DATABASE_URL"


def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _with_search_path(url: str, schema: str) -> str:
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


def _admin_conninfo(url: str) -> str:
    # psycopg wants a plain libpq URL, whatever driver suffix the test URL carries.
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def new_database_url(kind: str, tmp_path: Path) -> tuple[str, object]:
    """(url, cleanup) for a fresh empty database of `kind` ("sqlite" or "postgresql")."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'personabot.db'}", lambda: None
    base = pg_base_url()
    if base is None:
        pytest.skip(f"{PG_ENV} is not set")
    schema = f"pbt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def cleanup() -> None:
        with psycopg.connect(_admin_conninfo(base), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return _with_search_path(base, schema), cleanup


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url, cleanup = new_database_url(request.param, tmp_path)
    try:
        yield url
    finally:
        cleanup()  # type: ignore[operator]


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url, cleanup = new_database_url(request.param, tmp_path)
    try:
        yield url
    finally:
        cleanup()  # type: ignore[operator]


class FakeClock:
    """A clock the test moves by hand, so lease expiry and backoff need no sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(database_url: str, clock: FakeClock) -> Iterator[Store]:
    s = Store(database_url, clock=clock)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


def make_spec(
    key: str = "octo/repo:builder",
    *,
    trigger: str = "push",
    persona: str = "builder",
    issue_number: int | None = None,
) -> RunSpec:
    return RunSpec(
        repository="octo/repo",
        default_branch="main",
        installation_id=42,
        persona=persona,
        trigger=trigger,  # type: ignore[arg-type]
        event="push" if trigger == "push" else "issues",
        issue_number=issue_number,
        concurrency_key=key,
    )


def add_delivery(
    store: Store, delivery_id: str | None = None, event: str = "push", status: str = "received"
) -> str:
    delivery_id = delivery_id or uuid.uuid4().hex
    assert store.record_delivery(
        delivery_id, event, None, 42, "octo/repo", {"ref": "refs/heads/main"}, status=status
    )
    return delivery_id
