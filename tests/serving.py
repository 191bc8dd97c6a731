"""Serving an ASGI app with a real uvicorn server in a thread, and signing deliveries like GitHub."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def listening_socket() -> socket.socket:
    """A socket bound to a free loopback port (bind first when the app must know its own URL)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve_on(app: Any, sock: socket.socket, **config: Any) -> Iterator[str]:
    """The app behind a real uvicorn server on `sock`, in a thread; yields its base URL."""
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


@contextmanager
def serve_in_thread(app: Any, **config: Any) -> Iterator[str]:
    """The app behind a real uvicorn server on a free loopback port; yields its base URL."""
    with serve_on(app, listening_socket(), **config) as url:
        yield url
