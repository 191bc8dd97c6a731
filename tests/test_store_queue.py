"""Queue behaviour through the Store API: recording, coalescing, claiming, leases, retries."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
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

from personabot.store import Store
from personabot.triggers import IssueInfo, RunSpec


def test_a_redelivery_is_refused_and_the_first_copy_kept(store: Store) -> None:
    assert store.record_delivery("abc", "issues", "labeled", 42, "octo/repo", {"n": 1})
    assert not store.record_delivery("abc", "issues", "labeled", 42, "octo/repo", {"n": 2})
    delivery = store.get_delivery("abc")
    assert delivery is not None and delivery.payload == {"n": 1}
    assert [d.id for d in store.list_deliveries()] == ["abc"]


def test_a_delivery_ignored_at_intake_keeps_its_reason(store: Store) -> None:
    store.record_delivery("x", "star", "created", 1, "o/r", {}, status="ignored", reason="star")
    assert store.list_deliveries(status="ignored")[0].reason == "star"
    assert store.claim_delivery_to_plan("w") is None


def test_concurrent_redeliveries_store_one_row(store: Store) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda n: store.record_delivery("same", "push", None, 1, "o/r", {"n": n}), range(40)
            )
        )
    assert results.count(True) == 1
    assert len(store.list_deliveries()) == 1


def test_a_storm_of_100_triggers_coalesces_into_one_queued_run(store: Store) -> None:
    deliveries = [add_delivery(store, f"d{n:03}") for n in range(100)]
    # Several threads at once: the partial unique index, not luck, must keep it to one run.
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda d: store.enqueue(d, make_spec()), deliveries))
    run_ids = {run_id for run_id, _ in results}
    assert len(run_ids) == 1
    assert [coalesced for _, coalesced in results].count(False) == 1
    (run_id,) = run_ids
    assert sorted(store.run_trigger_deliveries(run_id)) == deliveries
    run = store.get_run(run_id)
    assert run is not None and run.status == "queued" and run.triggers_coalesced == 99
    assert store.queue_depth()["queued"] == 1


def test_coalescing_keeps_the_newest_context(store: Store) -> None:
    d1, d2 = add_delivery(store), add_delivery(store)
    old = RunSpec(**{**make_spec("k").__dict__, "issue": IssueInfo(1, "old", "", "u", ("persona:builder",), "octocat")})
    new = RunSpec(**{**make_spec("k").__dict__, "issue": IssueInfo(1, "new", "", "u", ("persona:builder",), "octocat")})
    run_id, _ = store.enqueue(d1, old)
    assert store.enqueue(d2, new) == (run_id, True)
    claimed = store.claim_run("w")
    assert claimed is not None and claimed.spec.issue is not None
    assert claimed.spec.issue.title == "new"
    assert claimed.triggers_coalesced == 1


def test_a_new_trigger_while_running_queues_exactly_one_more(store: Store) -> None:
    first, _ = store.enqueue(add_delivery(store), make_spec())
    assert store.claim_run("w1").id == first
    ids = {store.enqueue(add_delivery(store), make_spec())[0] for _ in range(10)}
    assert len(ids) == 1 and first not in ids
    depth = store.queue_depth()
    assert (depth["queued"], depth["running"]) == (1, 1)


def test_claim_never_returns_a_run_whose_key_is_running(store: Store) -> None:
    a1, _ = store.enqueue(add_delivery(store), make_spec("a"))
    assert store.claim_run("w1").id == a1
    a2, _ = store.enqueue(add_delivery(store), make_spec("a"))
    b1, _ = store.enqueue(add_delivery(store), make_spec("b"))
    # a2 is older than b1 but its key is busy: b1 comes first, then nothing.
    assert store.claim_run("w2").id == b1
    assert store.claim_run("w3") is None
    assert store.finish(a1, "succeeded", "done", "personabot/builder", 7, "https://x/pull/7")
    claimed = store.claim_run("w3")
    assert claimed is not None and claimed.id == a2 and claimed.worker_id == "w3"
    done = store.get_run(a1)
    assert (done.status, done.pr_number, done.branch) == ("succeeded", 7, "personabot/builder")
    assert done.finished_at is not None and done.lease_expires_at is None


def test_concurrent_claims_hand_out_each_run_once(store: Store) -> None:
    for n in range(20):
        store.enqueue(add_delivery(store), make_spec(f"key-{n}"))
    claimed: list[int] = []
    lock = threading.Lock()

    def drain(worker: str) -> None:
        while (run := store.claim_run(worker)) is not None:
            with lock:
                claimed.append(run.id)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(drain, ["w1", "w2", "w3", "w4"]))
    assert len(claimed) == 20 and len(set(claimed)) == 20


def test_not_before_defers_a_run(store: Store, clock: FakeClock) -> None:
    run_id, _ = store.enqueue(add_delivery(store), make_spec())
    store.claim_run("w")
    later = clock() + timedelta(seconds=30)
    assert store.retry_later(run_id, "502 from GitHub", later, worker_id="w") == run_id
    run = store.get_run(run_id)
    assert (run.status, run.attempts, run.error, run.not_before) == (
        "queued",
        1,
        "502 from GitHub",
        later,
    )
    assert store.claim_run("w") is None
    clock.advance(31)
    claimed = store.claim_run("w")
    assert claimed is not None and claimed.id == run_id and claimed.attempts == 1


def test_only_the_lease_holder_renews_or_finishes(store: Store, clock: FakeClock) -> None:
    run_id, _ = store.enqueue(add_delivery(store), make_spec())
    store.claim_run("w1", lease_seconds=10)
    assert not store.renew(run_id, "w2", 10)
    assert not store.finish(run_id, "succeeded", "x", worker_id="w2")
    clock.advance(8)
    assert store.renew(run_id, "w1", 10)
    clock.advance(8)  # 16 s after the claim, but renewed at 8: still held
    assert store.recover_expired() == []
    assert store.finish(run_id, "succeeded", "ok", worker_id="w1")


def test_an_expired_lease_requeues_then_fails_after_five_attempts(
    store: Store, clock: FakeClock
) -> None:
    run_id, _ = store.enqueue(add_delivery(store), make_spec())
    for attempt in range(1, 5):
        assert store.claim_run(f"w{attempt}", lease_seconds=5).id == run_id
        clock.advance(6)
        assert store.recover_expired() == [run_id]
        run = store.get_run(run_id)
        assert (run.status, run.attempts, run.worker_id) == ("queued", attempt, None)
        assert f"worker w{attempt} stopped renewing" in run.error
    store.claim_run("w5", lease_seconds=5)
    clock.advance(6)
    store.recover_expired()
    run = store.get_run(run_id)
    assert (run.status, run.attempts) == ("failed", 5)
    assert "gave up after 5 attempts" in run.message


def test_release_requeues_without_counting_an_attempt(store: Store) -> None:
    run_id, _ = store.enqueue(add_delivery(store), make_spec())
    store.claim_run("w1")
    assert store.release(run_id, "someone-else") is None
    assert store.release(run_id, "w1") == run_id
    run = store.get_run(run_id)
    assert (run.status, run.attempts, run.lease_expires_at) == ("queued", 0, None)
    assert store.claim_run("w2").id == run_id


def test_a_retry_folds_into_a_newer_queued_run_of_the_same_key(store: Store) -> None:
    d1 = add_delivery(store)
    first, _ = store.enqueue(d1, make_spec())
    store.claim_run("w1")
    d2 = add_delivery(store)
    second, _ = store.enqueue(d2, make_spec())
    # Two queued runs of one key are impossible, so the newer one inherits the retry.
    assert store.retry_later(first, "timeout", store.clock(), worker_id="w1") == second
    old, new = store.get_run(first), store.get_run(second)
    assert old.status == "skipped" and f"run {second}" in old.message
    assert new.status == "queued"
    assert sorted(store.run_trigger_deliveries(second)) == sorted([d1, d2])


def test_planning_claims_each_delivery_once(store: Store) -> None:
    ids = {add_delivery(store) for _ in range(20)}
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(worker: str) -> None:
        while (d := store.claim_delivery_to_plan(worker)) is not None:
            with lock:
                claimed.append(d.id)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(drain, ["w1", "w2", "w3", "w4"]))
    assert sorted(claimed) == sorted(ids)


def test_a_planner_that_died_is_replaced_after_its_lease(store: Store, clock: FakeClock) -> None:
    delivery_id = add_delivery(store)
    first = store.claim_delivery_to_plan("w1", lease_seconds=30)
    assert first is not None and first.payload == {"ref": "refs/heads/main"}
    assert store.claim_delivery_to_plan("w2", lease_seconds=30) is None
    clock.advance(31)
    again = store.claim_delivery_to_plan("w2", lease_seconds=30)
    assert again is not None and again.id == delivery_id and again.attempts == 1
    assert again.status == "planning" and store.get_delivery(delivery_id).status == "planning"


def test_a_delivery_whose_planners_keep_dying_fails(store: Store, clock: FakeClock) -> None:
    delivery_id = add_delivery(store)
    for _ in range(5):
        assert store.claim_delivery_to_plan("w", lease_seconds=30) is not None
        clock.advance(31)
    assert store.claim_delivery_to_plan("w", lease_seconds=30) is None
    delivery = store.get_delivery(delivery_id)
    assert (delivery.status, delivery.attempts) == ("failed", 5)
    assert "planning never finished" in delivery.reason


def test_record_plan_queues_runs_and_marks_the_delivery(store: Store) -> None:
    delivery_id = add_delivery(store)
    store.claim_delivery_to_plan("w")
    results = store.record_plan(delivery_id, [make_spec("a"), make_spec("b"), make_spec("a")])
    (a, new_a), (b, new_b), (a_again, coalesced) = results
    assert (new_a, new_b, coalesced) == (False, False, True) and a_again == a
    delivery = store.list_deliveries()[0]
    assert delivery.status == "planned"
    assert delivery.reason == f"queued run {a}; queued run {b}; coalesced into run {a}"


def test_lists_and_lookups(store: Store, clock: FakeClock) -> None:
    first, _ = store.enqueue(add_delivery(store, "d1"), make_spec("a"))
    clock.advance(1)
    store.enqueue(add_delivery(store, "d2"), make_spec("b"))
    store.claim_run("w")
    store.finish(first, "failed", "agent exited with 1")
    assert [r.id for r in store.list_runs()] == sorted((r.id for r in store.list_runs()), reverse=True)
    assert [r.concurrency_key for r in store.list_runs(status="failed")] == ["a"]
    assert store.last_run_for_key("a").id == first
    assert store.last_run_for_key("missing") is None
    assert [d.id for d in store.list_deliveries(limit=1)] == ["d2"]
    depth = store.queue_depth()
    assert depth == {
        "queued": 1,
        "running": 0,
        "succeeded": 0,
        "failed": 1,
        "skipped": 0,
        "awaiting_approval": 0,
    }
    record = store.get_run(first).to_json()
    assert record["status"] == "failed" and record["created_at"].endswith("+00:00")


def test_enqueue_needs_a_recorded_delivery(store: Store) -> None:
    with pytest.raises(Exception, match="(?i)foreign key"):
        store.enqueue("never-recorded", make_spec())
    run_id, _ = store.enqueue(None, make_spec(trigger="manual"))  # manual runs have no delivery
    assert store.get_run(run_id).delivery_id is None
