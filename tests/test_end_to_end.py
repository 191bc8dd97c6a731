"""End to end: the real server with workers, signed fixture deliveries over HTTP, fake GitHub.

The server is the same `Server` that `personabot serve` runs (uvicorn, SQLite store, worker
threads); only GitHub is fake (respx routes every request to the stateful fake) and the agent is a
small real script. The test checks what reaches "GitHub": tree entries, commit, ref and PR, and
that the server's logs of the whole run hold no secret.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from githubkit.cache import MemCacheStrategy

from personabot import metrics
from personabot.agents import CommandAgent
from personabot.github import GitHubApp
from personabot.logs import configure_logging
from personabot.pipeline import build_pipeline
from personabot.server import Server
from personabot.settings import Settings
from personabot.store import Store
from tests.conftest import load_fixture
from tests.fakegithub import FakeGitHub
from tests.harness import AGENT_SCRIPT, CONFIG_PUSH
from tests.serving import serve_in_thread, sign

SECRET = "whsec-e2e-0123456789"


class Deployment:
    def __init__(self, tmp_path: Path, pem: str, fake: FakeGitHub, log_stream: io.StringIO) -> None:
        self.fake = fake
        self.pem = pem
        self.instructions = tmp_path / "agent.json"
        self.settings = Settings(
            APP_ID=fake.app_id, PRIVATE_KEY=pem, WEBHOOK_SECRET=SECRET, GITHUB_API_URL=fake.api,
            DATABASE_URL=f"sqlite:///{tmp_path / 'personabot.db'}", LOG_FORMAT="json", LOG_LEVEL="debug",
        )
        configure_logging(self.settings, stream=log_stream)
        self.store = Store(self.settings.database_url)
        self.store.upgrade()

    def pipeline(self, settings: Settings) -> tuple[Callable[..., Any], Callable[..., Any]]:
        app = GitHubApp(settings, cache_strategy=MemCacheStrategy(), on_response=metrics.github_response)
        agent = CommandAgent([sys.executable, str(AGENT_SCRIPT), str(self.instructions)])
        built = build_pipeline(settings, app=app, agent=agent)
        return built.planner, built.executor

    def agent_does(self, **spec: Any) -> None:
        self.instructions.write_text(json.dumps(spec))


@pytest.fixture
def deployment(tmp_path: Path, pem: str) -> Iterator[tuple[Deployment, str, io.StringIO]]:
    fake = FakeGitHub()
    fake.set_branch("master", {**fake.files("master"), ".github/personabot.yml": ("100644", CONFIG_PUSH.encode())})
    logs = io.StringIO()
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()  # our own server
        fake.mock(router)
        d = Deployment(tmp_path, pem, fake, logs)
        server = Server(d.settings, d.store, workers=2, pipeline=d.pipeline, grace_seconds=5)
        server.prepare()
        with serve_in_thread(server.app()) as url:
            yield d, url, logs
        d.store.close()
    logging.getLogger().handlers.clear()


def post(url: str, event: str, payload: dict[str, Any], delivery: str | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    return httpx.post(
        f"{url}/api/github/webhooks",
        content=body,
        headers={
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body, SECRET),
            "Content-Type": "application/json",
        },
        timeout=10,
    )


def metric_values(exposition: str) -> dict[str, float]:
    values = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


def wait_for(condition: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_a_labelled_issue_becomes_a_pull_request(deployment: tuple[Deployment, str, io.StringIO]) -> None:
    d, url, logs = deployment
    d.agent_does(
        write={"db/schema.sql": "CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT NOT NULL);\n"},
        chmod_x=[],
        summary="Adds the runs table with its constraints.",
    )
    before = metric_values(httpx.get(f"{url}/metrics").text)  # counters are per process
    payload = load_fixture("issues/labeled.payload.json", installation={"id": 4242})
    payload["label"] = {**payload["label"], "name": "persona:builder"}
    answer = post(url, "issues", payload, delivery="e2e-label-1")
    assert answer.status_code == 202 and answer.json() == {"delivery": "e2e-label-1", "duplicate": False}
    assert post(url, "issues", payload, delivery="e2e-label-1").json()["duplicate"] is True

    run = wait_for(lambda: next((r for r in d.store.list_runs() if r.status not in ("queued", "running")), None))
    assert run.status == "succeeded", run.message
    fake = d.fake
    base = fake.refs["master"]
    head = fake.refs["personabot/builder-issue-1"]
    # exactly one tree request, with base_tree and the one file inline
    [tree_call] = fake.calls("POST", r"/git/trees$")
    assert json.loads(tree_call.content) == {
        "base_tree": fake.commits[base].tree,
        "tree": [{"path": "db/schema.sql", "mode": "100644", "type": "blob",
                  "content": "CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT NOT NULL);\n"}],
    }
    [commit_call] = fake.calls("POST", r"/git/commits$")
    commit_body = json.loads(commit_call.content)
    assert set(commit_body) == {"message", "tree", "parents"}  # no author/committer: GitHub signs it
    assert commit_body["parents"] == [base]
    assert commit_body["message"].startswith("🏗️ feat/builder: architecture for Hello-World\n\nAdds the runs table")
    [ref_call] = fake.calls("POST", r"/git/refs$")
    assert json.loads(ref_call.content) == {"ref": "refs/heads/personabot/builder-issue-1", "sha": head}
    [pr_call] = fake.calls("POST", r"/pulls$")
    pr_body = json.loads(pr_call.content)
    assert pr_body["title"] == "🏗️ feat/builder: architecture for Hello-World"
    assert (pr_body["head"], pr_body["base"], pr_body["draft"]) == ("personabot/builder-issue-1", "master", False)
    assert pr_body["body"].startswith("Adds the runs table with its constraints.")
    assert "Closes #1" in pr_body["body"]
    assert f"<!-- personabot:persona=builder key=Codertocat/Hello-World#1:builder run={run.id} -->" in pr_body["body"]
    assert run.pr_number == fake.open_pulls()[0].number
    [status] = fake.comments.values()
    assert f"opened #{run.pr_number}" in status.body
    # health, readiness and metrics describe what happened
    assert httpx.get(f"{url}/healthz").json() == {"ok": True}
    assert httpx.get(f"{url}/readyz").json() == {"ok": True}
    after = metric_values(httpx.get(f"{url}/metrics").text)
    grew = {key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key, 0.0)}
    assert grew['personabot_deliveries_total{event="issues",outcome="accepted"}'] == 1
    assert grew['personabot_deliveries_total{event="issues",outcome="duplicate"}'] == 1
    assert grew['personabot_runs_total{persona="builder",status="succeeded"}'] == 1
    assert grew['personabot_run_duration_seconds_count{persona="builder"}'] == 1
    assert grew['personabot_agent_duration_seconds_count{persona="builder",status="ok"}'] == 1
    assert grew['personabot_github_requests_total{operation="create_pr",status="201"}'] == 1
    assert after['personabot_queue_depth{status="succeeded"}'] == 1

    # the app's own events are ignored: a label it put on an issue does not start a run
    bot = {**payload, "sender": {"login": "personabot[bot]", "type": "Bot"}}
    assert post(url, "issues", bot, delivery="e2e-bot").status_code == 202
    ignored = wait_for(lambda: next((x for x in d.store.list_deliveries() if x.id == "e2e-bot" and x.status == "ignored"), None))
    assert ignored.reason == "sent by personabot itself (personabot[bot])"
    assert len(d.store.list_runs()) == 1

    # logs of the whole run carry context and no secret
    wait_for(lambda: all(x.status != "received" for x in d.store.list_deliveries()))
    text = logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(line.get("run_id") == run.id and line.get("persona") == "builder" for line in lines)
    assert any(line.get("delivery_id") == "e2e-label-1" for line in lines)
    for secret in (SECRET, "ghs_faketoken", "BEGIN RSA PRIVATE KEY", d.pem.splitlines()[1]):
        assert secret not in text


@pytest.mark.slow
def test_a_storm_of_pushes_coalesces(deployment: tuple[Deployment, str, io.StringIO], tmp_path: Path) -> None:
    d, url, _ = deployment
    d.agent_does(write={"a.txt": "storm\n"}, sleep=2)  # a slow agent: the storm arrives while it runs
    payload = load_fixture("push/payload.json", ref="refs/heads/master", after="1" * 40, deleted=False,
                           installation={"id": 4242})
    ids = [f"storm-{i}" for i in range(100)]
    statuses = []
    with httpx.Client(timeout=10) as client:
        for delivery in ids:
            body = json.dumps(payload).encode()
            answer = client.post(f"{url}/api/github/webhooks", content=body, headers={
                "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": sign(body, SECRET), "Content-Type": "application/json"})
            statuses.append(answer.status_code)
            depth = d.store.queue_depth()
            assert depth["running"] <= 1 and depth["queued"] <= 1
    assert statuses == [202] * 100
    assert {x.id for x in d.store.list_deliveries(limit=200)} == set(ids)
    wait_for(lambda: all(r.status not in ("queued", "running") for r in d.store.list_runs())
             and all(x.status not in ("received", "planning") for x in d.store.list_deliveries(limit=200)), 60)
    runs = d.store.list_runs(limit=200)
    assert 1 <= len([r for r in runs if r.status == "succeeded"]) <= 2
    assert len(d.fake.pulls) == 1
    triggers = sum(len(d.store.run_trigger_deliveries(r.id)) for r in runs)
    assert triggers == 100  # every delivery is recorded against a run
