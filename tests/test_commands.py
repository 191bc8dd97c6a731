"""The README's long-running commands, as a user starts them: `make run` and `personabot worker`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from personabot.cli import build_parser
from personabot.store import Store
from tests.conftest import PROJECT

CLEAN = {k: v for k, v in os.environ.items()
         if k not in ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "DATABASE_URL", "PERSONABOT_AGENT")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"did not stop on SIGTERM:\n{out}")
    return process.returncode, out


@pytest.mark.slow
def test_make_run_starts_the_server_in_setup_mode(tmp_path: Path) -> None:
    if (PROJECT / ".env").exists():
        pytest.skip("a developer .env would configure this server")
    port = free_port()
    env = CLEAN | {"PORT": str(port), "HOST": "127.0.0.1", "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    process = subprocess.Popen(["make", "run"], cwd=PROJECT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "make run did not answer within 60 s"
                time.sleep(0.3)
        assert page.status_code == 200 and "Register GitHub App" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"ok": True}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {"ok": True}  # migrated on start
    finally:
        _, out = stop(process)
    assert "setup mode" in out


@pytest.mark.slow
def test_worker_command_runs_until_sigterm(tmp_path: Path, pem: str) -> None:
    database = tmp_path / "p.db"
    env = CLEAN | {
        "APP_ID": "1", "PRIVATE_KEY": pem, "DATABASE_URL": f"sqlite:///{database}",
        "PERSONABOT_AGENT": "command", "PERSONABOT_AGENT_COMMAND": f"{sys.executable} -c pass",
        "LOG_FORMAT": "json",
    }
    script = Path(sys.executable).with_name("personabot")
    port = free_port()
    env["HOST"] = "127.0.0.1"
    process = subprocess.Popen([str(script), "worker", "--concurrency", "1", "--grace", "5", "--metrics-port", str(port)],
                               cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 30
    while not database.exists():
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline
        time.sleep(0.2)
    store = Store(f"sqlite:///{database}")
    while store.current_revision() != Store.head_revision():  # the worker migrates on start
        assert process.poll() is None and time.monotonic() < deadline, "the database was not migrated"
        time.sleep(0.2)
    store.close()
    assert process.poll() is None  # still working, waiting for deliveries
    exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "# TYPE personabot_runs_total counter" in exposition  # the worker's own metrics
    assert 'personabot_queue_depth{status="queued"} 0.0' in exposition
    code, out = stop(process)
    assert code == 0, out
    assert pem.splitlines()[1] not in out


def test_serve_runs_two_worker_slots_unless_told_otherwise() -> None:
    assert build_parser().parse_args(["serve"]).workers == 2
    assert build_parser().parse_args(["serve", "--workers", "0"]).workers == 0


@pytest.mark.slow
def test_serve_with_workers_accepts_webhooks_and_stops_on_sigterm(tmp_path: Path, pem: str) -> None:
    import json

    from tests.serving import sign

    port = free_port()
    database = tmp_path / "p.db"
    env = CLEAN | {
        "APP_ID": "1", "PRIVATE_KEY": pem, "WEBHOOK_SECRET": "s3cret", "PORT": str(port), "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{database}", "PERSONABOT_AGENT": "command",
        "PERSONABOT_AGENT_COMMAND": f"{sys.executable} -c pass", "LOG_FORMAT": "json",
    }
    script = Path(sys.executable).with_name("personabot")
    process = subprocess.Popen([str(script), "serve", "--workers", "1"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert ready.json() == {"ok": True}
        body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
        ping = httpx.post(f"http://127.0.0.1:{port}/api/github/webhooks", content=body, headers={
            "X-GitHub-Event": "ping", "X-GitHub-Delivery": "p-1", "X-Hub-Signature-256": sign(body, "s3cret")})
        assert ping.status_code == 200 and ping.json() == {"ok": True}
    finally:
        code, out = stop(process)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so process managers see why it ended
    assert code in (0, -signal.SIGTERM), out
    messages = [json.loads(line)["message"] for line in out.splitlines() if line.startswith("{")]
    assert "1 worker slot(s) started" in messages and "Application shutdown complete." in messages
    assert "s3cret" not in out and pem.splitlines()[1] not in out
