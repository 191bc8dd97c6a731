"""Setup mode: the manifest from app.yml, the state check, the code exchange and the `.env` write."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import respx
from dotenv import dotenv_values
from starlette.applications import Starlette
from starlette.testclient import TestClient

from personabot import setup
from personabot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

FAKE_PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAx4Yt3p1Jc0kqQ7bH2d1Zb8mQ9rT6u3VwXyZaBcDeFgHiJkLm\n"
    "NoPqRsTuVwXyZ0123456789abcdefABCDEF+/ghijklmnopqrstuvwxyzABCDEFGH\n"
    "-----END RSA PRIVATE KEY-----\n"
)


def conversion_response(app_id: int = 4242) -> dict:
    """Shaped like GitHub's answer to POST /app-manifests/{code}/conversions."""
    return {
        "id": app_id,
        "slug": "personabot-test",
        "node_id": "A_kwHOAAAA",
        "owner": {"login": "octo-org", "id": 1, "type": "Organization"},
        "name": "personabot-test",
        "description": "Runs coding-agent personas",
        "external_url": "http://localhost:3000",
        "html_url": "https://github.com/apps/personabot-test",
        "created_at": "2026-12-03T16:00:00Z",
        "updated_at": "2026-12-03T16:00:00Z",
        "permissions": {"contents": "write", "issues": "write", "metadata": "read"},
        "events": ["issues", "issue_comment", "push", "pull_request"],
        "client_id": "Iv1.8a61f9b3a7aba766",
        "client_secret": "1726be1638095a19edd134c77bde3aa2ece1e5d8",
        "webhook_secret": "e340154128314309424b7c8e90325147d99fdafa",
        "pem": FAKE_PEM,
    }


def make_settings(**values: object) -> Settings:
    """Settings from explicit values only: the test runner's environment and .env must not leak in."""
    base: dict[str, object] = {
        "APP_ID": None,
        "PRIVATE_KEY": None,
        "PRIVATE_KEY_PATH": None,
        "WEBHOOK_SECRET": None,
        "PERSONABOT_URL": None,
        "PERSONABOT_ENV": "development",
        "GITHUB_URL": "https://github.com",
        "GITHUB_API_URL": "https://api.github.com",
        "PORT": 3000,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[arg-type]


class Forms(HTMLParser):
    """Collects each form's action and inputs, the way a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"), "inputs": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"][a.get("name")] = a.get("value")


def forms_of(page: str) -> list[dict]:
    parser = Forms()
    parser.feed(page)
    return parser.forms


def state_from(page: str) -> str:
    action = forms_of(page)[0]["action"]
    match = re.search(r"[?&]state=([^&]+)", action)
    assert match, action
    return match.group(1)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Settings] = []

    def __call__(self, settings: Settings) -> None:
        self.calls.append(settings)


def setup_client(settings: Settings, env_path: Path, recorder: Recorder) -> TestClient:
    return TestClient(Starlette(routes=setup.setup_routes(settings, env_path, recorder)))


# -- manifest -------------------------------------------------------------------------------------


def test_manifest_from_the_shipped_app_yml_gets_the_servers_urls() -> None:
    settings = make_settings(PERSONABOT_URL="https://bot.example.com/", WEBHOOK_PATH="/hooks/github")
    manifest = setup.build_manifest(setup.read_app_yml(), settings)

    assert manifest["name"] == "personabot"
    assert manifest["public"] is False
    assert sorted(manifest["default_events"]) == ["issue_comment", "issues", "pull_request", "push"]
    assert manifest["default_permissions"] == {
        "contents": "write",
        "pull_requests": "write",
        "issues": "write",
        "metadata": "read",
    }
    assert manifest["description"]
    assert manifest["hook_attributes"]["url"] == "https://bot.example.com/hooks/github"
    assert manifest["redirect_url"] == "https://bot.example.com/setup/callback"
    # app.yml leaves `url` empty: the app's homepage is the server itself.
    assert manifest["url"] == "https://bot.example.com"


def test_manifest_defaults_to_localhost_and_the_port() -> None:
    manifest = setup.build_manifest(setup.read_app_yml(), make_settings(PORT=4567))
    assert manifest["hook_attributes"]["url"] == "http://localhost:4567/api/github/webhooks"
    assert manifest["redirect_url"] == "http://localhost:4567/setup/callback"


def test_stale_urls_in_app_yml_are_replaced_and_other_hook_keys_kept() -> None:
    text = (
        "name: mybot\nurl: https://example.org/mybot\n"
        "hook_attributes:\n  url: https://old-host.example/hook\n  active: true\n"
        "redirect_url: https://old-host.example/cb\n"
    )
    manifest = setup.build_manifest(text, make_settings(PERSONABOT_URL="https://new.example"))
    assert manifest["url"] == "https://example.org/mybot"
    assert manifest["hook_attributes"] == {"url": "https://new.example/api/github/webhooks", "active": True}
    assert manifest["redirect_url"] == "https://new.example/setup/callback"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\ndefault_event: [push]\n", "unknown manifest key(s) default_event"),
        ("url: https://x\n", "name: required"),
        ("name: x\ndefault_events: push\n", "default_events: expected a list"),
        ("name: x\n  bad: [\n", "app.yml:2: not valid YAML"),
    ],
)
def test_broken_app_yml_is_refused_naming_the_key(text: str, expected: str) -> None:
    with pytest.raises(setup.SetupError, match=re.escape(expected)):
        setup.build_manifest(text, make_settings())


def test_app_yml_ships_inside_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    (wheel,) = tmp_path.glob("personabot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("personabot/app.yml").decode()
        archive.extractall(tmp_path / "site")
    assert shipped == (ROOT / "app.yml").read_text()

    # An installed copy reads its own app.yml, not a repository's.
    found = subprocess.run(
        [sys.executable, "-c", "from personabot import setup; print(setup.app_yml_path())"],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        cwd=tmp_path, check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    assert found == str(tmp_path / "site" / "personabot" / "app.yml")


# -- state tokens ---------------------------------------------------------------------------------


def test_state_is_single_use_and_expires() -> None:
    now = [1000.0]
    states = setup.SetupState(ttl=3600, clock=lambda: now[0])
    first, second = states.issue(), states.issue()
    assert first != second and len(first) >= 40

    assert states.consume(None) is False
    assert states.consume("") is False
    assert states.consume("not-a-token-we-issued") is False
    assert states.consume(first) is True
    assert states.consume(first) is False  # used

    now[0] += 3600
    assert states.consume(second) is False  # expired


def test_state_store_is_bounded() -> None:
    states = setup.SetupState(max_tokens=3)
    tokens = [states.issue() for _ in range(5)]
    assert [states.consume(t) for t in tokens] == [False, False, True, True, True]


# -- .env text ------------------------------------------------------------------------------------


def test_env_text_keeps_other_lines_and_replaces_old_keys(tmp_path: Path) -> None:
    existing = (
        "# operator notes\nDATABASE_URL=postgresql://db/personabot\n\nexport APP_ID=1\n"
        "PERSONABOT_AGENT=claude\nAPP_ID=2\n"
    )
    values = setup.AppCredentials.from_conversion(conversion_response()).env_values()
    text = setup.update_env_text(existing, values)
    lines = text.splitlines()

    assert lines[:3] == ["# operator notes", "DATABASE_URL=postgresql://db/personabot", ""]
    assert lines[3] == "APP_ID='4242'"  # replaced in place, the later duplicate dropped
    assert sum(line.startswith(("APP_ID", "export APP_ID")) for line in lines) == 1
    assert "PERSONABOT_AGENT=claude" in lines
    key_line = next(line for line in lines if line.startswith("PRIVATE_KEY="))
    assert "\\n" in key_line  # one line, literal \n

    path = tmp_path / ".env"
    path.write_text(text)
    loaded = Settings(_env_file=path)
    assert loaded.app_id == 4242
    assert loaded.app_private_key() == FAKE_PEM
    assert loaded.webhook_secret is not None
    assert loaded.webhook_secret.get_secret_value() == "e340154128314309424b7c8e90325147d99fdafa"
    assert loaded.github_client_id == "Iv1.8a61f9b3a7aba766"


def test_env_text_refuses_values_it_cannot_quote() -> None:
    with pytest.raises(setup.SetupError, match="WEBHOOK_SECRET"):
        setup.update_env_text("", {"WEBHOOK_SECRET": "it's"})


# -- routes ---------------------------------------------------------------------------------------


def test_page_posts_the_manifest_with_a_state_to_githubs_new_app_form(tmp_path: Path) -> None:
    settings = make_settings(PERSONABOT_URL="https://bot.example.com")
    client = setup_client(settings, tmp_path / ".env", Recorder())

    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    form = forms_of(response.text)[0]
    assert form["method"] == "post"
    assert form["action"].startswith("https://github.com/settings/apps/new?state=")
    manifest = json.loads(form["inputs"]["manifest"])
    assert manifest == setup.build_manifest(setup.read_app_yml(), settings)
    # every visit gets its own state
    assert state_from(client.get("/").text) != state_from(response.text)


def test_org_page_posts_to_the_organisation_and_bad_names_are_refused(tmp_path: Path) -> None:
    settings = make_settings(GITHUB_URL="https://ghe.example.com/")
    client = setup_client(settings, tmp_path / ".env", Recorder())

    form = forms_of(client.get("/", params={"org": "octo-org"}).text)[0]
    assert form["action"].startswith("https://ghe.example.com/organizations/octo-org/settings/apps/new?state=")

    for bad in ("../../evil", "-lead", "a--b", "x" * 40, "with space"):
        response = client.get("/", params={"org": bad})
        assert response.status_code == 400, bad
        assert "/settings/apps/new" not in response.text
        assert "org:" in response.text


def test_page_escapes_values_from_settings(tmp_path: Path) -> None:
    settings = make_settings(PERSONABOT_URL='https://x.example/"><script>alert(1)</script>')
    page = setup_client(settings, tmp_path / ".env", Recorder()).get("/").text
    assert "<script>" not in page
    manifest = json.loads(forms_of(page)[0]["inputs"]["manifest"])
    assert manifest["redirect_url"] == 'https://x.example/"><script>alert(1)</script>/setup/callback'


@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_callback_exchanges_the_code_writes_env_and_switches_mode(
    tmp_path: Path, respx_mock: respx.MockRouter
) -> None:
    env_path = tmp_path / ".env"
    env_path.write_text("# keep me\nDATABASE_URL=postgresql://db/personabot\nAPP_ID=1\n")
    env_path.chmod(0o644)
    conversion = respx_mock.post("https://api.github.com/app-manifests/a1b2c3/conversions").mock(
        return_value=httpx.Response(201, json=conversion_response())
    )
    recorder = Recorder()
    client = setup_client(make_settings(PORT=4567), env_path, recorder)
    state = state_from(client.get("/").text)

    response = client.get("/setup/callback", params={"code": "a1b2c3", "state": state})

    assert response.status_code == 200, response.text
    assert 'href="https://github.com/apps/personabot-test/installations/new"' in response.text
    assert FAKE_PEM.splitlines()[1] not in response.text  # no secret on the page
    assert conversion.call_count == 1
    request = conversion.calls.last.request
    assert request.method == "POST"
    assert "authorization" not in request.headers
    assert request.headers["accept"] == "application/vnd.github+json"

    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    lines = env_path.read_text().splitlines()
    assert lines[:2] == ["# keep me", "DATABASE_URL=postgresql://db/personabot"]
    assert [line for line in lines if line.startswith("APP_ID")] == ["APP_ID='4242'"]
    values = dotenv_values(env_path)
    assert set(setup.ENV_KEYS) <= set(values)
    assert values["GITHUB_CLIENT_SECRET"] == "1726be1638095a19edd134c77bde3aa2ece1e5d8"
    assert not list(tmp_path.glob(".env.*"))  # no temp file left behind

    (new,) = recorder.calls
    assert new.has_app_credentials and new.app_id == 4242
    assert new.app_private_key() == FAKE_PEM
    assert new.webhook_secret is not None
    assert new.port == 4567  # the rest of the running settings is kept

    # the server is configured now: setup is closed
    assert "Already registered" in client.get("/").text
    assert client.get("/setup/callback", params={"code": "a1b2c3", "state": state}).status_code == 409
    assert conversion.call_count == 1


@pytest.mark.parametrize("params", [{"code": "a1b2c3"}, {"code": "a1b2c3", "state": "forged"}])
@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_callback_without_a_state_we_issued_is_refused(
    tmp_path: Path, respx_mock: respx.MockRouter, params: dict
) -> None:
    conversion = respx_mock.post(url__regex=r".*/conversions").mock(
        return_value=httpx.Response(201, json=conversion_response())
    )
    recorder = Recorder()
    client = setup_client(make_settings(), tmp_path / ".env", recorder)
    client.get("/")  # a state exists, just not the one sent

    response = client.get("/setup/callback", params=params)

    assert response.status_code == 400
    assert "state:" in response.text
    assert not conversion.called and not recorder.calls
    assert not (tmp_path / ".env").exists()


@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_reused_state_is_refused_after_a_failed_exchange(
    tmp_path: Path, respx_mock: respx.MockRouter
) -> None:
    conversion = respx_mock.post("https://api.github.com/app-manifests/old/conversions").mock(
        return_value=httpx.Response(404, json={"message": "Not Found"})
    )
    recorder = Recorder()
    client = setup_client(make_settings(), tmp_path / ".env", recorder)
    state = state_from(client.get("/").text)

    failed = client.get("/setup/callback", params={"code": "old", "state": state})
    assert failed.status_code == 502
    assert "404" in failed.text and "start again" in failed.text

    reused = client.get("/setup/callback", params={"code": "old", "state": state})
    assert reused.status_code == 400
    assert conversion.call_count == 1
    assert not recorder.calls and not (tmp_path / ".env").exists()


@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_unreachable_github_gives_a_clear_page(tmp_path: Path, respx_mock: respx.MockRouter) -> None:
    respx_mock.post(url__regex=r".*/conversions").mock(side_effect=httpx.ConnectTimeout("timed out"))
    client = setup_client(make_settings(), tmp_path / ".env", Recorder())
    state = state_from(client.get("/").text)
    response = client.get("/setup/callback", params={"code": "abc", "state": state})
    assert response.status_code == 502
    assert "could not reach GitHub at https://api.github.com/app-manifests/abc/conversions" in response.text


@pytest.mark.parametrize("where", ["settings", "env_file"])
@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_callback_is_refused_once_credentials_exist(
    tmp_path: Path, respx_mock: respx.MockRouter, where: str
) -> None:
    conversion = respx_mock.post(url__regex=r".*/conversions").mock(
        return_value=httpx.Response(201, json=conversion_response())
    )
    env_path = tmp_path / ".env"
    states = setup.SetupState()
    state = states.issue()  # a valid state: only the credentials stand in the way
    if where == "settings":
        settings = make_settings(APP_ID=7, PRIVATE_KEY=FAKE_PEM)
    else:  # written since the server started, e.g. by an operator
        settings = make_settings()
        env_path.write_text("APP_ID=7\nPRIVATE_KEY_PATH=/etc/personabot/key.pem\n")
    before = env_path.read_text() if env_path.exists() else None
    recorder = Recorder()
    client = TestClient(Starlette(routes=setup.setup_routes(settings, env_path, recorder, state=states)))

    response = client.get("/setup/callback", params={"code": "abc", "state": state})

    assert response.status_code == 409
    assert "already has GitHub App credentials" in response.text
    assert not conversion.called and not recorder.calls
    assert (env_path.read_text() if env_path.exists() else None) == before
    assert "/settings/apps/new" not in client.get("/").text


def test_setup_mode_is_refused_in_production() -> None:
    for env in ("production", "Production"):
        with pytest.raises(setup.SetupNotAllowed) as info:
            setup.check_setup_allowed(make_settings(PERSONABOT_ENV=env))
        assert str(info.value) == (
            "APP_ID/PRIVATE_KEY missing and PERSONABOT_ENV=production: setup mode is disabled in "
            "production; set the credentials"
        )
    setup.check_setup_allowed(make_settings(PERSONABOT_ENV="development"))
    assert setup.needs_setup(make_settings())
    assert not setup.needs_setup(make_settings(APP_ID=1, PRIVATE_KEY=FAKE_PEM))


@respx.mock(assert_all_mocked=True)
def test_unwritable_env_keeps_the_credentials_in_memory(tmp_path: Path, respx_mock: respx.MockRouter) -> None:
    respx_mock.post(url__regex=r".*/conversions").mock(
        return_value=httpx.Response(201, json=conversion_response())
    )
    env_path = tmp_path / "missing-dir" / ".env"  # the folder does not exist: the write fails
    recorder = Recorder()
    client = setup_client(make_settings(), env_path, recorder)
    state = state_from(client.get("/").text)

    response = client.get("/setup/callback", params={"code": "abc", "state": state})

    assert response.status_code == 500
    assert f"could not write {env_path}" in response.text
    assert "installations/new" in response.text
    assert FAKE_PEM.splitlines()[1] not in response.text
    (new,) = recorder.calls  # the code is spent: the server runs with what GitHub returned
    assert new.app_id == 4242


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"id": 1, "html_url": "https://github.com/apps/x"}, "lacks pem"),
        ({"id": "x", "pem": FAKE_PEM, "html_url": "https://github.com/apps/x"}, "bad id: 'x'"),
    ],
)
@respx.mock(assert_all_mocked=True)
def test_incomplete_conversion_is_a_clear_failure(
    tmp_path: Path, respx_mock: respx.MockRouter, body: dict, expected: str
) -> None:
    respx_mock.post(url__regex=r".*/conversions").mock(return_value=httpx.Response(201, json=body))
    recorder = Recorder()
    client = setup_client(make_settings(), tmp_path / ".env", recorder)
    state = state_from(client.get("/").text)
    response = client.get("/setup/callback", params={"code": "abc", "state": state})
    assert response.status_code == 502
    assert expected in response.text.replace("&#x27;", "'")
    assert not recorder.calls and not (tmp_path / ".env").exists()
