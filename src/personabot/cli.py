"""The `personabot` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personabot", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_store_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


# ---- store and worker commands: db, runs, deliveries, worker ----------------------------------


def add_store_commands(subparsers: Any) -> None:
    """`personabot db upgrade|downgrade REV|current`, `runs`, `deliveries`, `worker`."""
    db = subparsers.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema (or REV)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=_cmd_db_upgrade)
    down = db_sub.add_parser("downgrade", help="migrate down to REV ('base' empties the database)")
    down.add_argument("revision")
    down.set_defaults(handler=_cmd_db_downgrade)
    current = db_sub.add_parser("current", help="show the database's and the code's revision")
    current.set_defaults(handler=_cmd_db_current)

    runs = subparsers.add_parser("runs", help="list recent runs, newest first")
    runs.add_argument("--status", help="only runs in this status (queued, running, failed, ...)")
    runs.add_argument("--limit", type=int, default=50)
    runs.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    runs.set_defaults(handler=_cmd_runs)

    deliveries = subparsers.add_parser("deliveries", help="list recent webhook deliveries")
    deliveries.add_argument("--status", help="received, planning, planned, ignored or failed")
    deliveries.add_argument("--limit", type=int, default=50)
    deliveries.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    deliveries.set_defaults(handler=_cmd_deliveries)

    worker = subparsers.add_parser(
        "worker", help="plan deliveries and execute runs (no web server)"
    )
    worker.add_argument("--concurrency", type=int, default=2, help="runs executed at once")
    worker.add_argument("--lease", type=float, default=60.0, help="lease seconds (renewed)")
    worker.add_argument(
        "--grace", type=float, default=30.0, help="seconds SIGTERM waits for running runs"
    )
    worker.set_defaults(handler=_cmd_worker)


def _open_store(settings: Any) -> Any:
    from personabot.store import Store

    return Store(settings.database_url)


def _fail(message: str) -> int:
    print(f"personabot: {message}", file=sys.stderr)
    return 2


def _store_command(args: argparse.Namespace, action: Any) -> int:
    from personabot.errors import PermanentError
    from personabot.settings import load_settings

    settings = load_settings()
    try:
        store = _open_store(settings)
    except PermanentError as exc:
        return _fail(str(exc))
    try:
        return int(action(store, settings) or 0)
    except PermanentError as exc:
        return _fail(str(exc))
    finally:
        store.close()


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> None:
        store.upgrade(args.revision)
        print(f"database at revision {store.current_revision()}")

    return _store_command(args, action)


def _cmd_db_downgrade(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> None:
        store.downgrade(args.revision)
        print(f"database at revision {store.current_revision() or 'base (empty)'}")

    return _store_command(args, action)


def _cmd_db_current(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> int:
        current, head = store.current_revision(), store.head_revision()
        state = "up to date" if current == head else "needs `personabot db upgrade`"
        print(f"current: {current or 'none'}\nhead:    {head}\n{state}")
        return 0

    return _store_command(args, action)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _short(text: str | None, width: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _cmd_runs(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> int:
        from personabot.store import RUN_STATUSES

        if args.status is not None and args.status not in RUN_STATUSES:
            return _fail(f"--status {args.status!r}: one of {', '.join(RUN_STATUSES)}")
        records = store.list_runs(status=args.status, limit=args.limit)
        if args.json:
            print(json.dumps([r.to_json() for r in records], indent=2))
            return 0
        rows = [
            [
                str(r.id),
                r.status,
                str(r.attempts),
                r.concurrency_key,
                r.trigger + (f" (+{r.triggers_coalesced})" if r.triggers_coalesced else ""),
                _when(r.created_at),
                _short(r.pr_url or r.message or r.error),
            ]
            for r in records
        ]
        headers = ["ID", "STATUS", "ATTEMPTS", "KEY", "TRIGGER", "CREATED", "RESULT"]
        print(_table(headers, rows) if rows else "no runs")
        return 0

    return _store_command(args, action)


def _cmd_deliveries(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> int:
        from personabot.store import DELIVERY_STATUSES

        if args.status is not None and args.status not in DELIVERY_STATUSES:
            return _fail(f"--status {args.status!r}: one of {', '.join(DELIVERY_STATUSES)}")
        records = store.list_deliveries(limit=args.limit, status=args.status)
        if args.json:
            print(json.dumps([d.to_json() for d in records], indent=2))
            return 0
        rows = [
            [
                d.id,
                d.event + (f".{d.action}" if d.action else ""),
                d.repository or "-",
                d.status,
                _when(d.received_at),
                _short(d.reason),
            ]
            for d in records
        ]
        headers = ["DELIVERY", "EVENT", "REPOSITORY", "STATUS", "RECEIVED", "REASON"]
        print(_table(headers, rows) if rows else "no deliveries")
        return 0

    return _store_command(args, action)


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        return _fail("--concurrency must be at least 1")

    def action(store: Any, settings: Any) -> int:
        from personabot import worker as worker_module

        logging.basicConfig(
            level=str(settings.log_level).upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        planner, executor = worker_module.default_pipeline(settings)
        store.upgrade()
        worker = worker_module.Worker(
            store,
            planner,
            executor,
            lease_seconds=args.lease,
            concurrency=args.concurrency,
            grace_seconds=args.grace,
        )
        worker.run()
        return 0

    return _store_command(args, action)


# ---- end of store and worker commands ---------------------------------------------------------


if __name__ == "__main__":
    sys.exit(main())
