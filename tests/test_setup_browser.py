"""The setup page in a real browser: button -> GitHub's new-app form -> callback -> normal mode.

Two real uvicorn servers on 127.0.0.1: personabot's setup routes, and a stand-in for github.com that
records the form post, answers like GitHub does after the user confirms (a redirect to the manifest's
`redirect_url` with a code), and serves the code conversion. Headless Chromium is driven through the
Chrome DevTools Protocol over `--remote-debugging-pipe` (file descriptors 3 and 4), which needs no
WebSocket client.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from dotenv import dotenv_values
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from personabot import setup
from personabot.settings import Settings
from tests.serving import listening_socket, serve_on

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} not installed (apt-get install -y --no-install-recommends chromium)",
    ),
]

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4Yt3p1Jc0kqQ7bH2d1Zb8mQ\n-----END RSA PRIVATE KEY-----\n"


@contextmanager
def serving(app: Starlette, sock: socket.socket) -> Iterator[None]:
    with serve_on(app, sock, lifespan="off"):
        yield


class FakeGitHub:
    """Just enough of github.com and its API for the manifest flow."""

    def __init__(self) -> None:
        self.form_posts: list[dict[str, Any]] = []
        self.conversions: list[str] = []

    async def new_app(self, request: Request) -> Response:
        # A browser's form post, parsed by hand (Starlette's form parser needs python-multipart).
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = parse_qs((await request.body()).decode(), strict_parsing=True)
        manifest = json.loads(form["manifest"][0])
        state = request.query_params.get("state", "")
        self.form_posts.append({"path": request.url.path, "state": state, "manifest": manifest})
        # GitHub shows a confirmation page, then sends the browser to redirect_url with a code.
        query = urlencode({"code": "c0de42", "state": state})
        return RedirectResponse(f"{manifest['redirect_url']}?{query}", status_code=302)

    async def conversion(self, request: Request) -> Response:
        self.conversions.append(request.path_params["code"])
        return JSONResponse(
            {
                "id": 999,
                "slug": "personabot-local",
                "name": "personabot-local",
                "html_url": "https://github.example/apps/personabot-local",
                "pem": PEM,
                "webhook_secret": "9a3b0c",
                "client_id": "Iv1.local",
                "client_secret": "c1e2",
            },
            status_code=201,
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/settings/apps/new", self.new_app, methods=["POST"]),
                Route("/organizations/{org}/settings/apps/new", self.new_app, methods=["POST"]),
                Route("/api/v3/app-manifests/{code}/conversions", self.conversion, methods=["POST"]),
                Route("/", lambda r: HTMLResponse("github"), methods=["GET"]),
            ]
        )


class Browser:
    """Headless Chromium spoken to with CDP messages, each a JSON object ended by a NUL byte."""

    def __init__(self, profile: Path, log: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        self._log = log
        args = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank",
        ]
        # Chromium reads commands on fd 3 and writes answers on fd 4; bash puts the pipes there
        # (dash cannot redirect from descriptors above 9).
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                ["/bin/bash", "-c", 'exec "$0" "$@" 3<&"$CDP_IN" 4>&"$CDP_OUT"', CHROMIUM, *args],
                env={**os.environ, "CDP_IN": str(to_browser_r), "CDP_OUT": str(from_browser_w)},
                pass_fds=(to_browser_r, from_browser_w),
                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                start_new_session=True,
            )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, *, timeout: float = 15) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
                if not ready:
                    raise TimeoutError(f"no answer to {method}; chromium log:\n{self.log_tail()}")
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe; log:\n{self.log_tail()}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:  # events have no id
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page is being replaced by a navigation
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}; page: {self.evaluate('location.href')}")
            time.sleep(0.1)

    def log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            self.session = None
            self.send("Browser.close", timeout=5)
            self.process.wait(10)
        except Exception:
            pass
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            os.close(self._to_browser)
            os.close(self._from_browser)


def test_button_posts_the_manifest_and_the_callback_switches_to_normal_mode(tmp_path: Path) -> None:
    setup_sock, github_sock = listening_socket(), listening_socket()
    setup_url = f"http://127.0.0.1:{setup_sock.getsockname()[1]}"
    github_url = f"http://127.0.0.1:{github_sock.getsockname()[1]}"
    settings = Settings(
        _env_file=None,
        APP_ID=None, PRIVATE_KEY=None, PRIVATE_KEY_PATH=None, WEBHOOK_SECRET=None,
        PERSONABOT_ENV="development", PERSONABOT_URL=setup_url,
        GITHUB_URL=github_url, GITHUB_API_URL=f"{github_url}/api/v3",
    )  # type: ignore[call-arg]
    env_path = tmp_path / ".env"
    env_path.write_text("LOG_LEVEL=debug\n")
    configured: list[Settings] = []
    github = FakeGitHub()
    setup.check_setup_allowed(settings)
    app = Starlette(routes=setup.setup_routes(settings, env_path, configured.append))

    browser = None
    with serving(github.app(), github_sock), serving(app, setup_sock):
        try:
            browser = Browser(tmp_path / "profile", tmp_path / "chromium.log")
            browser.open(f"{setup_url}/?org=octo-org")
            action = browser.wait_for("document.querySelector('#register-form')?.action")
            browser.evaluate("document.querySelector('button#register').click()")
            install = browser.wait_for("document.querySelector('a#install')?.href")
            final_url = browser.evaluate("location.href")
        finally:
            if browser is not None:
                browser.close()

    # the stand-in for github.com got the manifest for this server, with the state from the page
    (post,) = github.form_posts
    assert action == f"{github_url}/organizations/octo-org/settings/apps/new?state={post['state']}"
    assert post["path"] == "/organizations/octo-org/settings/apps/new"
    assert len(post["state"]) >= 40
    assert post["manifest"]["hook_attributes"]["url"] == f"{setup_url}/api/github/webhooks"
    assert post["manifest"]["redirect_url"] == f"{setup_url}/setup/callback"
    assert post["manifest"]["name"] == "personabot"
    assert post["manifest"]["default_permissions"]["contents"] == "write"

    # GitHub sent the browser back; the code was exchanged once and the server switched modes
    assert final_url.startswith(f"{setup_url}/setup/callback?code=c0de42&state=")
    assert github.conversions == ["c0de42"]
    assert install == "https://github.example/apps/personabot-local/installations/new"
    (new_settings,) = configured
    assert new_settings.app_id == 999 and new_settings.app_private_key() == PEM
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    values = dotenv_values(env_path)
    assert values["LOG_LEVEL"] == "debug" and values["APP_ID"] == "999"
