"""Webhook intake benchmark: the real server against a store-nothing baseline.

Starts uvicorn in a subprocess (one process, asyncio loop, no worker slots), sends signed deliveries
from this process with an httpx async client, and prints throughput and latency:

  1. closed loop: N deliveries over C connections, as fast as the server answers;
  2. open loop: a fixed rate (default 200/s for 10 s). Latency is measured from each request's
     *scheduled* send time, so a stalled server cannot hide its backlog (coordinated omission).

Both run against personabot's intake (records every delivery in SQLite) and against a baseline app
that only verifies the signature. Usage: .venv/bin/python bench/intake.py [--n 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "github-webhooks" / "issues" / "labeled.payload.json"
SECRET = "bench-secret"
HOOK = "/api/github/webhooks"


@dataclass
class Result:
    sent: int
    seconds: float
    latencies: list[float]  # seconds, sorted
    bad: dict[int, int]  # unexpected status code -> count
    server_cpu: float = 0.0  # seconds of CPU the server process used (all threads)

    @property
    def cpu_per_request_ms(self) -> float:
        return self.server_cpu / self.sent * 1000

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def pct(self, q: float) -> float:
        """The q-th percentile in milliseconds (nearest rank)."""
        index = min(len(self.latencies) - 1, max(0, round(q / 100 * len(self.latencies)) - 1))
        return self.latencies[index] * 1000

    def line(self) -> str:
        bad = f"  UNEXPECTED {self.bad}" if self.bad else ""
        return (
            f"{self.rate:8.0f} req/s  p50 {self.pct(50):6.1f} ms  p99 {self.pct(99):6.1f} ms"
            f"  max {self.latencies[-1] * 1000:6.1f} ms  server CPU {self.cpu_per_request_ms:.2f} ms/req"
            f"  ({self.sent} in {self.seconds:.2f} s){bad}"
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux): what the server spent, not the client."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(factory: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "--app-dir", str(ROOT / "bench"), factory,
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]
    proc = subprocess.Popen(argv, env=os.environ | env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server {factory} exited with {proc.returncode}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"server {factory} did not answer /healthz within 30 s")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def headers(body_signature: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": body_signature,
    }


async def closed_loop(base: str, body: bytes, signature: str, n: int, concurrency: int) -> Result:
    # Headers (and their unique delivery ids) are built before the clock starts.
    queue = [headers(signature) for _ in range(n)]
    latencies: list[float] = []
    bad: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while queue:
                h = queue.pop()
                start = time.perf_counter()
                response = await client.post(HOOK, content=body, headers=h)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 202:
                    bad[response.status_code] = bad.get(response.status_code, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return Result(n, seconds, sorted(latencies), bad)


async def fixed_rate(
    base: str, body: bytes, signature: str, rate: float, duration: float, concurrency: int
) -> Result:
    total = int(rate * duration)
    planned = [headers(signature) for _ in range(total)]
    latencies: list[float] = []
    bad: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def one(h: dict[str, str], due: float) -> None:
            response = await client.post(HOOK, content=body, headers=h)
            latencies.append(time.perf_counter() - due)
            if response.status_code != 202:
                bad[response.status_code] = bad.get(response.status_code, 0) + 1

        tasks = []
        t0 = time.perf_counter() + 0.05
        for i, h in enumerate(planned):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(h, due)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - t0
    return Result(total, seconds, sorted(latencies), bad)


def measure(factory: str, env: dict[str, str], args: argparse.Namespace, body: bytes) -> tuple[Result, Result]:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    with server(factory, env) as (base, pid):
        asyncio.run(closed_loop(base, body, signature, args.warmup, args.concurrency))
        cpu = cpu_seconds(pid)
        burst = asyncio.run(closed_loop(base, body, signature, args.n, args.concurrency))
        burst.server_cpu, cpu = cpu_seconds(pid) - cpu, cpu_seconds(pid)
        steady = asyncio.run(
            fixed_rate(base, body, signature, args.rate, args.duration, args.concurrency)
        )
        steady.server_cpu = cpu_seconds(pid) - cpu
    return burst, steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="deliveries in the closed-loop phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    parser.add_argument("--rate", type=float, default=200, help="requests per second, open loop")
    parser.add_argument("--duration", type=float, default=10, help="seconds of the open loop")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured deliveries first")
    args = parser.parse_args()

    payload = json.loads(FIXTURE.read_text(encoding="utf-8")) | {"installation": {"id": 4242}}
    body = json.dumps(payload).encode()
    recorder_name = "personabot.store.Store (SQLite, temp file)"

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start "
          "(the client runs on the same machine and competes with the server for CPU)")
    print(f"payload: {FIXTURE.name} + installation, {len(body)} bytes; recorder: {recorder_name}")
    print(f"closed loop: {args.n} deliveries, {args.concurrency} connections; "
          f"open loop: {args.rate:.0f}/s for {args.duration:.0f} s")

    with tempfile.TemporaryDirectory(prefix="personabot-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        env = {
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_PATH": HOOK,
            "DATABASE_URL": f"sqlite:///{db}",
        }
        app_burst, app_steady = measure("intake_apps:personabot_app", env, args, body)
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        base_burst, base_steady = measure("intake_apps:baseline_app", env, args, body)

    expected = args.warmup + args.n + int(args.rate * args.duration)
    print()
    print(f"personabot  closed  {app_burst.line()}")
    print(f"baseline    closed  {base_burst.line()}")
    print(f"personabot  {args.rate:.0f}/s   {app_steady.line()}")
    print(f"baseline    {args.rate:.0f}/s   {base_steady.line()}")
    print()
    ratio = app_burst.rate / base_burst.rate
    print(f"throughput ratio personabot/baseline: {ratio:.2f} (target >= 0.50)")
    # On a 2-core machine the httpx client needs more CPU per request than either server, so the
    # closed loop is client-bound. The server's own CPU per request says what one server process
    # could take with the client out of the way; printed for information, not part of the target.
    cpu_ratio = base_burst.cpu_per_request_ms / app_burst.cpu_per_request_ms
    print(
        f"server CPU per request: personabot {app_burst.cpu_per_request_ms:.2f} ms, baseline "
        f"{base_burst.cpu_per_request_ms:.2f} ms -> capacity ratio {cpu_ratio:.2f} "
        f"(~{1000 / app_burst.cpu_per_request_ms:.0f} vs ~{1000 / base_burst.cpu_per_request_ms:.0f}"
        " req/s per core)"
    )
    print(f"p99 at {args.rate:.0f}/s: {app_steady.pct(99):.1f} ms (target < 50 ms)")
    print(f"deliveries stored: {stored} of {expected} sent")
    ok = ratio >= 0.5 and app_steady.pct(99) < 50 and stored == expected and not app_burst.bad
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
