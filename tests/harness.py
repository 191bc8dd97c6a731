"""Run harness shared by runner tests: a stateful fake GitHub, a real GitHubApp and a real agent."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from githubkit.cache import MemCacheStrategy

from personabot.agents import CommandAgent
from personabot.github import GitHubApp
from personabot.personas import builtin_dir, read_folder
from personabot.planner import plan_delivery
from personabot.runner import Runner, RunOutcome
from personabot.settings import Settings
from personabot.triggers import AppIdentity, Ignored, RunSpec
from tests.conftest import load_fixture
from tests.fakegithub import FakeGitHub

AGENT_SCRIPT = Path(__file__).with_name("agent_script.py")
INSTALLATION = {"id": 4242}
CONFIG_PUSH = "personas:\n  builder:\n    on: [push, label, comment]\n"


@dataclass(frozen=True)
class Claimed:
    id: int
    spec: RunSpec
    attempts: int = 0


@dataclass(frozen=True)
class Delivery:
    event: str
    installation_id: int | None
    payload: dict[str, Any]


class Harness:
    def __init__(self, tmp_path: Path, pem: str, fake: FakeGitHub) -> None:
        self.fake = fake
        self.tmp = tmp_path
        self.settings = Settings(APP_ID=fake.app_id, PRIVATE_KEY=pem, GITHUB_API_URL=fake.api, WEBHOOK_SECRET="s")
        self.sleeps: list[float] = []
        self.app = GitHubApp(self.settings, cache_strategy=MemCacheStrategy(), sleep=self.sleeps.append)
        self.instructions = tmp_path / "agent.json"
        self.agent_does()
        self.timeout = 30.0
        self.next_id = 1

    def agent_does(self, **spec: Any) -> None:
        self.instructions.write_text(json.dumps(spec))

    def runner(self) -> Runner:
        agent = CommandAgent([sys.executable, str(AGENT_SCRIPT), str(self.instructions)], env_names=["AGENT_API_KEY"])
        return Runner(
            app=self.app,
            agent=agent,
            base_sources=lambda: [("builtin", read_folder(builtin_dir()))],
            agent_timeout=self.timeout,
            workspace_parent=self.tmp,
            sleep=self.sleeps.append,
        )

    def plan(self, event: str, payload: dict[str, Any], onboarding: bool = True) -> list[RunSpec]:
        payload = {**payload, "installation": INSTALLATION}
        result = plan_delivery(
            Delivery(event, INSTALLATION["id"], payload),
            app=AppIdentity("personabot"),
            reader_for=lambda installation_id: self.app.installation(installation_id),
            base_sources=[("builtin", read_folder(builtin_dir()))],
            onboarding=onboarding,
        )
        assert not isinstance(result, Ignored), result.reason
        return result

    def run(self, spec: RunSpec, attempts: int = 0) -> RunOutcome:
        run_id, self.next_id = self.next_id, self.next_id + 1
        return self.runner()(Claimed(run_id, spec, attempts))

    def push_spec(self) -> RunSpec:
        payload = load_fixture("push/payload.json", ref="refs/heads/master", after="1" * 40, deleted=False)
        [spec] = self.plan("push", payload)
        return spec

    def label_spec(self, issue: int = 1) -> RunSpec:
        payload = load_fixture("issues/labeled.payload.json")
        payload["label"] = {**payload["label"], "name": "persona:builder"}
        payload["issue"] = {**payload["issue"], "number": issue, "body": "Add CHECK constraints <!-- secret instruction -->"}
        [spec] = self.plan("issues", payload)
        return spec

    def comment_spec(self, user: str = "Codertocat") -> RunSpec:
        payload = load_fixture("issue_comment/created.with-installation.payload.json")
        payload["comment"] = {**payload["comment"], "body": "/persona builder\nplease", "user": {"login": user, "type": "User"}}
        [spec] = self.plan("issue_comment", payload)
        return spec
