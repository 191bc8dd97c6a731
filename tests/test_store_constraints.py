"""Every invariant is a constraint: the database itself refuses a bad row, whoever writes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from store_support import FakeClock, clock, database_url, store  # noqa: F401

from personabot.store import Store
from personabot.store.schema import deliveries, run_triggers, runs

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _delivery(**overrides: Any) -> dict[str, Any]:
    row = dict(
        id="d-ok",
        event="push",
        action=None,
        installation_id=42,
        repository="octo/repo",
        received_at=NOW,
        payload={"ref": "refs/heads/main"},
        status="received",
        reason=None,
        attempts=0,
        not_before=NOW,
        updated_at=NOW,
    )
    row.update(overrides)
    return row


def _run(**overrides: Any) -> dict[str, Any]:
    row = dict(
        delivery_id="d-base",
        installation_id=42,
        repository="octo/repo",
        persona="builder",
        trigger="push",
        event="push",
        issue_number=None,
        concurrency_key="octo/repo:builder",
        spec={"persona": "builder"},
        status="queued",
        attempts=0,
        triggers_coalesced=0,
        not_before=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    row.update(overrides)
    return row


RUNNING = dict(status="running", lease_expires_at=NOW, worker_id="w", started_at=NOW)


def _insert(store: Store, table: sa.Table, row: dict[str, Any]) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.insert(table).values(**row))


@pytest.fixture
def seeded(store: Store) -> Store:
    _insert(store, deliveries, _delivery(id="d-base"))
    return store


def test_valid_rows_are_accepted(seeded: Store) -> None:
    # The control for every refusal below: the same rows without the one bad field go in.
    _insert(seeded, deliveries, _delivery())
    _insert(seeded, runs, _run())
    _insert(seeded, runs, _run(**RUNNING))
    _insert(seeded, runs, _run(status="succeeded", finished_at=NOW, concurrency_key="k2"))
    assert seeded.queue_depth()["queued"] == 1
    assert seeded.queue_depth()["running"] == 1


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(dict(status="done"), id="status-not-in-enum"),
        pytest.param(dict(attempts=-1), id="negative-attempts"),
        pytest.param(dict(id="d-base"), id="duplicate-delivery-id"),
        pytest.param(dict(id=""), id="empty-id"),
        pytest.param(dict(event=None), id="event-null"),
        pytest.param(dict(payload=None), id="payload-null"),
        pytest.param(dict(payload=[1, 2]), id="payload-not-an-object"),
        pytest.param(dict(received_at=None), id="received-at-null"),
        pytest.param(dict(status="planning"), id="planning-without-lease"),
        pytest.param(dict(status="ignored", reason=None), id="ignored-without-reason"),
        pytest.param(dict(status="failed", reason=None), id="failed-without-reason"),
    ],
)
def test_bad_delivery_rows_are_refused(seeded: Store, overrides: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError):
        _insert(seeded, deliveries, _delivery(**overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(dict(status="paused"), id="status-not-in-enum"),
        pytest.param(dict(trigger="cron"), id="trigger-not-in-enum"),
        pytest.param(dict(attempts=-1), id="negative-attempts"),
        pytest.param(dict(triggers_coalesced=-1), id="negative-coalesced"),
        pytest.param(dict(delivery_id="no-such-delivery"), id="unknown-delivery-fk"),
        pytest.param(dict(concurrency_key=None), id="key-null"),
        pytest.param(dict(concurrency_key=""), id="key-empty"),
        pytest.param(dict(installation_id=None), id="installation-null"),
        pytest.param(dict(spec=None), id="spec-null"),
        pytest.param(dict(spec="builder"), id="spec-not-an-object"),
        pytest.param(dict(issue_number=0), id="issue-number-zero"),
        pytest.param(dict(pr_number=-3), id="pr-number-negative"),
        pytest.param(dict(status="running"), id="running-without-lease"),
        pytest.param(dict(lease_expires_at=NOW), id="queued-with-lease"),
        pytest.param(dict(status="succeeded"), id="finished-without-finished-at"),
        pytest.param(dict(status="failed", finished_at=NOW), id="failed-without-message"),
    ],
)
def test_bad_run_rows_are_refused(seeded: Store, overrides: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError):
        _insert(seeded, runs, _run(**overrides))


def test_one_queued_run_per_key(seeded: Store) -> None:
    _insert(seeded, runs, _run())
    with pytest.raises(IntegrityError):
        _insert(seeded, runs, _run())
    _insert(seeded, runs, _run(concurrency_key="other"))  # another key is fine


def test_one_running_run_per_key(seeded: Store) -> None:
    _insert(seeded, runs, _run(**RUNNING))
    with pytest.raises(IntegrityError):
        _insert(seeded, runs, _run(**{**RUNNING, "worker_id": "w2"}))
    # Queued next to running is allowed: that is how a new trigger waits for the current run.
    _insert(seeded, runs, _run())


def test_finished_runs_of_a_key_are_unlimited(seeded: Store) -> None:
    for _ in range(3):
        _insert(seeded, runs, _run(status="failed", finished_at=NOW, message="boom"))
    assert seeded.queue_depth()["failed"] == 3


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(dict(run_id=999), id="unknown-run-fk"),
        pytest.param(dict(delivery_id="nope"), id="unknown-delivery-fk"),
        pytest.param(dict(trigger="cron"), id="trigger-not-in-enum"),
    ],
)
def test_bad_run_trigger_rows_are_refused(seeded: Store, overrides: dict[str, Any]) -> None:
    _insert(seeded, runs, _run())
    run_id = seeded.list_runs()[0].id
    row = dict(run_id=run_id, delivery_id="d-base", trigger="push", recorded_at=NOW)
    _insert(seeded, run_triggers, row)  # control
    with pytest.raises(IntegrityError):
        _insert(seeded, run_triggers, {**row, **overrides})


def test_a_delivery_with_runs_cannot_be_deleted(seeded: Store) -> None:
    _insert(seeded, runs, _run())
    with pytest.raises(IntegrityError), seeded.engine.begin() as conn:
        conn.execute(sa.delete(deliveries).where(deliveries.c.id == "d-base"))


def test_store_api_refuses_unknown_statuses_before_the_database(store: Store) -> None:
    with pytest.raises(ValueError, match="'bogus'"):
        store.record_delivery("x", "push", None, 1, "o/r", {}, status="bogus")
    with pytest.raises(ValueError, match="'queued'"):
        store.finish(1, "queued", "no")
    with pytest.raises(ValueError, match="'nope'"):
        store.list_runs(status="nope")


def test_naive_datetimes_are_refused(store: Store, clock: FakeClock) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.defer_delivery("x", "e", datetime(2026, 1, 1) + timedelta(0))
