"""Real worker processes sharing one database: exactly once, one key at a time, nothing lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from store_support import add_delivery, database_url, make_spec, pg_url  # noqa: F401

from personabot.store import Store

pytestmark = pytest.mark.slow
HELPER = Path(__file__).with_name("worker_proc.py")


class Processes:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url, self.tmp_path = url, tmp_path
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, worker_id: str, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(HELPER), self.url, worker_id, str(self.log(worker_id)), *args]
        )
        self.procs[worker_id] = proc
        wait_for(lambda: any(e["event"] == "ready" for e in self.events(worker_id)), proc=proc)
        return proc

    def log(self, worker_id: str) -> Path:
        return self.tmp_path / f"{worker_id}.jsonl"

    def events(self, worker_id: str | None = None) -> list[dict[str, Any]]:
        names = [worker_id] if worker_id else list(self.procs)
        out: list[dict[str, Any]] = []
        for name in names:
            path = self.log(name)
            if path.exists():
                out += [json.loads(line) for line in path.read_text().splitlines() if line]
        return out

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def wait_for(
    predicate: Callable[[], bool], timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker process exited early with {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.fixture
def store_and_procs(database_url: str, tmp_path: Path) -> Iterator[tuple[Store, Processes]]:
    store = Store(database_url)
    store.upgrade()
    procs = Processes(database_url, tmp_path)
    try:
        yield store, procs
    finally:
        procs.stop_all()
        store.close()


def test_two_processes_drain_50_runs_over_10_keys_exactly_once(
    store_and_procs: tuple[Store, Processes],
) -> None:
    store, procs = store_and_procs
    procs.start("worker-a", "--concurrency", "2")
    procs.start("worker-b", "--concurrency", "2")

    # One queued run per key is all the queue allows, so feed each key its next run as soon as
    # the previous one has been claimed: 5 runs for each of 10 keys.
    remaining = {f"octo/repo#{k}:builder": 5 for k in range(10)}
    created: list[int] = []
    deadline = time.monotonic() + 40
    while remaining:
        assert time.monotonic() < deadline, "feeding the queue took too long"
        for key in list(remaining):
            last = store.last_run_for_key(key)
            if last is None or last.status != "queued":
                run_id, coalesced = store.enqueue(None, make_spec(key, trigger="manual"))
                assert not coalesced
                created.append(run_id)
                remaining[key] -= 1
                if remaining[key] == 0:
                    del remaining[key]
        time.sleep(0.01)
    wait_for(lambda: store.queue_depth()["succeeded"] == 50, timeout=40)

    events = procs.events()
    starts = [e for e in events if e["event"] == "start"]
    ends = [e for e in events if e["event"] == "end"]
    assert sorted(e["run"] for e in starts) == sorted(created)  # each run started once
    assert sorted(e["run"] for e in ends) == sorted(created)  # and ended once
    assert {e["worker"] for e in starts} == {"worker-a", "worker-b"}

    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    end_of = {e["run"]: e["t"] for e in ends}
    for e in starts:
        spans[e["key"]].append((e["t"], end_of[e["run"]]))
    for key, intervals in spans.items():
        intervals.sort()
        for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
            assert start >= end, f"two runs of {key} overlapped"
    assert all(r.status == "succeeded" and r.attempts == 0 for r in store.list_runs(limit=100))


def test_a_killed_worker_s_run_is_executed_again_after_its_lease(
    store_and_procs: tuple[Store, Processes],
) -> None:
    store, procs = store_and_procs
    victim = procs.start("victim", "--mode", "hang", "--lease", "2", "--concurrency", "1")
    run_id, _ = store.enqueue(add_delivery(store, status="planned"), make_spec())
    wait_for(lambda: any(e["event"] == "start" for e in procs.events("victim")), proc=victim)

    procs.start("rescuer", "--lease", "2", "--concurrency", "1")
    # Longer than the lease: the live victim keeps renewing, so the rescuer must not touch it.
    time.sleep(3)
    assert [e for e in procs.events("rescuer") if e["event"] == "start"] == []
    run = store.get_run(run_id)
    assert (run.status, run.worker_id) == ("running", "victim")

    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = time.time()
    wait_for(lambda: store.get_run(run_id).status == "succeeded", timeout=20)

    run = store.get_run(run_id)
    assert (run.attempts, run.message) == (1, "done by rescuer")
    rescuer_starts = [e for e in procs.events("rescuer") if e["event"] == "start"]
    assert [e["run"] for e in rescuer_starts] == [run_id]
    assert rescuer_starts[0]["t"] >= killed_at
    assert [e["worker"] for e in procs.events() if e["event"] == "end"] == ["rescuer"]


def test_sigterm_waits_for_a_short_run_and_releases_a_long_one(
    store_and_procs: tuple[Store, Processes],
) -> None:
    store, procs = store_and_procs
    quick = procs.start("quick", "--sleep", "1.0", "--grace", "10", "--concurrency", "1")
    first, _ = store.enqueue(add_delivery(store, status="planned"), make_spec("first"))
    wait_for(lambda: any(e["event"] == "start" for e in procs.events("quick")), proc=quick)
    quick.send_signal(signal.SIGTERM)
    assert quick.wait(15) == 0
    assert store.get_run(first).status == "succeeded"  # finished inside the grace period

    slow = procs.start("slow", "--mode", "hang", "--grace", "0.5", "--concurrency", "1")
    second, _ = store.enqueue(add_delivery(store, status="planned"), make_spec("second"))
    wait_for(lambda: any(e["event"] == "start" for e in procs.events("slow")), proc=slow)
    slow.send_signal(signal.SIGTERM)
    assert slow.wait(15) == 0
    run = store.get_run(second)
    assert (run.status, run.attempts, run.worker_id) == ("queued", 0, None)
    stopped = [e for e in procs.events("slow") if e["event"] == "stopped"]
    assert stopped and stopped[0]["released"] == [second]
