"""The worker in one process: what each planner and executor result does to the rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from store_support import (  # noqa: F401
    FakeClock,
    add_delivery,
    clock,
    database_url,
    make_spec,
    store,
)

from personabot.errors import PermanentError, RateLimited, TransientError
from personabot.runner import RunOutcome
from personabot.store import ClaimedRun, Delivery, Store
from personabot.triggers import Ignored
from personabot.worker import RetryPolicy, Worker, default_pipeline

POLICY = RetryPolicy(max_attempts=5, base_seconds=10, cap_seconds=1000, jitter=0.5)


def _no_planner(delivery: Delivery) -> Ignored:
    raise AssertionError("no delivery should be planned here")


def _ok(run: ClaimedRun) -> RunOutcome:
    return RunOutcome("succeeded", "done")


def _worker(store: Store, planner=_no_planner, executor=_ok, **kw) -> Worker:  # noqa: ANN001
    kw.setdefault("retry", POLICY)
    return Worker(store, planner, executor, worker_id="w-test", **kw)


def _planned(store: Store) -> str:
    """A delivery already planned, for tests that enqueue runs by hand."""
    return add_delivery(store, status="planned")


# -- planning ------------------------------------------------------------------------------


def test_planned_specs_become_queued_runs(store: Store) -> None:
    delivery_id = add_delivery(store)
    seen: list[Delivery] = []

    def planner(delivery: Delivery) -> list:
        seen.append(delivery)
        return [make_spec("a"), make_spec("b")]

    worker = _worker(store, planner)
    assert worker.step() is True
    assert [d.id for d in seen] == [delivery_id] and seen[0].payload["ref"] == "refs/heads/main"
    assert store.get_delivery(delivery_id).status == "planned"
    assert sorted(r.concurrency_key for r in store.list_runs(status="queued")) == ["a", "b"]


@pytest.mark.parametrize(
    ("raised_or_returned", "status", "reason"),
    [
        (Ignored("no persona label"), "ignored", "no persona label"),
        ([], "ignored", "no persona to run"),
        (PermanentError(".github/personabot.yml:3: limits: unknown key"), "failed", ".github/personabot.yml:3: limits: unknown key"),
        (KeyError("repository"), "failed", "KeyError: 'repository'"),
    ],
)
def test_planner_results_that_end_a_delivery(
    store: Store, raised_or_returned: object, status: str, reason: str
) -> None:
    delivery_id = add_delivery(store)

    def planner(delivery: Delivery) -> object:
        if isinstance(raised_or_returned, Exception):
            raise raised_or_returned
        return raised_or_returned

    _worker(store, planner).step()
    delivery = store.get_delivery(delivery_id)
    assert (delivery.status, delivery.reason) == (status, reason)
    assert store.list_runs() == []


def test_a_transient_planning_error_retries_later_then_gives_up(
    store: Store, clock: FakeClock
) -> None:
    delivery_id = add_delivery(store)

    def planner(delivery: Delivery) -> list:
        raise TransientError("GitHub answered 502")

    worker = _worker(store, planner)
    for attempt in range(1, 5):
        assert worker.step() is True
        delivery = store.get_delivery(delivery_id)
        assert (delivery.status, delivery.attempts) == ("received", attempt)
        assert worker.step() is False  # not before its backoff
        clock.advance(POLICY.cap_seconds)
    worker.step()
    delivery = store.get_delivery(delivery_id)
    assert delivery.status == "failed"
    assert delivery.reason == "gave up after 5 attempts: GitHub answered 502"


def test_a_rate_limited_planner_waits_for_the_reset(store: Store, clock: FakeClock) -> None:
    delivery_id = add_delivery(store)
    reset = clock() + timedelta(minutes=20)

    def planner(delivery: Delivery) -> list:
        raise RateLimited("API rate limit exceeded", reset_at=reset)

    worker = _worker(store, planner)
    worker.step()
    assert store.get_delivery(delivery_id).attempts == 0
    clock.advance(20 * 60 - 1)
    assert store.claim_delivery_to_plan("other") is None
    clock.advance(1)
    assert store.claim_delivery_to_plan("other").id == delivery_id


# -- execution -----------------------------------------------------------------------------


def test_an_outcome_is_recorded(store: Store) -> None:
    run_id, _ = store.enqueue(_planned(store), make_spec())
    seen: list[ClaimedRun] = []

    def executor(run: ClaimedRun) -> RunOutcome:
        seen.append(run)
        assert store.get_run(run.id).status == "running"
        return RunOutcome("succeeded", "opened PR", "personabot/builder", 12, "https://gh/pull/12")

    assert _worker(store, executor=executor).step() is True
    assert seen[0].spec == make_spec() and seen[0].worker_id == "w-test"
    run = store.get_run(run_id)
    assert (run.status, run.message, run.branch, run.pr_number, run.pr_url) == (
        "succeeded",
        "opened PR",
        "personabot/builder",
        12,
        "https://gh/pull/12",
    )


def test_transient_errors_back_off_exponentially_then_fail(store: Store, clock: FakeClock) -> None:
    run_id, _ = store.enqueue(_planned(store), make_spec())
    calls: list[int] = []

    def executor(run: ClaimedRun) -> RunOutcome:
        calls.append(run.attempts)
        raise TransientError("connection reset")

    worker = _worker(store, executor=executor)
    for attempt in range(1, 5):
        before = clock()
        worker.step()
        run = store.get_run(run_id)
        assert (run.status, run.attempts, run.error) == ("queued", attempt, "connection reset")
        nominal = POLICY.base_seconds * 2 ** (attempt - 1)
        wait = (run.not_before - before).total_seconds()
        assert nominal * (1 - POLICY.jitter) <= wait <= nominal
        assert worker.step() is False  # nothing due yet
        clock.advance(wait)
    worker.step()
    run = store.get_run(run_id)
    assert (run.status, run.attempts) == ("failed", 5)
    assert run.message == "gave up after 5 attempts: connection reset"
    assert calls == [0, 1, 2, 3, 4]


def test_retry_after_from_github_is_honoured(store: Store, clock: FakeClock) -> None:
    run_id, _ = store.enqueue(_planned(store), make_spec())

    def executor(run: ClaimedRun) -> RunOutcome:
        raise TransientError("secondary rate limit", retry_after=300)

    _worker(store, executor=executor).step()
    assert store.get_run(run_id).not_before - clock() >= timedelta(seconds=300)


def test_rate_limit_defers_to_the_reset_without_burning_an_attempt(
    store: Store, clock: FakeClock
) -> None:
    run_id, _ = store.enqueue(_planned(store), make_spec())
    reset = clock() + timedelta(minutes=30)

    def executor(run: ClaimedRun) -> RunOutcome:
        raise RateLimited("rate limit", reset_at=reset)

    _worker(store, executor=executor).step()
    run = store.get_run(run_id)
    assert (run.status, run.attempts, run.not_before) == ("queued", 0, reset)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PermanentError("persona 'nope' does not exist"), "persona 'nope' does not exist"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    ],
)
def test_permanent_and_unexpected_errors_fail_the_run(
    store: Store, error: Exception, message: str
) -> None:
    run_id, _ = store.enqueue(_planned(store), make_spec())

    def executor(run: ClaimedRun) -> RunOutcome:
        raise error

    _worker(store, executor=executor).step()
    run = store.get_run(run_id)
    assert (run.status, run.message, run.attempts) == ("failed", message, 0)


def test_default_pipeline_names_what_is_missing(pem: str) -> None:
    from personabot.settings import Settings

    with pytest.raises(PermanentError, match="GitHub App credentials missing"):
        default_pipeline(Settings(PERSONABOT_AGENT="goose"))
    with pytest.raises(PermanentError, match="no agent configured"):
        default_pipeline(Settings(APP_ID=1, PRIVATE_KEY=pem))
    planner, executor = default_pipeline(Settings(APP_ID=1, PRIVATE_KEY=pem, PERSONABOT_AGENT="goose"))
    assert callable(planner) and callable(executor)


# -- threads, leases and shutdown (real clock) ---------------------------------------------


@pytest.fixture
def live_store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


def _wait_for(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_the_heartbeat_keeps_a_long_run_leased(live_store: Store) -> None:
    run_id, _ = live_store.enqueue(_planned(live_store), make_spec())
    recovered: list[int] = []

    def executor(run: ClaimedRun) -> RunOutcome:
        # Outlive the 1 s lease twice; anyone looking for expired leases must find none.
        for _ in range(5):
            time.sleep(0.5)
            recovered.extend(live_store.recover_expired())
        return RunOutcome("succeeded", "long")

    worker = _worker(live_store, executor=executor, lease_seconds=1, poll_interval=0.05)
    worker.start()
    try:
        _wait_for(lambda: live_store.get_run(run_id).status == "succeeded")
    finally:
        worker.stop(grace_seconds=1)
    assert recovered == []
    assert live_store.get_run(run_id).attempts == 0


def test_stop_waits_for_a_run_that_finishes_within_the_grace(live_store: Store) -> None:
    run_id, _ = live_store.enqueue(_planned(live_store), make_spec())
    started = threading.Event()

    def executor(run: ClaimedRun) -> RunOutcome:
        started.set()
        time.sleep(0.5)
        return RunOutcome("succeeded", "finished during shutdown")

    worker = _worker(live_store, executor=executor, poll_interval=0.05)
    worker.start()
    assert started.wait(10)
    assert worker.stop(grace_seconds=10) == []
    assert live_store.get_run(run_id).status == "succeeded"


def test_stop_releases_a_run_that_outlives_the_grace(live_store: Store) -> None:
    run_id, _ = live_store.enqueue(_planned(live_store), make_spec())
    started, proceed, returned = threading.Event(), threading.Event(), threading.Event()

    def executor(run: ClaimedRun) -> RunOutcome:
        started.set()
        proceed.wait(10)
        returned.set()
        return RunOutcome("succeeded", "too late")

    worker = _worker(live_store, executor=executor, poll_interval=0.05)
    worker.start()
    assert started.wait(10)
    assert worker.stop(grace_seconds=0.2) == [run_id]
    run = live_store.get_run(run_id)
    assert (run.status, run.attempts, run.worker_id) == ("queued", 0, None)
    # The executor finishing afterwards must not overwrite the released run.
    proceed.set()
    assert returned.wait(10)
    time.sleep(0.1)
    assert live_store.get_run(run_id).status == "queued"
    # And a stopped worker claims nothing more.
    assert worker.step() is False


def test_concurrent_slots_never_overlap_one_key(live_store: Store) -> None:
    intervals: dict[str, list[tuple[float, float]]] = {}
    lock = threading.Lock()
    active = {"now": 0, "max": 0}

    def executor(run: ClaimedRun) -> RunOutcome:
        start = time.monotonic()
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.05)
        with lock:
            active["now"] -= 1
            intervals.setdefault(run.concurrency_key, []).append((start, time.monotonic()))
        return RunOutcome("succeeded", "ok")

    def planner(delivery: Delivery) -> list:
        return [make_spec(delivery.payload["key"])]

    worker = _worker(live_store, planner, executor, concurrency=3, poll_interval=0.02)
    worker.start()
    try:
        for n in range(12):
            live_store.record_delivery(f"d{n}", "push", None, 42, "octo/repo", {"key": f"k{n % 2}"})
            time.sleep(0.02)
        _wait_for(lambda: live_store.queue_depth()["queued"] + live_store.queue_depth()["running"] == 0
                  and all(d.status == "planned" for d in live_store.list_deliveries()))
    finally:
        worker.stop(grace_seconds=2)
    for spans in intervals.values():
        spans.sort()
        assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:], strict=False))
    assert active["max"] <= 2  # two keys: never more than one run per key at once


def test_an_issue_opened_with_a_label_runs_once(store: Store, clock: FakeClock) -> None:
    # GitHub sends issues.opened (carrying the label) and issues.labeled for the same issue at once.
    opened, labeled = add_delivery(store, event="issues"), add_delivery(store, event="issues")
    spec = make_spec("octo/repo#7:builder", trigger="label", issue_number=7)
    executed: list[int] = []

    def execute(run: ClaimedRun) -> RunOutcome:
        executed.append(run.id)
        return RunOutcome("succeeded", "done")

    worker = _worker(store, lambda delivery: [spec], execute, issue_settle_seconds=5)
    assert worker.step() and worker.step()  # both deliveries planned
    [run] = store.list_runs(status="queued")
    assert run.triggers_coalesced == 1 and sorted(store.run_trigger_deliveries(run.id)) == sorted([opened, labeled])
    assert worker.step() is False and executed == []  # still settling
    clock.advance(5)
    assert worker.step() is True and executed == [run.id]
    assert store.get_run(run.id).status == "succeeded"
