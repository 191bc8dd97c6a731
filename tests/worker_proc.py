"""A real worker process for the multi-process tests (not a test module).

The executor writes one JSON line when a run starts and one when it ends, with wall-clock times,
to the log file given on the command line; the tests read those files to prove exactly-once
execution and that no two runs of one key overlapped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

from personabot.runner import RunOutcome
from personabot.store import ClaimedRun, Delivery, Store
from personabot.triggers import Ignored
from personabot.worker import Worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("worker_id")
    parser.add_argument("log")
    parser.add_argument("--mode", choices=["fast", "hang"], default="fast")
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--grace", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    def record(**fields: object) -> None:
        line = json.dumps({**fields, "worker": args.worker_id, "t": time.time()}) + "\n"
        with open(args.log, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def executor(run: ClaimedRun) -> RunOutcome:
        record(event="start", run=run.id, key=run.concurrency_key, attempts=run.attempts)
        time.sleep(60 if args.mode == "hang" else args.sleep)
        record(event="end", run=run.id, key=run.concurrency_key)
        return RunOutcome("succeeded", f"done by {args.worker_id}")

    def planner(delivery: Delivery) -> Ignored:
        return Ignored("the process tests enqueue runs directly")

    store = Store(args.url)
    worker = Worker(
        store,
        planner,
        executor,
        worker_id=args.worker_id,
        lease_seconds=args.lease,
        concurrency=args.concurrency,
        poll_interval=0.05,
        grace_seconds=args.grace,
    )
    record(event="ready")
    released = worker.run()
    record(event="stopped", released=released)
    store.close()


if __name__ == "__main__":
    main()
