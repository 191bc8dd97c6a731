"""The command agent with real subprocesses: prompt delivery, environment, timeouts, output."""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from personabot.agents import PRESETS, CommandAgent, agent_from_settings, redact
from personabot.errors import PermanentError
from personabot.settings import Settings

FAKE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAfakefakefake\nmorefake==\n-----END RSA PRIVATE KEY-----"
INSTALLATION_TOKEN = "ghs_" + "A1b2C3d4" * 5


def script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    (ws / "README.md").write_text("old\n")
    return ws


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_dead(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_agent_edits_reads_prompt_both_ways_and_writes_summary(tmp_path: Path, workspace: Path) -> None:
    argv = script(tmp_path, "agent.py", """
        import os, sys
        from_stdin = sys.stdin.read()
        from_file = open(os.environ["PERSONABOT_PROMPT_FILE"], encoding="utf-8").read()
        assert from_stdin == from_file, "prompt differs"
        with open("README.md", "a") as f:
            f.write("added by agent\\n")
        open(os.environ["PERSONABOT_SUMMARY_FILE"], "w").write("Updated the README.\\n")
        print("working in", os.getcwd())
        print("prompt was:", from_stdin)
    """)
    prompt = "Improve the docs ✨\nline two"
    result = CommandAgent(argv).run(prompt, workspace, timeout=30)

    assert result.status == "ok" and result.exit_code == 0
    assert result.summary == "Updated the README."
    assert (workspace / "README.md").read_text() == "old\nadded by agent\n"
    assert f"working in {workspace}" in result.log
    assert "prompt was: Improve the docs ✨" in result.log
    # The prompt and summary files live outside the workspace and are gone afterwards.
    assert sorted(p.name for p in workspace.iterdir()) == ["README.md"]


def test_prompt_file_variable_is_expanded_in_arguments(tmp_path: Path, workspace: Path) -> None:
    argv = script(tmp_path, "agent.py", """
        import sys
        print("ARG", open(sys.argv[1]).read())
        print("HOMEARG", sys.argv[2])
    """) + ["$PERSONABOT_PROMPT_FILE", "${HOME}/x", "$NOT_GIVEN"]
    result = CommandAgent(argv).run("from the file", workspace, timeout=30)
    assert "ARG from the file" in result.log
    assert "HOMEARG /" in result.log and "$HOME" not in result.log


def test_environment_is_allow_listed_and_holds_no_secret(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("PRIVATE_KEY", FAKE_KEY)
    monkeypatch.setenv("WEBHOOK_SECRET", "hook-secret-123")
    monkeypatch.setenv("GITHUB_TOKEN", INSTALLATION_TOKEN)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:dbpass@h/db")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key-000000000000000000")
    monkeypatch.setenv("UNLISTED", "x")
    dump = tmp_path / "env.json"
    argv = script(tmp_path, "dump.py", f"""
        import json, os
        json.dump(dict(os.environ), open({str(dump)!r}, "w"))
        print("key is", os.environ.get("ANTHROPIC_API_KEY"))
    """)
    settings = Settings(
        PERSONABOT_AGENT="command",
        PERSONABOT_AGENT_COMMAND=" ".join(argv),
        PERSONABOT_AGENT_ENV="ANTHROPIC_API_KEY, PRIVATE_KEY,WEBHOOK_SECRET,DATABASE_URL,HOME",
        WEBHOOK_SECRET="hook-secret-123",
        PRIVATE_KEY=FAKE_KEY,
    )
    with caplog.at_level(logging.WARNING):
        agent = agent_from_settings(settings)
    result = agent.run("dump", workspace, timeout=30)

    env = json.loads(dump.read_text())
    assert set(env) == {
        "PATH", "LANG", "HOME", "PERSONABOT_PROMPT_FILE", "PERSONABOT_SUMMARY_FILE", "ANTHROPIC_API_KEY",
    }
    everything = json.dumps(env)
    for secret in (FAKE_KEY, "hook-secret-123", INSTALLATION_TOKEN, "dbpass", "MIIEow"):
        assert secret not in everything
    assert env["HOME"] != os.environ.get("HOME") and not env["HOME"].startswith(str(workspace))
    assert not env["PERSONABOT_PROMPT_FILE"].startswith(str(workspace))
    assert "PRIVATE_KEY: refused" in caplog.text and "WEBHOOK_SECRET: refused" in caplog.text
    # The API key the agent legitimately got is still never shown in its log.
    assert "sk-ant-test-key" not in result.log and "key is [REDACTED]" in result.log


def test_timeout_kills_the_whole_process_group(tmp_path: Path, workspace: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    argv = script(tmp_path, "slow.py", f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL will do
        subprocess.Popen([sys.executable, "-c",
            "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"])
        print("started", flush=True)
        time.sleep(120)
    """)
    agent = CommandAgent(argv, kill_grace=0.5)
    # Wait until the grandchild exists before the deadline hits.
    result = agent.run("", workspace, timeout=3)

    assert result.status == "timeout"
    assert result.exit_code == -9
    assert "started" in result.log and "stopped after 3s" in result.log
    assert pid_file.exists(), "the grandchild never started"
    assert wait_dead(int(pid_file.read_text()))


def test_background_leftovers_are_killed_after_a_normal_exit(tmp_path: Path, workspace: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    argv = script(tmp_path, "leaves.py", f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c",
            "import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                open({str(pid_file)!r}).read() or None
                break
            except FileNotFoundError:
                time.sleep(0.05)
    """)
    result = CommandAgent(argv).run("", workspace, timeout=30)
    assert result.status == "ok"
    assert wait_dead(int(pid_file.read_text()))


def test_output_is_capped_to_its_tail_and_redacted(tmp_path: Path, workspace: Path) -> None:
    argv = script(tmp_path, "noisy.py", f"""
        import sys
        for i in range(40000):
            print("line", i, "x" * 60)
        print("token {INSTALLATION_TOKEN}")
        print("Authorization: Bearer abcdefghijklmnop.qrstuvwx")
        print({FAKE_KEY!r})
        print("secret hook-secret-123 and https://x-access-token:{INSTALLATION_TOKEN}@github.com/o/r")
        sys.stderr.write("last words on stderr\\n")
    """)
    agent = CommandAgent(argv, secrets=["hook-secret-123"], output_cap=64 * 1024)
    result = agent.run("", workspace, timeout=60)

    assert result.status == "ok"
    assert len(result.log.encode()) < 64 * 1024 + 200
    assert "earlier bytes of output dropped" in result.log
    assert "line 0 " not in result.log and "line 39999" in result.log
    assert "last words on stderr" in result.log  # stderr is merged
    for leaked in (INSTALLATION_TOKEN, "abcdefghijklmnop", "MIIEow", "hook-secret-123"):
        assert leaked not in result.log
    assert result.log.count("[REDACTED]") >= 4


def test_non_zero_exit_is_failed_with_the_log(tmp_path: Path, workspace: Path) -> None:
    argv = script(tmp_path, "fails.py", """
        import sys
        print("could not finish: model quota exceeded", file=sys.stderr)
        sys.exit(3)
    """)
    result = CommandAgent(argv).run("", workspace, timeout=30)
    assert result.status == "failed" and result.exit_code == 3
    assert "model quota exceeded" in result.log_tail()
    assert result.summary == ""


def test_agent_that_ignores_a_large_prompt_on_stdin_does_not_hang(tmp_path: Path, workspace: Path) -> None:
    argv = script(tmp_path, "quick.py", "print('done without reading stdin')\n")
    result = CommandAgent(argv).run("p" * (4 * 1024 * 1024), workspace, timeout=30)
    assert result.status == "ok" and "done without reading stdin" in result.log


def test_missing_program_is_a_failed_run(workspace: Path) -> None:
    result = CommandAgent(["personabot-no-such-agent", "-p"]).run("", workspace, timeout=5)
    assert result.status == "failed" and result.exit_code is None
    assert "could not start the agent 'personabot-no-such-agent'" in result.log


# -- configuration -------------------------------------------------------------------------------


def test_no_agent_configured_is_a_clear_error() -> None:
    with pytest.raises(PermanentError, match="no agent configured: set PERSONABOT_AGENT"):
        agent_from_settings(Settings(PERSONABOT_AGENT=None))
    with pytest.raises(PermanentError, match="needs PERSONABOT_AGENT_COMMAND"):
        agent_from_settings(Settings(PERSONABOT_AGENT="command", PERSONABOT_AGENT_COMMAND=None))
    with pytest.raises(PermanentError, match="'cursor' is unknown"):
        agent_from_settings(Settings(PERSONABOT_AGENT="cursor"))
    with pytest.raises(PermanentError, match="cannot split"):
        agent_from_settings(Settings(PERSONABOT_AGENT="command", PERSONABOT_AGENT_COMMAND="run 'unclosed"))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_agents_without_a_shell(name: str) -> None:
    agent = agent_from_settings(Settings(PERSONABOT_AGENT=name, PERSONABOT_AGENT_ENV="OPENAI_API_KEY"))
    assert isinstance(agent, CommandAgent)
    assert agent.argv[0] == name
    assert not any(token in ("|", ";", "&&", ">") for token in agent.argv)
    assert agent.env_names == ["OPENAI_API_KEY"]


def test_command_line_is_split_like_a_shell_would() -> None:
    agent = agent_from_settings(
        Settings(PERSONABOT_AGENT="command", PERSONABOT_AGENT_COMMAND="my-agent --say 'two words' -x")
    )
    assert isinstance(agent, CommandAgent)
    assert agent.argv == ["my-agent", "--say", "two words", "-x"]


# -- redaction -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        (f"token {INSTALLATION_TOKEN} ok", INSTALLATION_TOKEN),
        ("ghp_" + "x" * 36, "ghp_"),
        ("gho_" + "Y" * 36, "gho_"),
        ("github_pat_11ABCDEFG0_" + "z" * 40, "github_pat_"),
        ("Authorization: token abc123secretvalue", "abc123secretvalue"),
        ("curl -H 'Authorization: Bearer eyJhbGciOi.payload.sig'", "eyJhbGciOi"),
        ("OPENAI_API_KEY=sk-proj-" + "q" * 40, "sk-proj-"),
        (FAKE_KEY, "MIIEow"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANcutoff", "MIIEvQ"),
        ("https://user:p4ssw0rd@example.com/repo.git", "p4ssw0rd"),
    ],
)
def test_redact_patterns(text: str, gone: str) -> None:
    out = redact(text)
    assert gone not in out and "[REDACTED]" in out


def test_redact_literal_secrets_including_escaped_newlines() -> None:
    escaped = FAKE_KEY.replace("\n", "\\n")
    out = redact(f"a=hook-secret-123 b={escaped} c=ok", secrets=["hook-secret-123", FAKE_KEY, "", "ab"])
    assert "hook-secret-123" not in out and "fakefake" not in out
    assert out.endswith("c=ok")
    assert redact("about a cab", secrets=["ab"]) == "about a cab"  # too short to be a secret


def test_stop_all_agents_ends_running_agents_at_shutdown(tmp_path: Path, workspace: Path) -> None:
    import threading

    from personabot.agents import stop_all_agents

    started = tmp_path / "started"
    argv = script(tmp_path, "long.py", f"""
        import time
        open({str(started)!r}, "w").write("yes")
        time.sleep(120)
    """)
    results = []
    thread = threading.Thread(target=lambda: results.append(CommandAgent(argv).run("", workspace, timeout=120)))
    thread.start()
    deadline = time.monotonic() + 20
    while not started.exists():
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.05)
    assert stop_all_agents() == 1
    thread.join(timeout=20)
    assert not thread.is_alive()
    [result] = results
    assert result.status == "failed" and result.exit_code == -15
    assert stop_all_agents() == 0  # nothing left running
