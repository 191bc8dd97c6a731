"""Workers: plan received deliveries, claim runs, execute them, record what happened.

A worker is a few threads in one process: N slots that each plan or execute one thing at a time,
and one heartbeat that renews the leases of everything the slots hold. The executor is ordinary
blocking code (it may run an agent for half an hour); the database is the only coordination
between workers, so any number of processes may share one PostgreSQL database.

Error policy (the type of the exception decides, see errors.py):
- TransientError: back to the queue with exponential backoff and jitter through `not_before`,
  at most `max_attempts` executions in all, then failed. `retry_after` is honoured when given.
- RateLimited: deferred until `reset_at` WITHOUT counting an attempt: the run did nothing wrong,
  and the reset time is known, so it will not loop.
- PermanentError or any other exception: failed with the message.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from personabot.errors import PermanentError, RateLimited, TransientError
from personabot.logs import log_context
from personabot.metrics import RUN_SECONDS, RUNS
from personabot.runner import RunOutcome
from personabot.store import MAX_ATTEMPTS, ClaimedRun, Delivery, Store
from personabot.triggers import Ignored, RunSpec

log = logging.getLogger("personabot.worker")

Planner = Callable[[Delivery], "Sequence[RunSpec] | Ignored"]
Executor = Callable[[ClaimedRun], RunOutcome]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; attempt n waits about base * 2**(n-1), capped."""

    max_attempts: int = MAX_ATTEMPTS
    base_seconds: float = 30.0
    cap_seconds: float = 1800.0
    jitter: float = 0.5  # the wait is drawn from [(1 - jitter) * d, d]

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        exponential = min(self.cap_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        delay = exponential * random.uniform(1 - self.jitter, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def default_pipeline(settings: Any) -> tuple[Planner, Executor]:
    """The planner and executor `personabot worker` and `serve` run with."""
    from personabot.pipeline import (
        build_pipeline,  # the GitHub and agent stack loads only here
    )

    pipeline = build_pipeline(settings)
    return pipeline.planner, pipeline.executor


class Worker:
    def __init__(
        self,
        store: Store,
        planner: Planner,
        executor: Executor,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 60,
        concurrency: int = 2,
        poll_interval: float = 1.0,
        grace_seconds: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        issue_settle_seconds: float = 5.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.store = store
        self.planner = planner
        self.executor = executor
        self.worker_id = worker_id or default_worker_id()
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.grace_seconds = grace_seconds
        self.retry = retry
        self.issue_settle_seconds = issue_settle_seconds
        self._stopping = threading.Event()  # no new claims
        self._stop_requested = threading.Event()  # run() should shut down
        self._halted = threading.Event()  # stop() finished: the heartbeat ends
        self._closed = False  # stop() took its snapshot: a late claim is released at once
        self._lock = threading.Lock()
        self._active_runs: dict[int, ClaimedRun] = {}
        self._active_deliveries: set[str] = set()
        self._released: set[int] = set()
        self._threads: list[threading.Thread] = []
        self._last_recovery = 0.0
        self._heartbeat_thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the slot threads and the heartbeat; returns at once."""
        if self._threads:
            raise RuntimeError("worker already started")
        for n in range(self.concurrency):
            thread = threading.Thread(
                target=self._slot, name=f"personabot-slot-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        heartbeat = threading.Thread(
            target=self._heartbeat, name="personabot-heartbeat", daemon=True
        )
        heartbeat.start()
        self._heartbeat_thread = heartbeat

    def request_stop(self) -> None:
        """Ask `run()` to shut down (what SIGTERM does); safe from a signal handler."""
        self._stop_requested.set()

    def stop(self, grace_seconds: float | None = None) -> list[int]:
        """Stop claiming, give running runs `grace_seconds` to finish, then release the rest.

        Returns the ids of the runs released back to the queue (no attempt counted).
        """
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        self._stopping.set()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        released: list[int] = []
        with self._lock:
            self._closed = True
            leftover_runs = list(self._active_runs.values())
            leftover_deliveries = list(self._active_deliveries)
            self._active_runs.clear()
            self._active_deliveries.clear()
            self._released.update(run.id for run in leftover_runs)
        for run in leftover_runs:
            if self.store.release(run.id, self.worker_id) is not None:
                log.warning("released run %s after the %.0fs grace period", run.id, grace)
                released.append(run.id)
        for delivery_id in leftover_deliveries:
            self.store.defer_delivery(
                delivery_id, "released at shutdown", self.store.clock(), count_attempt=False
            )
        self._halted.set()
        self._stop_requested.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(5)
        return released

    def run(self, *, handle_signals: bool = True) -> list[int]:
        """Run until SIGTERM/SIGINT (or `request_stop()`), then stop gracefully."""
        if handle_signals:
            self.install_signal_handlers()
        self.start()
        log.info("worker %s started with %d slot(s)", self.worker_id, self.concurrency)
        self._stop_requested.wait()
        log.info("worker %s stopping (grace %.0fs)", self.worker_id, self.grace_seconds)
        return self.stop()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- the work ---------------------------------------------------------------------------

    def _slot(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.step()
            except Exception:  # a database hiccup must not kill the slot
                log.exception("worker slot error; retrying after %.1fs", self.poll_interval)
                busy = False
            if not busy:
                self._stopping.wait(self.poll_interval)

    def step(self) -> bool:
        """Do one unit of work in the calling thread: plan one delivery or execute one run.

        Returns False when there was nothing to do. Tests drive a worker with this directly.
        """
        if self._stopping.is_set():
            return False
        self._recover_expired()
        delivery = self.store.claim_delivery_to_plan(
            self.worker_id, self.lease_seconds, max_attempts=self.retry.max_attempts
        )
        if delivery is not None:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._active_deliveries.add(delivery.id)
            if closed:
                self.store.defer_delivery(
                    delivery.id, "released at shutdown", self.store.clock(), count_attempt=False
                )
                return False
            try:
                self._plan(delivery)
            finally:
                with self._lock:
                    self._active_deliveries.discard(delivery.id)
            return True
        if self._stopping.is_set():
            return False
        run = self.store.claim_run(self.worker_id, self.lease_seconds)
        if run is None:
            return False
        with self._lock:
            closed = self._closed
            if not closed:
                self._active_runs[run.id] = run
        if closed:  # claimed while stop() was already releasing: hand it straight back
            self.store.release(run.id, self.worker_id)
            return False
        try:
            self._execute(run)
        finally:
            with self._lock:
                self._active_runs.pop(run.id, None)
                self._released.discard(run.id)
        return True

    def _recover_expired(self) -> None:
        # Cheap, but every slot of every worker polling it each second would be wasteful.
        now = time.monotonic()
        with self._lock:
            if now - self._last_recovery < max(self.poll_interval, 1.0):
                return
            self._last_recovery = now
        for run_id in self.store.recover_expired(self.retry.max_attempts):
            log.warning("run %s: lease expired, returned to the queue (or failed)", run_id)

    def _plan(self, delivery: Delivery) -> None:
        with log_context(delivery_id=delivery.id, repository=delivery.repository):
            self._plan_in_context(delivery)

    def _plan_in_context(self, delivery: Delivery) -> None:
        store = self.store
        try:
            result = self.planner(delivery)
        except RateLimited as exc:
            store.defer_delivery(
                delivery.id, str(exc), max(exc.reset_at, store.clock()), count_attempt=False
            )
        except TransientError as exc:
            attempts = delivery.attempts + 1
            if attempts >= self.retry.max_attempts:
                store.mark_delivery(
                    delivery.id, "failed", f"gave up after {attempts} attempts: {exc}"
                )
            else:
                store.defer_delivery(delivery.id, str(exc), self._later(attempts, exc.retry_after))
        except PermanentError as exc:
            store.mark_delivery(delivery.id, "failed", str(exc) or type(exc).__name__)
        except Exception as exc:
            log.exception("planning delivery %s failed", delivery.id)
            store.mark_delivery(delivery.id, "failed", f"{type(exc).__name__}: {exc}")
        else:
            if isinstance(result, Ignored):
                store.mark_delivery(delivery.id, "ignored", result.reason)
            elif not result:
                store.mark_delivery(delivery.id, "ignored", "no persona to run")
            else:
                planned = store.record_plan(
                    delivery.id, list(result), issue_settle_seconds=self.issue_settle_seconds
                )
                for run_id, coalesced in planned:
                    log.info(
                        "delivery %s: %s run %s",
                        delivery.id,
                        "coalesced into" if coalesced else "queued",
                        run_id,
                    )

    def _execute(self, run: ClaimedRun) -> None:
        with log_context(
            delivery_id=run.delivery_id, run_id=run.id, repository=run.spec.repository, persona=run.spec.persona
        ):
            self._execute_in_context(run)

    def _execute_in_context(self, run: ClaimedRun) -> None:
        store, me = self.store, self.worker_id
        try:
            outcome = self.executor(run)
        except RateLimited as exc:
            when = max(exc.reset_at, store.clock())
            store.retry_later(run.id, str(exc), when, worker_id=me, count_attempt=False)
            log.info("run %s: rate limited, deferred until %s", run.id, when.isoformat())
        except TransientError as exc:
            attempts = run.attempts + 1
            if attempts >= self.retry.max_attempts:
                self._finish(
                    run, "failed", f"gave up after {attempts} attempts: {exc}", count_attempt=True
                )
            else:
                when = self._later(attempts, exc.retry_after)
                store.retry_later(run.id, str(exc), when, worker_id=me)
                log.info("run %s: transient error, retry at %s: %s", run.id, when.isoformat(), exc)
        except PermanentError as exc:
            self._finish(run, "failed", str(exc) or type(exc).__name__)
        except Exception as exc:
            log.exception("run %s crashed", run.id)
            self._finish(run, "failed", f"{type(exc).__name__}: {exc}")
        else:
            self._finish(
                run,
                outcome.status,
                outcome.message,
                outcome.branch,
                outcome.pr_number,
                outcome.pr_url,
            )

    def _finish(
        self,
        run: ClaimedRun,
        status: str,
        message: str,
        branch: str | None = None,
        pr_number: int | None = None,
        pr_url: str | None = None,
        *,
        count_attempt: bool = False,
    ) -> None:
        ok = self.store.finish(
            run.id,
            status,
            message,
            branch,
            pr_number,
            pr_url,
            worker_id=self.worker_id,
            count_attempt=count_attempt,
        )
        if not ok:
            # Released at shutdown or lease lost: the queue already has it again; do not clobber.
            log.warning("run %s ended (%s) after this worker lost its lease", run.id, status)
            return
        RUNS.labels(run.spec.persona, status).inc()
        RUN_SECONDS.labels(run.spec.persona).observe(max(0.0, (self.store.clock() - run.started_at).total_seconds()))
        log.info("run %s %s: %s", run.id, status, message)

    def _later(self, attempts: int, retry_after: float | None) -> datetime:
        return self.store.clock() + timedelta(seconds=self.retry.delay(attempts, retry_after))

    def _heartbeat(self) -> None:
        interval = self.lease_seconds / 3
        while not self._halted.wait(interval):
            with self._lock:
                run_ids = list(self._active_runs)
                delivery_ids = list(self._active_deliveries)
            for run_id in run_ids:
                try:
                    if not self.store.renew(run_id, self.worker_id, self.lease_seconds):
                        log.warning("run %s: lease lost (taken back by the queue)", run_id)
                except Exception:
                    log.exception("run %s: could not renew the lease", run_id)
            for delivery_id in delivery_ids:
                try:
                    self.store.renew_delivery(delivery_id, self.worker_id, self.lease_seconds)
                except Exception:
                    log.exception("delivery %s: could not renew the lease", delivery_id)
