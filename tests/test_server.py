"""`Server`, as `personabot serve` runs it: setup mode switching in place, readiness, workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from starlette.testclient import TestClient

from personabot.errors import PermanentError
from personabot.server import Server
from personabot.settings import Settings
from personabot.store import Store
from tests.serving import sign
from tests.test_setup import conversion_response, make_settings, state_from


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    store.upgrade()
    return store


class Pipelines:
    """Records which settings the workers were built with; the planner ignores everything."""

    def __init__(self) -> None:
        self.built: list[Settings] = []

    def __call__(self, settings: Settings) -> tuple[Any, Any]:
        if settings.agent is None:
            raise PermanentError("no agent configured: set PERSONABOT_AGENT")
        self.built.append(settings)
        from personabot.triggers import Ignored

        return (lambda delivery: Ignored("test planner")), (lambda run: None)


def test_setup_mode_switches_to_accepting_webhooks_without_a_restart(
    tmp_path: Path, store: Store, respx_mock: respx.MockRouter
) -> None:
    respx_mock.route(host="testserver").pass_through()
    respx_mock.post("https://api.github.com/app-manifests/c0de/conversions").mock(
        return_value=httpx.Response(201, json=conversion_response(app_id=77))
    )
    pipelines = Pipelines()
    server = Server(make_settings(PERSONABOT_AGENT="goose"), store, workers=1, env_path=tmp_path / ".env",
                    pipeline=pipelines)
    server.prepare()
    assert server.setup_mode
    with TestClient(server.app()) as client:
        body = json.dumps({"zen": "x", "action": "opened", "issue": {}}).encode()
        headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1", "Content-Type": "application/json"}
        # before setup there is no webhook route at all, and no worker
        assert client.post("/api/github/webhooks", content=body, headers=headers).status_code == 404
        assert server.worker is None and not pipelines.built
        state = state_from(client.get("/").text)
        answer = client.get("/setup/callback", params={"code": "c0de", "state": state})
        assert answer.status_code == 200
        # now the secret GitHub created verifies deliveries, and the workers run with the new app id
        secret = conversion_response()["webhook_secret"]
        accepted = client.post("/api/github/webhooks", content=body,
                               headers={**headers, "X-Hub-Signature-256": sign(body, secret)})
        assert accepted.status_code == 202 and accepted.json() == {"delivery": "d-1", "duplicate": False}
        assert [s.app_id for s in pipelines.built] == [77]
        assert server.worker is not None
    assert server.worker is None  # stopped with the app
    assert store.get_delivery("d-1") is not None


def test_workers_need_an_agent_but_the_web_alone_does_not(tmp_path: Path, store: Store) -> None:
    settings = make_settings(APP_ID=1, PRIVATE_KEY="k", WEBHOOK_SECRET="s")
    with pytest.raises(PermanentError, match="no agent configured"):
        Server(settings, store, workers=2, pipeline=Pipelines()).prepare()
    Server(settings, store, workers=0, pipeline=Pipelines()).prepare()


def test_readyz_reports_an_unmigrated_database(tmp_path: Path, store: Store) -> None:
    settings = make_settings(APP_ID=1, PRIVATE_KEY="k", WEBHOOK_SECRET="s")
    with TestClient(Server(settings, store, workers=0).app()) as client:
        assert client.get("/readyz").json() == {"ok": True}
        store.downgrade("base")
        answer = client.get("/readyz")
        assert answer.status_code == 503
        [problem] = answer.json()["problems"]
        assert "run `personabot db upgrade`" in problem
        assert client.get("/healthz").status_code == 200  # alive, just not ready
