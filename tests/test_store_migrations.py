"""Migrations: the schema exists only through Alembic, every step goes down and up again."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from store_support import FakeClock, add_delivery, database_url, make_spec  # noqa: F401

from personabot.errors import PermanentError
from personabot.store import Store, normalize_url
from personabot.store.db import all_revisions
from personabot.store.schema import metadata


def _tables(store: Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_creates_the_schema_and_is_idempotent(database_url: str) -> None:
    with Store(database_url) as store:
        assert store.current_revision() is None
        store.upgrade()
        store.upgrade()
        assert store.current_revision() == store.head_revision()
        assert _tables(store) == {"deliveries", "runs", "run_triggers"}
        assert store.ping()


def test_every_revision_downgrades_and_upgrades_again_with_rows(database_url: str) -> None:
    revisions = all_revisions()
    assert revisions[0] == "0001" and revisions[-1] == Store.head_revision()
    with Store(database_url, clock=FakeClock()) as store:
        store.upgrade("0001")
        assert _tables(store) == {"deliveries"}
        store.record_delivery("d-1", "push", None, 42, "octo/repo", {"n": 1})

        store.upgrade()
        run_id, _ = store.enqueue("d-1", make_spec())
        assert store.get_run(run_id) is not None

        # Down one step: the queue goes, the recorded delivery stays.
        store.downgrade("0001")
        assert store.current_revision() == "0001"
        assert _tables(store) == {"deliveries"}
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id FROM deliveries")).scalars().all() == ["d-1"]

        # Up again: old rows are usable, new ones can be added.
        store.upgrade()
        assert store.get_delivery("d-1") is not None
        new_id, coalesced = store.enqueue("d-1", make_spec())
        assert not coalesced and store.get_run(new_id).status == "queued"

        # All the way down and up again.
        store.downgrade("base")
        assert store.current_revision() is None
        assert _tables(store) == set()
        store.upgrade()
        assert store.list_deliveries() == []
        assert store.current_revision() == store.head_revision()


def test_tables_used_by_the_code_match_the_migrations(database_url: str) -> None:
    with Store(database_url) as store:
        store.upgrade()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Type differences across dialects aside, a column or table the migrations lack shows here.
    relevant = [d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")]
    assert relevant == []


@pytest.mark.timeout(60)
def test_concurrent_upgrades_from_empty_all_succeed(database_url: str) -> None:
    stores = [Store(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def start(store: Store) -> None:
        try:
            barrier.wait()
            store.upgrade()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert {s.current_revision() for s in stores} == {Store.head_revision()}
    finally:
        for s in stores:
            s.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:  # noqa: ANN001
    with Store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize(
    "url",
    ["postgresql://u@db.example/pb", "postgres://u@db.example/pb", "postgresql+psycopg://u@h/pb"],
)
def test_postgresql_urls_use_psycopg3(url: str) -> None:
    normalized = normalize_url(url)
    assert normalized.drivername == "postgresql+psycopg"
    assert normalized.database == "pb"


@pytest.mark.parametrize(
    ("url", "needle"),
    [("mysql://u@h/db", "unsupported database 'mysql'"), ("sqlite://", "in-memory"), ("::", "cannot parse")],
)
def test_bad_database_urls_are_refused_with_the_setting_named(url: str, needle: str) -> None:
    with pytest.raises(PermanentError) as info:
        normalize_url(url)
    assert "DATABASE_URL" in str(info.value) and needle in str(info.value)


def test_ping_is_false_when_the_database_is_unreachable() -> None:
    with Store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2") as store:
        assert store.ping() is False


def test_each_step_goes_down_and_up_with_rows_in_place(database_url: str) -> None:
    # Generic over revisions, so a future migration is covered the day it is added.
    revisions = all_revisions()
    with Store(database_url, clock=FakeClock()) as store:
        store.upgrade()
        add_delivery(store, "kept")
        store.enqueue("kept", make_spec())
        for lower in reversed(["base", *revisions[:-1]]):
            store.downgrade(lower)
            assert store.current_revision() == (None if lower == "base" else lower)
        for rev in revisions:
            store.upgrade(rev)
            assert store.current_revision() == rev
        assert store.current_revision() == store.head_revision()
