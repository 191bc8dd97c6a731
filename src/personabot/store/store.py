"""Queue operations over the deliveries and runs tables.

Every guarantee the queue makes is held by the database (unique and partial unique indexes, CHECK
constraints, row locks), so any number of worker processes may share one PostgreSQL database and
the code below only has to react to what the database refuses.

Times come from the Python clock of the calling process (injectable for tests). Workers on several
machines therefore need synchronised clocks (NTP); a lease of 60 s tolerates ordinary skew.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from personabot.store import db
from personabot.store.schema import (
    DELIVERY_STATUSES,
    RUN_STATUSES,
    deliveries,
    run_triggers,
    runs,
)
from personabot.triggers import RunSpec

MAX_ATTEMPTS = 5
FINISH_STATUSES = ("succeeded", "failed", "skipped", "awaiting_approval")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class Delivery:
    """A delivery handed to the planner (with its payload)."""

    id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    payload: Mapping[str, Any]
    status: str
    reason: str | None
    attempts: int
    received_at: datetime


@dataclass(frozen=True)
class DeliveryInfo:
    """A delivery as listed by `personabot deliveries` (no payload: it can be megabytes)."""

    id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    status: str
    reason: str | None
    attempts: int
    received_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["received_at"] = _iso(self.received_at)
        data["updated_at"] = _iso(self.updated_at)
        return data


@dataclass(frozen=True)
class RunRecord:
    id: int
    delivery_id: str | None
    installation_id: int
    repository: str
    persona: str
    trigger: str
    event: str
    issue_number: int | None
    concurrency_key: str
    status: str
    attempts: int
    triggers_coalesced: int
    not_before: datetime
    lease_expires_at: datetime | None
    worker_id: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    branch: str | None
    pr_number: int | None
    pr_url: str | None
    message: str | None
    error: str | None
    spec: Mapping[str, Any]

    def run_spec(self) -> RunSpec:
        return RunSpec.from_json(self.spec)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in (
            "not_before",
            "lease_expires_at",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
        ):
            data[name] = _iso(getattr(self, name))
        return data


@dataclass(frozen=True)
class ClaimedRun:
    """A run this worker holds a lease on; the executor receives it."""

    id: int
    spec: RunSpec
    attempts: int
    worker_id: str
    lease_expires_at: datetime
    started_at: datetime
    delivery_id: str | None
    concurrency_key: str
    triggers_coalesced: int


def _run_record(row: Row[Any]) -> RunRecord:
    m = row._mapping
    return RunRecord(**{name: m[name] for name in RunRecord.__dataclass_fields__})


def _delivery_info(row: Row[Any]) -> DeliveryInfo:
    m = row._mapping
    return DeliveryInfo(**{name: m[name] for name in DeliveryInfo.__dataclass_fields__})


def _delivery(row: Row[Any]) -> Delivery:
    m = row._mapping
    return Delivery(**{name: m[name] for name in Delivery.__dataclass_fields__})


def _is_unique_violation(exc: IntegrityError, index: str) -> bool:
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:  # psycopg names the violated constraint
        return getattr(diag, "constraint_name", None) == index
    # SQLite only names the columns; both partial indexes are on concurrency_key and each caller
    # can only violate the one matching the status it writes.
    return "UNIQUE constraint failed: runs.concurrency_key" in str(orig)


class Store:
    """The durable store: `Store(DATABASE_URL)`; call `upgrade()` once at start."""

    def __init__(
        self, database_url: str, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.url = db.normalize_url(database_url)
        self.engine = db.make_engine(self.url)
        self.clock = clock

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- schema -----------------------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> None:
        """Migrate to `revision`; idempotent and safe when several processes start at once."""
        db.upgrade(self.engine, revision)

    def downgrade(self, revision: str) -> None:
        db.downgrade(self.engine, revision)

    def current_revision(self) -> str | None:
        return db.current_revision(self.engine)

    @staticmethod
    def head_revision() -> str:
        return db.head_revision()

    def ping(self) -> bool:
        """True when the database answers; for readiness checks."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(1))
            return True
        except SQLAlchemyError:
            return False

    # -- deliveries -------------------------------------------------------------------------

    def record_delivery(
        self,
        id: str,
        event: str,
        action: str | None,
        installation_id: int | None,
        repository: str | None,
        payload: Mapping[str, Any],
        status: str = "received",
        reason: str | None = None,
    ) -> bool:
        """Store a delivery once; False when this id was already recorded (a redelivery)."""
        if status not in DELIVERY_STATUSES:
            raise ValueError(f"delivery status {status!r} is not one of {DELIVERY_STATUSES}")
        now = self.clock()
        values = dict(
            id=id,
            event=event,
            action=action,
            installation_id=installation_id,
            repository=repository,
            received_at=now,
            payload=dict(payload),
            status=status,
            reason=reason,
            attempts=0,
            not_before=now,
            updated_at=now,
        )
        # RETURNING rather than rowcount: a skipped conflicting row returns nothing on both
        # databases, whereas drivers disagree on rowcount for INSERT ... ON CONFLICT.
        with self._tx() as conn:
            return conn.execute(self._insert_delivery, values).first() is not None

    @functools.cached_property
    def _insert_delivery(self) -> sa.Insert:
        # Built once: the intake runs this for every delivery, and constructing the statement
        # (not executing it) was a third of its cost.
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        return insert(deliveries).on_conflict_do_nothing(index_elements=["id"]).returning(deliveries.c.id)

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def claim_delivery_to_plan(
        self, worker_id: str, lease_seconds: float = 60, *, max_attempts: int = MAX_ATTEMPTS
    ) -> Delivery | None:
        """Take the oldest delivery waiting to be planned, or one whose planner died.

        Two workers never get the same delivery: the row is locked (skipped by others) on
        PostgreSQL, and SQLite serialises the whole transaction. A delivery whose planners keep
        dying (its lease ran out `max_attempts` times) is marked failed instead of looping.
        """
        now = self.clock()
        d = deliveries.c
        query = (
            sa.select(deliveries)
            .where(
                sa.or_(
                    sa.and_(d.status == "received", d.not_before <= now),
                    sa.and_(d.status == "planning", d.lease_expires_at < now),
                )
            )
            .order_by(d.not_before, d.received_at, d.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._tx() as conn:
            while (row := conn.execute(query).first()) is not None:
                # A lease that ran out means the previous planner died: that counts as an attempt.
                attempts = row.attempts + (1 if row.status == "planning" else 0)
                if attempts >= max_attempts:
                    conn.execute(
                        sa.update(deliveries)
                        .where(d.id == row.id)
                        .values(
                            status="failed",
                            attempts=attempts,
                            reason=f"gave up after {attempts} attempts: planning never finished "
                            f"(last worker {row.worker_id})",
                            lease_expires_at=None,
                            updated_at=now,
                        )
                    )
                    continue
                conn.execute(
                    sa.update(deliveries)
                    .where(d.id == row.id)
                    .values(
                        status="planning",
                        worker_id=worker_id,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        attempts=attempts,
                        updated_at=now,
                    )
                )
                return replace(_delivery(row), status="planning", attempts=attempts)
        return None

    def renew_delivery(self, delivery_id: str, worker_id: str, lease_seconds: float = 60) -> bool:
        now = self.clock()
        d = deliveries.c
        with self._tx() as conn:
            result = conn.execute(
                sa.update(deliveries)
                .where(d.id == delivery_id, d.status == "planning", d.worker_id == worker_id)
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
            )
        return result.rowcount == 1

    def mark_delivery(self, delivery_id: str, status: str, reason: str | None = None) -> bool:
        """Set a delivery's final (or reset) status; releases any planning lease."""
        if status not in DELIVERY_STATUSES or status == "planning":
            raise ValueError(f"cannot mark a delivery {status!r}")
        with self._tx() as conn:
            return self._mark_delivery(conn, delivery_id, status, reason)

    def _mark_delivery(
        self, conn: Connection, delivery_id: str, status: str, reason: str | None
    ) -> bool:
        now = self.clock()
        result = conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(status=status, reason=reason, lease_expires_at=None, updated_at=now)
        )
        return result.rowcount == 1

    def defer_delivery(
        self, delivery_id: str, error: str, not_before: datetime, *, count_attempt: bool = True
    ) -> bool:
        """Planning hit a transient error: back to `received`, to be planned after `not_before`."""
        now = self.clock()
        d = deliveries.c
        with self._tx() as conn:
            result = conn.execute(
                sa.update(deliveries)
                .where(d.id == delivery_id)
                .values(
                    status="received",
                    reason=error,
                    not_before=not_before,
                    attempts=d.attempts + (1 if count_attempt else 0),
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
        return result.rowcount == 1

    def list_deliveries(self, limit: int = 50, status: str | None = None) -> list[DeliveryInfo]:
        d = deliveries.c
        columns = [getattr(d, name) for name in DeliveryInfo.__dataclass_fields__]
        query = sa.select(*columns).order_by(d.received_at.desc(), d.id.desc()).limit(limit)
        if status is not None:
            query = query.where(d.status == status)
        with self._tx() as conn:
            return [_delivery_info(row) for row in conn.execute(query)]

    # -- enqueueing -------------------------------------------------------------------------

    def enqueue(self, delivery_id: str | None, spec: RunSpec) -> tuple[int, bool]:
        """Queue a run, or fold the trigger into the queued run with the same key.

        Returns (run id, coalesced). `delivery_id` is None only for runs no webhook caused
        (schedule, manual).
        """
        with self._tx() as conn:
            return self._enqueue(conn, delivery_id, spec)

    def record_plan(
        self, delivery_id: str, specs: Sequence[RunSpec], *, issue_settle_seconds: float = 0
    ) -> list[tuple[int, bool]]:
        """Enqueue a delivery's runs and mark it planned in ONE transaction.

        A worker dying between the two would otherwise plan the delivery again and queue its runs
        twice once the first copies had started. New issue runs wait `issue_settle_seconds`:
        GitHub sends `issues.opened` and `issues.labeled` together for an issue created with a
        label, and the second must find the first still queued to coalesce with it.
        """
        with self._tx() as conn:
            results = [
                self._enqueue(
                    conn, delivery_id, spec, settle=issue_settle_seconds if spec.issue_number is not None else 0
                )
                for spec in specs
            ]
            parts = [
                f"coalesced into run {run_id}" if coalesced else f"queued run {run_id}"
                for run_id, coalesced in results
            ]
            self._mark_delivery(conn, delivery_id, "planned", "; ".join(parts) or "no runs")
        return results

    def _enqueue(
        self, conn: Connection, delivery_id: str | None, spec: RunSpec, settle: float = 0
    ) -> tuple[int, bool]:
        now = self.clock()
        r = runs.c
        spec_json = spec.to_json()
        for _ in range(10):
            existing = conn.execute(
                sa.select(r.id)
                .where(r.concurrency_key == spec.concurrency_key, r.status == "queued")
                .with_for_update()
            ).scalar()
            if existing is not None:
                # The run has not started, so it should act on the newest context.
                conn.execute(
                    sa.update(runs)
                    .where(r.id == existing)
                    .values(
                        spec=spec_json,
                        trigger=spec.trigger,
                        event=spec.event,
                        issue_number=spec.issue_number,
                        triggers_coalesced=r.triggers_coalesced + 1,
                        updated_at=now,
                    )
                )
                self._record_trigger(conn, existing, delivery_id, spec.trigger, now)
                return int(existing), True
            try:
                with conn.begin_nested():
                    run_id = conn.execute(
                        sa.insert(runs)
                        .values(
                            delivery_id=delivery_id,
                            installation_id=spec.installation_id,
                            repository=spec.repository,
                            persona=spec.persona,
                            trigger=spec.trigger,
                            event=spec.event,
                            issue_number=spec.issue_number,
                            concurrency_key=spec.concurrency_key,
                            spec=spec_json,
                            status="queued",
                            attempts=0,
                            triggers_coalesced=0,
                            not_before=now + timedelta(seconds=settle),
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(r.id)
                    ).scalar_one()
            except IntegrityError as exc:
                # Another process queued this key between our look and our insert: coalesce.
                if not _is_unique_violation(exc, "uq_runs_queued_key"):
                    raise
                continue
            self._record_trigger(conn, run_id, delivery_id, spec.trigger, now)
            return int(run_id), False
        raise RuntimeError(f"could not enqueue {spec.concurrency_key!r}: constant contention")

    @staticmethod
    def _record_trigger(
        conn: Connection, run_id: int, delivery_id: str | None, trigger: str, now: datetime
    ) -> None:
        if delivery_id is None:
            return
        conn.execute(
            sa.insert(run_triggers).values(
                run_id=run_id, delivery_id=delivery_id, trigger=trigger, recorded_at=now
            )
        )

    # -- claiming and leases ----------------------------------------------------------------

    def claim_run(self, worker_id: str, lease_seconds: float = 60) -> ClaimedRun | None:
        """Lease the next runnable run: queued, due, and no run with its key running."""
        now = self.clock()
        r = runs.c
        busy = runs.alias("busy")
        query = (
            sa.select(runs)
            .where(
                r.status == "queued",
                r.not_before <= now,
                ~sa.exists().where(
                    busy.c.concurrency_key == r.concurrency_key, busy.c.status == "running"
                ),
            )
            .order_by(r.not_before, r.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=runs)
        )
        lease = now + timedelta(seconds=lease_seconds)
        with self._tx() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            try:
                spec = RunSpec.from_json(row.spec)
            except (KeyError, TypeError, ValueError) as exc:
                conn.execute(
                    sa.update(runs)
                    .where(r.id == row.id)
                    .values(
                        status="failed",
                        message=f"stored run spec is unreadable: {exc!r}",
                        finished_at=now,
                        updated_at=now,
                    )
                )
                return None
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.update(runs)
                        .where(r.id == row.id)
                        .values(
                            status="running",
                            worker_id=worker_id,
                            lease_expires_at=lease,
                            started_at=now,
                            updated_at=now,
                        )
                    )
            except IntegrityError as exc:
                # A run of this key started after our snapshot; the index said no. Try later.
                if not _is_unique_violation(exc, "uq_runs_running_key"):
                    raise
                return None
        return ClaimedRun(
            id=int(row.id),
            spec=spec,
            attempts=row.attempts,
            worker_id=worker_id,
            lease_expires_at=lease,
            started_at=now,
            delivery_id=row.delivery_id,
            concurrency_key=row.concurrency_key,
            triggers_coalesced=row.triggers_coalesced,
        )

    def renew(self, run_id: int, worker_id: str, lease_seconds: float = 60) -> bool:
        """Extend this worker's lease; False when the run is no longer ours (lease lost)."""
        now = self.clock()
        r = runs.c
        with self._tx() as conn:
            result = conn.execute(
                sa.update(runs)
                .where(r.id == run_id, r.status == "running", r.worker_id == worker_id)
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
            )
        return result.rowcount == 1

    def finish(
        self,
        run_id: int,
        status: str,
        message: str,
        branch: str | None = None,
        pr_number: int | None = None,
        pr_url: str | None = None,
        *,
        worker_id: str | None = None,
        count_attempt: bool = False,
    ) -> bool:
        """Record a running run's outcome. With `worker_id`, only if this worker still owns it.

        `count_attempt` adds the attempt that just failed (a transient error on the last try).
        """
        if status not in FINISH_STATUSES:
            raise ValueError(f"a run cannot finish as {status!r}; one of {FINISH_STATUSES}")
        now = self.clock()
        r = runs.c
        conditions = [r.id == run_id, r.status == "running"]
        if worker_id is not None:
            conditions.append(r.worker_id == worker_id)
        with self._tx() as conn:
            result = conn.execute(
                sa.update(runs)
                .where(*conditions)
                .values(
                    status=status,
                    message=message,
                    attempts=r.attempts + (1 if count_attempt else 0),
                    error=message if status == "failed" else r.error,
                    branch=branch,
                    pr_number=pr_number,
                    pr_url=pr_url,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                )
            )
        return result.rowcount == 1

    def retry_later(
        self,
        run_id: int,
        error: str,
        not_before: datetime,
        *,
        worker_id: str | None = None,
        count_attempt: bool = True,
    ) -> int | None:
        """Put a running run back in the queue until `not_before` (attempts + 1 unless told).

        Returns the id of the queued run that will carry the work: this run, or the run already
        queued with the same key, which absorbs this one (this one is then marked skipped).
        None when the run was not running (or not this worker's).
        """
        with self._tx() as conn:
            row = self._running_row(conn, run_id, worker_id)
            if row is None:
                return None
            attempts = row.attempts + (1 if count_attempt else 0)
            return self._requeue(conn, row, attempts=attempts, not_before=not_before, error=error)

    def release(self, run_id: int, worker_id: str | None = None) -> int | None:
        """Give a run back without counting an attempt (graceful shutdown)."""
        with self._tx() as conn:
            row = self._running_row(conn, run_id, worker_id)
            if row is None:
                return None
            return self._requeue(
                conn,
                row,
                attempts=row.attempts,
                not_before=self.clock(),
                error=row.error,
            )

    def recover_expired(self, max_attempts: int = MAX_ATTEMPTS) -> list[int]:
        """Runs whose worker stopped renewing go back to the queue (attempts + 1), or fail."""
        now = self.clock()
        r = runs.c
        recovered: list[int] = []
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(runs)
                .where(r.status == "running", r.lease_expires_at < now)
                .order_by(r.id)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                attempts = row.attempts + 1
                error = f"lease expired: worker {row.worker_id} stopped renewing it"
                if attempts >= max_attempts:
                    conn.execute(
                        sa.update(runs)
                        .where(r.id == row.id)
                        .values(
                            status="failed",
                            attempts=attempts,
                            message=f"gave up after {attempts} attempts; last: {error}",
                            error=error,
                            lease_expires_at=None,
                            finished_at=now,
                            updated_at=now,
                        )
                    )
                else:
                    self._requeue(conn, row, attempts=attempts, not_before=now, error=error)
                recovered.append(int(row.id))
        return recovered

    def _running_row(
        self, conn: Connection, run_id: int, worker_id: str | None
    ) -> Row[Any] | None:
        r = runs.c
        conditions = [r.id == run_id, r.status == "running"]
        if worker_id is not None:
            conditions.append(r.worker_id == worker_id)
        return conn.execute(sa.select(runs).where(*conditions).with_for_update()).first()

    def _requeue(
        self,
        conn: Connection,
        row: Row[Any],
        *,
        attempts: int,
        not_before: datetime,
        error: str | None,
    ) -> int:
        now = self.clock()
        r = runs.c
        for _ in range(10):
            sibling = conn.execute(
                sa.select(r.id)
                .where(
                    r.concurrency_key == row.concurrency_key,
                    r.status == "queued",
                    r.id != row.id,
                )
                .with_for_update()
            ).scalar()
            if sibling is not None:
                # A newer trigger of the same key is already queued: it does this run's work.
                moved = conn.execute(
                    sa.select(run_triggers.c.delivery_id, run_triggers.c.trigger).where(
                        run_triggers.c.run_id == row.id
                    )
                ).all()
                for delivery_id, trigger in moved:
                    self._record_trigger(conn, sibling, delivery_id, trigger, now)
                conn.execute(
                    sa.update(runs)
                    .where(r.id == sibling)
                    .values(
                        triggers_coalesced=r.triggers_coalesced + max(len(moved), 1),
                        updated_at=now,
                    )
                )
                conn.execute(
                    sa.update(runs)
                    .where(r.id == row.id)
                    .values(
                        status="skipped",
                        attempts=attempts,
                        message=f"coalesced into queued run {sibling}",
                        error=error,
                        lease_expires_at=None,
                        finished_at=now,
                        updated_at=now,
                    )
                )
                return int(sibling)
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.update(runs)
                        .where(r.id == row.id)
                        .values(
                            status="queued",
                            attempts=attempts,
                            not_before=not_before,
                            error=error,
                            lease_expires_at=None,
                            worker_id=None,
                            updated_at=now,
                        )
                    )
            except IntegrityError as exc:
                if not _is_unique_violation(exc, "uq_runs_queued_key"):
                    raise
                continue
            return int(row.id)
        raise RuntimeError(f"could not requeue run {row.id}: constant contention")

    # -- reading ----------------------------------------------------------------------------

    def get_run(self, run_id: int) -> RunRecord | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        return None if row is None else _run_record(row)

    def list_runs(self, status: str | None = None, limit: int = 50) -> list[RunRecord]:
        if status is not None and status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; one of {', '.join(RUN_STATUSES)}")
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(runs.c.status == status)
        with self._tx() as conn:
            return [_run_record(row) for row in conn.execute(query)]

    def last_run_for_key(self, concurrency_key: str) -> RunRecord | None:
        query = (
            sa.select(runs)
            .where(runs.c.concurrency_key == concurrency_key)
            .order_by(runs.c.id.desc())
            .limit(1)
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
        return None if row is None else _run_record(row)

    def run_trigger_deliveries(self, run_id: int) -> list[str]:
        """The deliveries recorded against a run, oldest first (the creator, then absorbed ones)."""
        t = run_triggers.c
        with self._tx() as conn:
            return list(
                conn.execute(
                    sa.select(t.delivery_id).where(t.run_id == run_id).order_by(t.id)
                ).scalars()
            )

    def queue_depth(self) -> dict[str, int]:
        """Runs per status, every status present (zeros included), for metrics and health."""
        with self._tx() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(runs.c.status, sa.func.count()).group_by(runs.c.status)
                ).all()
            )
        return {status: int(counts.get(status, 0)) for status in RUN_STATUSES}
