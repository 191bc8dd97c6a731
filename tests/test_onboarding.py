"""Onboarding: a new installation without a config gets one commented config PR, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

from personabot.onboarding import config_text
from personabot.personas import builtin_dir, load_folders
from personabot.repoconfig import parse_repo_config
from tests.conftest import load_fixture
from tests.fakegithub import FakeGitHub
from tests.harness import Harness


@pytest.fixture
def h(tmp_path: Path, pem: str) -> Iterator[Harness]:
    fake = FakeGitHub()  # no .github/personabot.yml
    with respx.mock(assert_all_called=False) as router:
        fake.mock(router)
        yield Harness(tmp_path, pem, fake)


def install_payload() -> dict:
    return load_fixture("installation/created.payload.json")


def test_the_onboarding_config_is_valid_and_turns_nothing_on_automatically() -> None:
    personas = load_folders([("builtin", builtin_dir())]).personas
    config = parse_repo_config(config_text(personas))
    assert config.exists and config.persona("builder") is not None
    assert config.persona("builder").on == ("label", "comment")
    assert "🏗️ builder" in config_text(personas)


def test_install_without_config_opens_one_onboarding_pr(h: Harness) -> None:
    [spec] = h.plan("installation", install_payload())
    assert (spec.persona, spec.trigger, spec.repository) == ("onboarding", "install", "Codertocat/Hello-World")
    outcome = h.run(spec)
    assert outcome.status == "succeeded" and outcome.branch == "personabot/onboarding"
    [pr] = h.fake.open_pulls()
    assert pr.title == "Configure personabot" and pr.head == "personabot/onboarding"
    assert "<!-- personabot:persona=onboarding" in pr.body
    added = h.fake.text("personabot/onboarding", ".github/personabot.yml")
    assert parse_repo_config(added).persona("builder").on == ("label", "comment")
    # a second install event while it is open does not open another
    again = h.run(spec)
    assert again.status == "skipped" and "already open" in again.message
    assert len(h.fake.pulls) == 1


def test_a_closed_onboarding_pr_is_not_reopened(h: Harness) -> None:
    [spec] = h.plan("installation", install_payload())
    first = h.run(spec)
    h.fake.pulls[first.pr_number].state = "closed"
    outcome = h.run(spec)
    assert outcome.status == "skipped" and "closed without merging" in outcome.message
    assert len(h.fake.pulls) == 1


def test_no_onboarding_when_a_config_exists_or_when_turned_off(h: Harness) -> None:
    with pytest.raises(AssertionError, match="no persona has `on: install`"):
        h.plan("installation", install_payload(), onboarding=False)
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", b"draft: true\n")})
    with pytest.raises(AssertionError, match="no persona has `on: install`"):
        h.plan("installation", install_payload())


def test_until_a_config_exists_push_does_nothing_but_labels_work(h: Harness) -> None:
    with pytest.raises(AssertionError, match="push"):
        h.plan("push", load_fixture("push/payload.json", ref="refs/heads/master", after="1" * 40, deleted=False))
    payload = load_fixture("issues/labeled.payload.json")
    payload["label"] = {**payload["label"], "name": "persona:builder"}
    [spec] = h.plan("issues", payload)
    assert spec.trigger == "label"


def test_personabot_onboarding_0_turns_it_off_for_the_server(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from personabot.pipeline import build_pipeline
    from personabot.settings import Settings
    from personabot.triggers import Ignored
    from tests.harness import Delivery

    payload = {**install_payload(), "installation": {"id": 4242}}
    for value, onboards in (("0", False), ("1", True)):
        monkeypatch.setenv("PERSONABOT_ONBOARDING", value)
        settings = Settings(APP_ID=h.fake.app_id, PRIVATE_KEY=h.settings.app_private_key(), GITHUB_API_URL=h.fake.api)
        planner = build_pipeline(settings, app=h.app, agent=h.runner().agent).planner
        result = planner(Delivery("installation", 4242, payload))
        assert isinstance(result, Ignored) != onboards
