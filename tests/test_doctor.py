"""`personabot doctor` as an operator runs it: every line it prints, green and failing.

Each test starts from a healthy deployment in tmp_path (a real RSA key, a migrated SQLite database,
`python3` as the agent, an operator personas folder, GET /app mocked with respx) and breaks one thing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
import respx
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from personabot.cli import main
from personabot.doctor import Check, format_check
from personabot.store import Store

API = "https://api.doctor.test"
SETTING_NAMES = (
    "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "GITHUB_API_URL", "DATABASE_URL",
    "PERSONABOT_AGENT", "PERSONABOT_AGENT_COMMAND", "PERSONABOT_AGENT_ENV", "PERSONABOT_PERSONAS_DIR",
    "PERSONABOT_AGENT_TIMEOUT", "LOG_LEVEL", "LOG_FORMAT", "PERSONABOT_ENV",
)
NOT_RUN = "not run — fix: fix the checks above first"
HELPER = "---\nid: helper\nemoji: 🧰\nautomation_mode: MANUAL\n---\nHelp with {{ repo }}.\n"


@dataclass
class Deployment:
    root: Path
    key_path: Path
    db: Path
    personas: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db}"

    def set(self, **env: str) -> None:
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)

    def unset(self, *names: str) -> None:
        for name in names:
            self.monkeypatch.delenv(name, raising=False)


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pem: str) -> Deployment:
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    key_path = tmp_path / "app.pem"
    key_path.write_text(pem)
    db = tmp_path / "personabot.db"
    with Store(f"sqlite:///{db}") as store:
        store.upgrade()
    personas = tmp_path / "personas"
    personas.mkdir()
    (personas / "helper.md").write_text(HELPER)
    d = Deployment(tmp_path, key_path, db, personas, monkeypatch)
    d.set(
        APP_ID="123",
        PRIVATE_KEY_PATH=str(key_path),
        WEBHOOK_SECRET="s3cret-webhook",
        GITHUB_API_URL=API,
        DATABASE_URL=d.db_url,
        PERSONABOT_AGENT="command",
        PERSONABOT_AGENT_COMMAND="python3 -c 'print(1)'",
        PERSONABOT_PERSONAS_DIR=str(personas),
    )
    return d


def green_lines(d: Deployment) -> list[str]:
    return [
        "✓ settings: APP_ID, PRIVATE_KEY_PATH and WEBHOOK_SECRET are set",
        f"✓ private key: an RSA 2048-bit private key from PRIVATE_KEY_PATH={d.key_path}",
        f"✓ GitHub App: GET /app at {API} answers app 'doctor-test' (id 123)",
        f"✓ database: {d.db_url} is reachable and at the newest migration ({Store.head_revision()})",
        f"✓ agent: PERSONABOT_AGENT_COMMAND runs 'python3', found at {shutil.which('python3')}",
        "✓ personas: 2 loaded (builder, helper) from the built-in personas and "
        f"PERSONABOT_PERSONAS_DIR={d.personas}",
    ]


def app_answer(status: int = 200, **body: object) -> httpx.Response:
    if status != 200:
        return httpx.Response(status, json=body)
    return httpx.Response(200, json={"id": 123, "slug": "doctor-test", "name": "Doctor Test", **body})


def doctor(capsys: pytest.CaptureFixture[str], answer: httpx.Response | Exception | None = None,
           ) -> tuple[int, list[str], respx.Route]:
    """Run `personabot doctor` in-process with GET /app answering `answer`."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        route = router.get(f"{API}/app")
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.mock(return_value=answer or app_answer())
        code = main(["doctor"])
    captured = capsys.readouterr()
    assert captured.err == ""
    return code, captured.out.splitlines(), route


# -- all green -----------------------------------------------------------------------------------


def test_a_healthy_deployment_prints_six_ticks_and_exits_0(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, route = doctor(capsys)
    assert lines == green_lines(deployment)
    assert code == 0
    # GET /app was asked with a JWT the configured key signed for APP_ID.
    public = serialization.load_pem_private_key(deployment.key_path.read_bytes(), None).public_key()
    token = route.calls.last.request.headers["Authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, public, algorithms=["RS256"])["iss"] == "123"


def test_the_key_is_never_printed(deployment: Deployment, capsys: pytest.CaptureFixture[str],
                                  pem: str) -> None:
    deployment.unset("PRIVATE_KEY_PATH")
    deployment.set(PRIVATE_KEY=pem.replace("\n", "\\n"))  # one line, as a hosting dashboard holds it
    code, lines, _ = doctor(capsys)
    assert code == 0
    assert lines[:2] == [
        "✓ settings: APP_ID, PRIVATE_KEY and WEBHOOK_SECRET are set",
        "✓ private key: an RSA 2048-bit private key from PRIVATE_KEY",
    ]
    body = "".join(pem.strip().splitlines()[1:-1])
    assert body[:40] not in "".join(lines) and "s3cret-webhook" not in "\n".join(lines)


# -- 1. settings ---------------------------------------------------------------------------------


def test_missing_settings_are_named_and_github_is_not_asked(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.unset("PRIVATE_KEY_PATH", "WEBHOOK_SECRET")
    code, lines, route = doctor(capsys)
    assert lines[:3] == [
        "✗ settings: missing PRIVATE_KEY (or PRIVATE_KEY_PATH) and WEBHOOK_SECRET — fix: run "
        "`personabot serve` to register the app (setup mode), or set them in .env",
        "✗ private key: not run (no key is set) — fix: fix the checks above first",
        f"✗ GitHub App: {NOT_RUN}",
    ]
    assert lines[3:] == green_lines(deployment)[3:]  # the other checks still run
    assert not route.called
    assert code == 1


def test_an_unreadable_setting_stops_every_check(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.set(APP_ID="my-app")
    code, lines, _ = doctor(capsys)
    assert lines == [
        "✗ settings: APP_ID: Input should be a valid integer, unable to parse string as an integer "
        "— fix: correct it in the environment or in .env",
        f"✗ private key: {NOT_RUN}",
        f"✗ GitHub App: {NOT_RUN}",
        f"✗ database: {NOT_RUN}",
        f"✗ agent: {NOT_RUN}",
        f"✗ personas: {NOT_RUN}",
    ]
    assert code == 1


def test_settings_come_from_dot_env_in_the_working_directory(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.unset("WEBHOOK_SECRET")
    (deployment.root / ".env").write_text("WEBHOOK_SECRET=from-dot-env\n")
    code, lines, _ = doctor(capsys)
    assert lines == green_lines(deployment)
    assert code == 0


# -- 2. private key ------------------------------------------------------------------------------

KEY_FIX = (
    "fix: set PRIVATE_KEY_PATH to the .pem file from the app's settings page on GitHub "
    "(or PRIVATE_KEY to its text)"
)


def test_a_garbage_key_fails_without_printing_it(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.key_path.write_text(
        "-----BEGIN RSA PRIVATE KEY-----\nR2FyYmFnZUdhcmJhZ2VHYXJiYWdl\n-----END RSA PRIVATE KEY-----\n"
    )
    code, lines, route = doctor(capsys)
    assert lines[1:3] == [
        f"✗ private key: PRIVATE_KEY_PATH={deployment.key_path} does not hold a readable PEM "
        f"private key — {KEY_FIX}",
        f"✗ GitHub App: {NOT_RUN}",
    ]
    assert lines[0].startswith("✓ settings")
    assert "R2FyYmFnZ" not in "\n".join(lines)
    assert not route.called
    assert code == 1


def test_a_value_that_is_not_pem_at_all(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.unset("PRIVATE_KEY_PATH")
    deployment.set(PRIVATE_KEY="hunter2-not-a-key")
    code, lines, _ = doctor(capsys)
    assert lines[1] == f"✗ private key: PRIVATE_KEY is not PEM text (no -----BEGIN line) — {KEY_FIX}"
    assert "hunter2" not in "\n".join(lines)
    assert code == 1


def test_a_key_path_that_does_not_exist_is_named(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.set(PRIVATE_KEY_PATH="keys/app.pem")  # relative: say where it was looked for
    code, lines, _ = doctor(capsys)
    assert lines[1] == (
        f"✗ private key: PRIVATE_KEY_PATH=keys/app.pem does not exist "
        f"({deployment.root / 'keys' / 'app.pem'}) — {KEY_FIX}"
    )
    assert code == 1


def test_an_ec_key_is_not_a_github_app_key(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    deployment.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    code, lines, _ = doctor(capsys)
    assert lines[1] == (
        f"✗ private key: PRIVATE_KEY_PATH={deployment.key_path} holds an EC key; GitHub App keys are "
        f"RSA — {KEY_FIX}"
    )
    assert code == 1


# -- 3. GET /app ---------------------------------------------------------------------------------


def test_get_app_with_another_id_says_both(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = doctor(capsys, app_answer(id=456, slug="other-app"))
    assert lines[2] == (
        f"✗ GitHub App: GET /app at {API} answers app 'other-app' (id 456), but APP_ID is 123 "
        "— fix: set APP_ID=456, or use the private key of app 123"
    )
    assert [line[0] for line in lines] == ["✓", "✓", "✗", "✓", "✓", "✓"]
    assert code == 1


def test_get_app_401_means_the_key_is_not_this_apps(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = app_answer(401, message="A JSON web token could not be decoded")
    code, lines, route = doctor(capsys, refused)
    assert lines[2] == (
        f"✗ GitHub App: GET /app at {API} was refused (401 A JSON web token could not be decoded): "
        "the private key does not belong to app 123 — fix: correct APP_ID, or generate a private "
        "key on the app's settings page on GitHub and configure that one"
    )
    assert route.call_count == 2  # one retry with a fresh JWT, as the server does
    assert code == 1


def test_get_app_401_about_token_times_points_at_the_clock(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "'Expiration time' claim ('exp') is too far in the future"
    code, lines, _ = doctor(capsys, app_answer(401, message=message))
    assert lines[2] == (
        f"✗ GitHub App: GET /app at {API} was refused (401 {message}) — fix: set this machine's "
        "clock right (GitHub checks the token's times; use NTP)"
    )
    assert code == 1


def test_a_network_error_names_github_api_url(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, route = doctor(capsys, httpx.ConnectError("connection refused"))
    assert lines[2] == (
        f"✗ GitHub App: cannot reach GITHUB_API_URL={API} (network error: ConnectError) — fix: "
        "check GITHUB_API_URL (GitHub Enterprise Server: https://HOST/api/v3) and this machine's "
        "network or proxy"
    )
    assert route.call_count == 1  # a doctor answers at once instead of backing off
    assert code == 1


def test_a_wrong_api_url_answering_404(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = doctor(capsys, app_answer(404, message="Not Found"))
    assert lines[2] == (
        f"✗ GitHub App: GET /app at {API} answered 404 Not Found — fix: check GITHUB_API_URL "
        "(GitHub Enterprise Server: https://HOST/api/v3)"
    )
    assert code == 1


# -- 4. database ---------------------------------------------------------------------------------

DB_FIX = "fix: run `personabot db upgrade`"


def test_a_database_behind_the_code(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(deployment.db_url) as store:
        store.downgrade("0001")
    code, lines, _ = doctor(capsys)
    assert lines[3] == (
        f"✗ database: {deployment.db_url} is at migration 0001; this personabot needs "
        f"{Store.head_revision()} — {DB_FIX}"
    )
    with Store(deployment.db_url) as store:
        assert store.current_revision() == "0001"  # looked at, not upgraded
    assert code == 1


def test_an_empty_database(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(deployment.db_url) as store:
        store.downgrade("base")
    code, lines, _ = doctor(capsys)
    assert lines[3] == (
        f"✗ database: {deployment.db_url} is reachable but has no tables yet (this personabot "
        f"needs {Store.head_revision()}) — {DB_FIX}"
    )
    assert code == 1


def test_a_missing_sqlite_file_is_not_created(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.set(DATABASE_URL="sqlite:///data/personabot.db")
    missing = deployment.root / "data" / "personabot.db"
    code, lines, _ = doctor(capsys)
    assert lines[3] == (
        f"✗ database: sqlite:///data/personabot.db: the file {missing} does not exist — fix: run "
        "`personabot db upgrade` to create it, or set DATABASE_URL to the server's database"
    )
    assert not missing.exists() and not missing.parent.exists()
    assert code == 1


def test_a_database_newer_than_the_code(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = sa.create_engine(deployment.db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    code, lines, _ = doctor(capsys)
    assert lines[3] == (
        f"✗ database: {deployment.db_url} is at migration 0099, which this personabot does not "
        f"know (its newest is {Store.head_revision()}) — fix: run the personabot version that "
        "migrated it, or a newer one"
    )
    assert code == 1


def test_an_unreachable_postgresql_hides_the_password(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.set(DATABASE_URL="postgresql://bot:pa55word@127.0.0.1:1/personabot")
    code, lines, _ = doctor(capsys)
    assert lines[3].startswith(
        "✗ database: postgresql://bot:***@127.0.0.1:1/personabot is not reachable ("
    )
    assert lines[3].endswith(
        ") — fix: check DATABASE_URL and that the database server is running and reachable"
    )
    assert "pa55word" not in "\n".join(lines)
    assert code == 1


# -- 5. agent ------------------------------------------------------------------------------------


def test_an_agent_command_not_on_path(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.set(PERSONABOT_AGENT_COMMAND="no-such-agent-7f3 --yes")
    code, lines, _ = doctor(capsys)
    assert lines[4] == (
        "✗ agent: PERSONABOT_AGENT_COMMAND runs 'no-such-agent-7f3', which is not on PATH — fix: "
        "install it, or set PERSONABOT_AGENT_COMMAND to a command on PATH or an absolute path"
    )
    assert code == 1


def test_a_preset_is_looked_up_by_its_executable(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.set(PERSONABOT_AGENT="goose")
    bin_dir = deployment.root / "bin"
    bin_dir.mkdir()
    deployment.set(PATH=str(bin_dir))
    code, lines, _ = doctor(capsys)
    assert lines[4] == (
        "✗ agent: preset 'goose' runs 'goose', which is not on PATH — fix: install goose, or set "
        "PERSONABOT_AGENT to another preset (aider, claude, codex, gemini) or to `command` with "
        "PERSONABOT_AGENT_COMMAND"
    )
    assert code == 1

    goose = bin_dir / "goose"
    goose.write_text("#!/bin/sh\nexit 0\n")
    goose.chmod(0o755)
    code, lines, _ = doctor(capsys)
    assert lines[4] == f"✓ agent: preset 'goose' runs 'goose', found at {goose}"
    assert code == 0


def test_no_agent_configured(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.unset("PERSONABOT_AGENT")
    code, lines, _ = doctor(capsys)
    assert lines[4] == (
        "✗ agent: PERSONABOT_AGENT is not set — fix: set PERSONABOT_AGENT to a preset (aider, "
        "claude, codex, gemini, goose) or to `command` with PERSONABOT_AGENT_COMMAND"
    )
    assert code == 1


def test_command_without_a_command_line(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.unset("PERSONABOT_AGENT_COMMAND")
    code, lines, _ = doctor(capsys)
    assert lines[4] == (
        "✗ agent: PERSONABOT_AGENT=command needs PERSONABOT_AGENT_COMMAND (the command line) — fix: "
        "set PERSONABOT_AGENT_COMMAND"
    )
    assert code == 1


def test_an_absolute_agent_path_that_is_not_executable(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    script = deployment.root / "agent.sh"
    script.write_text("#!/bin/sh\n")
    deployment.set(PERSONABOT_AGENT_COMMAND=f"{script} --run")
    code, lines, _ = doctor(capsys)
    assert lines[4] == (
        f"✗ agent: PERSONABOT_AGENT_COMMAND runs '{script}', which is not an executable file — fix: "
        "install it, or set PERSONABOT_AGENT_COMMAND to a command on PATH or an absolute path"
    )
    assert code == 1


# -- 6. personas ---------------------------------------------------------------------------------


def test_a_broken_persona_is_listed_with_file_and_line(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = "---\nid: broken\nautomation_mode: AUTO_COMMIT\n---\nHi\n"
    (deployment.personas / "broken.md").write_text(broken)
    code, lines, _ = doctor(capsys)
    assert lines[5:] == [
        "✗ personas: 1 file with errors (2 loaded: builder, helper) — fix: correct the files listed "
        "below; `personabot personas check` also test-renders every persona",
        f"    {deployment.personas}/broken.md:3: automation_mode: 'AUTO_COMMIT' is not an automation "
        "mode; allowed: AUTO_CREATE_PR, MANUAL, AUTOMATION_MODE_UNSPECIFIED",
    ]
    assert code == 1


def test_a_missing_personas_folder(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.set(PERSONABOT_PERSONAS_DIR=str(deployment.root / "nowhere"))
    code, lines, _ = doctor(capsys)
    assert lines[5] == (
        f"✗ personas: PERSONABOT_PERSONAS_DIR={deployment.root / 'nowhere'} is not a folder — fix: "
        "create it, or unset PERSONABOT_PERSONAS_DIR"
    )
    assert code == 1


# -- output without Unicode ----------------------------------------------------------------------


def test_a_terminal_that_cannot_print_the_marks_gets_ascii() -> None:
    check = Check("agent", False, "PERSONABOT_AGENT is not set", "set PERSONABOT_AGENT")
    assert format_check(check, ascii=True) == (
        "[FAIL] agent: PERSONABOT_AGENT is not set - fix: set PERSONABOT_AGENT"
    )
    assert format_check(Check("agent", True, "found"), ascii=True) == "[ok] agent: found"


# -- a real process against a real HTTP server ---------------------------------------------------


class _FakeAppAPI(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).seen.append(self.headers.get("Authorization", ""))
        if self.path != "/app":
            self.send_error(404)
            return
        body = json.dumps({"id": 123, "slug": "doctor-test", "name": "Doctor Test"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app_api() -> Iterator[str]:
    _FakeAppAPI.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeAppAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_installed_command_in_a_real_process(deployment: Deployment, app_api: str) -> None:
    command = Path(sys.executable).with_name("personabot")
    env = {**os.environ, "GITHUB_API_URL": app_api}  # the fixture's settings, a real API server

    done = subprocess.run(
        [str(command), "doctor"], cwd=deployment.root, env=env, capture_output=True, text=True,
        timeout=60,
    )
    expected = green_lines(deployment)
    expected[2] = f"✓ GitHub App: GET /app at {app_api} answers app 'doctor-test' (id 123)"
    assert (done.stdout.splitlines(), done.stderr, done.returncode) == (expected, "", 0)
    public = serialization.load_pem_private_key(deployment.key_path.read_bytes(), None).public_key()
    (auth,) = _FakeAppAPI.seen
    assert jwt.decode(auth.removeprefix("Bearer "), public, algorithms=["RS256"])["iss"] == "123"

    env["DATABASE_URL"] = "sqlite:///gone.db"
    done = subprocess.run(
        [str(command), "doctor"], cwd=deployment.root, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines()[3].startswith(
        f"✗ database: sqlite:///gone.db: the file {deployment.root / 'gone.db'} does not exist"
    )
    assert not (deployment.root / "gone.db").exists()
