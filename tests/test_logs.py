"""Logging: JSON lines with the run's context, isolation between threads, redaction of secrets.

Records go through the real handler `configure_logging` installs, into a StringIO, and uvicorn's
own access log is produced by a real uvicorn server answering a real request.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
import uvicorn.config
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from personabot.logs import configure_logging, current_context, log_context
from personabot.settings import Settings

WEBHOOK_SECRET = "whsec-literal-3f9a1c7e"
CLIENT_SECRET = "client-secret-8d2b0e55aa"
TOKEN = "ghs_" + "A1b2C3d4E5f6G7h8I9j0" * 2  # the shape of an installation token


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    named = {
        name: (list(logger.handlers), logger.level, logger.propagate)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "httpx", "httpcore")
        for logger in [logging.getLogger(name)]
    }
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, level, propagate) in named.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def configured(fmt: str, **settings: object) -> io.StringIO:
    stream = io.StringIO()
    settings.setdefault("LOG_LEVEL", "debug")
    configure_logging(Settings(LOG_FORMAT=fmt, **settings), stream=stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_parse_and_carry_the_context() -> None:
    stream = configured("json")
    log = logging.getLogger("personabot.worker")
    log.info("idle")
    with log_context(delivery_id="72d3162e-cc78", repository="octo-org/shop"):
        log.info("planned %d runs", 2)
        with log_context(run_id=7, persona="builder"):
            log.warning("agent started")
        log.info("after the run")
    first, planned, started, after = json_lines(stream)

    assert set(first) == {"ts", "level", "logger", "message"}
    assert datetime.fromisoformat(first["ts"].replace("Z", "+00:00")).tzinfo is not None
    assert planned == {**planned, "level": "info", "logger": "personabot.worker", "message": "planned 2 runs"}
    assert planned["delivery_id"] == "72d3162e-cc78" and planned["repository"] == "octo-org/shop"
    assert "run_id" not in planned
    assert started["level"] == "warning"
    assert (started["delivery_id"], started["repository"], started["run_id"], started["persona"]) == (
        "72d3162e-cc78", "octo-org/shop", 7, "builder"
    )
    assert "run_id" not in after and "persona" not in after
    assert current_context() == {}


def test_extra_at_the_call_site_fills_context_fields() -> None:
    stream = configured("json")
    with log_context(repository="octo-org/shop"):
        logging.getLogger("personabot").info("claimed", extra={"run_id": 9})
    (line,) = json_lines(stream)
    assert line["run_id"] == 9 and line["repository"] == "octo-org/shop"


def test_pretty_line_has_time_level_logger_message_and_context() -> None:
    stream = configured("pretty")
    with log_context(run_id=7, persona="builder"):
        logging.getLogger("personabot.runner").info("opened #12")
    line = stream.getvalue().rstrip("\n")
    date, clock, level, logger, *rest = line.split()
    datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    assert (level, logger) == ("INFO", "personabot.runner")
    assert line.endswith("opened #12  run_id=7 persona=builder")
    assert "\x1b[" not in line  # no colours when the stream is not a terminal


def test_context_does_not_leak_between_threads() -> None:
    stream = configured("json")
    log = logging.getLogger("personabot.worker")
    barrier = threading.Barrier(2)

    def slot(name: str, run_id: int) -> None:
        with log_context(run_id=run_id, persona=name):
            barrier.wait()
            for _ in range(50):
                log.info(name)
                time.sleep(0)
        log.info(f"{name} done")

    with log_context(delivery_id="main-thread-only"):
        threads = [threading.Thread(target=slot, args=(name, n)) for name, n in (("a", 1), ("b", 2))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = json_lines(stream)
    assert len(lines) == 102
    for line in lines:
        assert "delivery_id" not in line, "a thread saw the context of the thread that started it"
        if line["message"] in ("a", "b"):
            assert (line["persona"], line["run_id"]) == (line["message"], 1 if line["message"] == "a" else 2)
        else:
            assert "run_id" not in line and "persona" not in line


def _secret_records(pem: str) -> None:
    log = logging.getLogger("personabot.github")
    log.info("loaded key %s", pem)
    log.warning(f"signature check with {WEBHOOK_SECRET} failed")
    log.info("client secret is %r", CLIENT_SECRET)
    log.info("GET /repos/o/r with token %s", TOKEN)
    log.info("escaped key in .env: PRIVATE_KEY=%s", pem.replace("\n", "\\n"))
    try:
        raise RuntimeError(f"request failed: Authorization: token {TOKEN}")
    except RuntimeError:
        log.exception("the call raised")


@pytest.mark.parametrize("fmt", ["json", "pretty"])
def test_secrets_are_redacted_in_both_formats(fmt: str, pem: str) -> None:
    stream = configured(fmt, PRIVATE_KEY=pem, WEBHOOK_SECRET=WEBHOOK_SECRET, GITHUB_CLIENT_SECRET=CLIENT_SECRET)
    _secret_records(pem)
    output = stream.getvalue()
    key_body = pem.splitlines()[1]
    for secret in (key_body, WEBHOOK_SECRET, CLIENT_SECRET, TOKEN, "ghs_"):
        assert secret not in output
    assert output.count("[REDACTED]") >= 6
    assert "the call raised" in output and "RuntimeError" in output  # the traceback is still there
    if fmt == "json":
        assert len(json_lines(stream)) == 6


def test_key_read_from_private_key_path_is_redacted_even_without_its_markers(tmp_path: Path, pem: str) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(pem)
    stream = configured("json", PRIVATE_KEY_PATH=str(key_file))
    body_lines = pem.strip().splitlines()[1:-1]
    # No BEGIN/END markers, so no pattern can tell this is a key: only the configured value can.
    logging.getLogger("personabot").info("key material:\n%s", "\n".join(body_lines))
    logging.getLogger("personabot").info("one line: %s", body_lines[3])
    output = stream.getvalue()
    for line in body_lines:
        assert line not in output
    assert "one line: [REDACTED]" in output


def test_reconfiguring_replaces_the_handler() -> None:
    configured("pretty")
    stream = configured("json")
    logging.getLogger("personabot").info("once")
    assert [line["message"] for line in json_lines(stream)] == ["once"]


def test_unknown_context_field_and_level_are_refused() -> None:
    with pytest.raises(TypeError, match="run"):
        with log_context(run=1):
            pass
    with pytest.raises(ValueError, match="LOG_LEVEL='loud'"):
        configure_logging(Settings(LOG_LEVEL="loud"), stream=io.StringIO())


def test_uvicorn_logs_through_the_same_handler_and_redaction() -> None:
    # As if uvicorn had already set up its own handlers in this process (its default config).
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    stream = configured("json", LOG_LEVEL="info")
    app = Starlette(routes=[Route("/ping", lambda request: PlainTextResponse("pong"))])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="info", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with log_context(delivery_id="not-this-thread"):
            response = httpx.get(f"http://127.0.0.1:{port}/ping?token={TOKEN}&code=abc123def")
        assert response.text == "pong"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    lines = json_lines(stream)  # every line is JSON: nothing printed in uvicorn's own format
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert len(access) == 1
    assert "GET /ping?token=[REDACTED]&code=[REDACTED]" in access[0]["message"]
    assert "delivery_id" not in access[0]
    assert any(line["logger"] == "uvicorn.error" and "Uvicorn running" in line["message"] for line in lines)
    assert TOKEN not in stream.getvalue() and "abc123def" not in stream.getvalue()
