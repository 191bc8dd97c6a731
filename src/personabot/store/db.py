"""Engines and migrations: the two databases' differences live here and nowhere else.

SQLite (one process, the embedded default) runs in WAL mode with foreign keys on, and every
transaction starts with BEGIN IMMEDIATE so that a read-then-write (claiming a run) can never be
interleaved with another writer. PostgreSQL is reached through psycopg 3 whatever the URL says.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from personabot.errors import PermanentError

SCRIPT_LOCATION = "personabot.store:migrations"
# Any fixed 64-bit number: every personabot process on one database serialises upgrades on it.
_UPGRADE_LOCK_KEY = 0x70657273_6F6E6162  # "personab"
SQLITE_BUSY_TIMEOUT = 30.0


def normalize_url(database_url: str) -> URL:
    """Parse DATABASE_URL; `postgresql://` and Heroku's `postgres://` mean psycopg 3."""
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise PermanentError(f"DATABASE_URL: cannot parse {database_url!r}: {exc}") from None
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise PermanentError(
                "DATABASE_URL: an in-memory SQLite database cannot be shared by the web server and "
                "the workers; use a file, e.g. sqlite:///personabot.db"
            )
        return url
    raise PermanentError(
        f"DATABASE_URL: unsupported database {url.drivername!r}; use sqlite:///FILE or "
        "postgresql://USER@HOST/DB"
    )


def make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE is ours.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration built in code: nothing to find on disk at runtime."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


def all_revisions() -> list[str]:
    """Revisions from the first to the head, in order."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the lock that serialises concurrent upgrades.

    PostgreSQL: a transaction-scoped advisory lock, so a second process waits, then finds the
    schema at head and does nothing. SQLite: BEGIN IMMEDIATE (from the engine) takes the write
    lock before the current revision is read, which has the same effect.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_UPGRADE_LOCK_KEY)))
        yield conn


def _with_sqlite_retry(engine: Engine, action: Any) -> None:
    # busy_timeout covers most waits; a long first migration on a slow disk may outlast it.
    for attempt in range(5):
        try:
            action()
            return
        except OperationalError as exc:
            if engine.dialect.name != "sqlite" or "locked" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def upgrade(engine: Engine, revision: str = "head") -> None:
    def run() -> None:
        with _migration_transaction(engine) as conn:
            command.upgrade(alembic_config(conn), revision)

    _with_sqlite_retry(engine, run)


def downgrade(engine: Engine, revision: str) -> None:
    def run() -> None:
        with _migration_transaction(engine) as conn:
            command.downgrade(alembic_config(conn), revision)

    _with_sqlite_retry(engine, run)
