"""`personabot try`: a real agent process on a temporary copy of a real git checkout.

The agent is a small Python script written into tmp_path and configured exactly as an operator
would (PERSONABOT_AGENT=command, PERSONABOT_AGENT_COMMAND); the checkout is a git repository with a
remote, an untracked and an ignored file. Each test asserts what the user reads and what is left
on disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from personabot.cli import main
from personabot.trylocal import Progress

TITLE = "🏗️ feat/builder: architecture for shop"

AGENT = r'''
import json, os, sys, time
from pathlib import Path

spec = json.loads(Path(sys.argv[1]).read_text())
prompt = sys.stdin.read()
if "record_prompt" in spec:
    Path(spec["record_prompt"]).write_text(prompt)
if "record_files" in spec:
    files = sorted(
        str(Path(d, f).relative_to(".")) for d, _, fs in os.walk(".") for f in fs
        if not str(Path(d, f).relative_to(".")).startswith(".git/")
    )
    git_config = Path(".git/config").read_text()
    Path(spec["record_files"]).write_text(json.dumps({"files": files, "git_config": git_config, "cwd": os.getcwd()}))
for path, text in spec.get("write", {}).items():
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
if "summary" in spec:
    Path(os.environ["PERSONABOT_SUMMARY_FILE"]).write_text(spec["summary"])
for line in spec.get("say", []):
    print(line, flush=True)
time.sleep(spec.get("sleep", 0))
sys.exit(spec.get("exit", 0))
'''


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *ident, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root, `.git/` included, with its content hash and mode."""
    result = {}
    for current, _, files in os.walk(root):
        for name in files:
            path = Path(current, name)
            info = path.lstat()
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            result[str(path.relative_to(root))] = f"{oct(info.st_mode)} {hashlib.sha256(data).hexdigest()}"
    return result


class Env:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        self.checkout = tmp_path / "shop"
        self.checkout.mkdir()
        (self.checkout / "README.md").write_text("# Shop\n")
        (self.checkout / ".gitignore").write_text("*.local\n")
        git(self.checkout, "init", "-q", "--initial-branch=main")
        git(self.checkout, "remote", "add", "origin", "https://github.com/octo-org/shop.git")
        git(self.checkout, "add", "-A")
        git(self.checkout, "commit", "-qm", "base")
        (self.checkout / "untracked.txt").write_text("not committed yet\n")
        (self.checkout / "settings.local").write_text("ignored by git\n")
        self.script = tmp_path / "agent.py"
        self.script.write_text(AGENT)
        self.instructions = tmp_path / "agent.json"
        self.agent_does()
        # Temporary copies go here, so a test can see what is left behind.
        self.temp = tmp_path / "temp"
        self.temp.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(self.temp))
        for name in list(os.environ):
            if name.startswith(("PERSONABOT_", "LOG_")) or name in ("PRIVATE_KEY", "WEBHOOK_SECRET", "APP_ID"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("PERSONABOT_AGENT", "command")
        command = [sys.executable, str(self.script), str(self.instructions)]
        monkeypatch.setenv("PERSONABOT_AGENT_COMMAND", shlex.join(command))
        monkeypatch.setenv("PERSONABOT_AGENT_TIMEOUT", "30")
        cwd = tmp_path / "cwd"  # no stray .env is read
        cwd.mkdir()
        monkeypatch.chdir(cwd)

    def agent_does(self, **spec: Any) -> None:
        self.instructions.write_text(json.dumps(spec))

    def leftovers(self) -> list[str]:
        return sorted(path.name for path in self.temp.iterdir())


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    return Env(tmp_path, monkeypatch)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["try", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prints_title_stat_verdict_and_body_without_touching_the_checkout(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(env.checkout)
    listing = env.tmp / "listing.json"
    env.agent_does(
        record_files=str(listing),
        write={"docs/notes.md": "notes\n", "README.md": "# Shop\n\nNow documented.\n"},
        summary="Documented the shop's schema.",
    )
    monkeypatch.chdir(env.checkout)  # PATH defaults to the current folder

    code, out, err = run(capsys, "builder")

    assert code == 0, err
    assert TITLE in out
    assert "2 files changed: 1 added, 1 modified" in out
    assert "A docs/notes.md (6 bytes)" in out
    assert "M README.md (24 bytes)" in out
    assert "guardrails: allowed" in out
    body = out.split("--- pull request body ---\n", 1)[1]
    assert body.startswith("Documented the shop's schema.")
    assert "<!-- personabot:persona=builder key=octo-org/shop:builder run=0 -->" in body
    assert "Closes #" not in body
    # the original is exactly as it was; the copy had tracked, untracked and ignored files, not .git
    assert tree_digest(env.checkout) == before
    seen = json.loads(listing.read_text())
    assert {"README.md", ".gitignore", "untracked.txt", "settings.local"} <= set(seen["files"])
    assert "[remote" not in seen["git_config"], "the copy must not carry the checkout's git config"
    assert Path(seen["cwd"]) != env.checkout
    assert env.leftovers() == [], "the copy is removed without --keep"
    assert "running agent command (" in err


def test_default_summary_when_the_agent_writes_none(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.agent_does(write={"schema.sql": "create table t (id int primary key);\n"})
    code, out, err = run(capsys, "builder", str(env.checkout))
    assert code == 0, err
    body = out.split("--- pull request body ---\n", 1)[1]
    assert "Changes made by the 🏗️ builder persona." in body
    assert "A schema.sql (37 bytes)" in body


def test_workflow_change_is_refused_with_the_reason_and_log_tail(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.agent_does(write={".github/workflows/x.yml": "on: push\n"}, say=["adding a workflow now"], summary="CI")
    code, out, err = run(capsys, "builder", str(env.checkout))
    assert code == 1
    assert "guardrails: refused" in out
    assert "`.github/workflows/x.yml`" in out
    assert "personabot refused the agent's changes" in out
    assert "pull request body" not in out
    assert "adding a workflow now" in err
    assert not (env.checkout / ".github").exists()


def test_repository_config_allows_workflows(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    (env.checkout / ".github").mkdir()
    (env.checkout / ".github" / "personabot.yml").write_text("allow_workflows: true\n")
    env.agent_does(write={".github/workflows/x.yml": "on: push\n"})
    code, out, err = run(capsys, "builder", str(env.checkout))
    assert code == 0, err
    assert "A .github/workflows/x.yml (9 bytes)" in out
    assert "guardrails: allowed" in out


def test_repository_limits_apply(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    (env.checkout / ".github").mkdir()
    (env.checkout / ".github" / "personabot.yml").write_text("limits:\n  max_files: 1\n")
    env.agent_does(write={"a.txt": "a\n", "b.txt": "b\n"})
    code, out, _ = run(capsys, "builder", str(env.checkout))
    assert code == 1
    assert "guardrails: refused" in out
    assert "all changes together" in out


def test_invalid_repository_config_stops_before_the_agent(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    (env.checkout / ".github").mkdir()
    (env.checkout / ".github" / "personabot.yml").write_text("draft: false\nbogus: 1\n")
    prompt = env.tmp / "prompt.txt"
    env.agent_does(record_prompt=str(prompt))
    code, out, err = run(capsys, "builder", str(env.checkout))
    assert code == 1
    assert "`.github/personabot.yml`, line 2: bogus: unknown key" in err
    assert not prompt.exists()
    assert env.leftovers() == []


def test_keep_leaves_the_copy_with_the_agents_work(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.agent_does(write={"docs/notes.md": "notes\n"})
    code, out, err = run(capsys, "builder", str(env.checkout), "--keep")
    assert code == 0, err
    kept_line = next(line for line in out.splitlines() if line.startswith("kept the copy at "))
    copy = Path(kept_line.removeprefix("kept the copy at "))
    assert copy.is_dir() and copy.name == "shop"
    assert (copy / "docs" / "notes.md").read_text() == "notes\n"
    assert (copy / "untracked.txt").exists()
    assert not (env.checkout / "docs").exists()
    # the copy is a git repository whose single commit is the base: `git diff` shows the agent's work
    assert "docs/" in git(copy, "status", "--porcelain")


def test_no_agent_configured_is_a_usage_error(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERSONABOT_AGENT")
    code, out, err = run(capsys, "builder", str(env.checkout))
    assert code == 2
    assert "no agent configured: set PERSONABOT_AGENT" in err
    assert "PERSONABOT_AGENT=command" in err
    assert out == ""
    assert env.leftovers() == []


def test_issue_title_and_body_reach_the_prompt(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    prompt = env.tmp / "prompt.txt"
    env.agent_does(record_prompt=str(prompt), write={"x.txt": "x\n"}, summary="Did it.")
    code, out, err = run(
        capsys, "builder", str(env.checkout),
        "--issue-title", "Add an orders table", "--issue-body", "Orders need a customer.<!-- hidden -->",
    )
    assert code == 0, err
    text = prompt.read_text()
    assert "**Add an orders table**" in text
    assert "Orders need a customer." in text
    assert "hidden" not in text  # issue text is sanitised as on the server
    assert "of `octo-org/shop`" in text
    assert "Closes #" not in out


def test_issue_number_closes_the_issue(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    prompt = env.tmp / "prompt.txt"
    env.agent_does(record_prompt=str(prompt), write={"x.txt": "x\n"}, summary="Did it.")
    code, out, err = run(capsys, "builder", str(env.checkout), "--issue-title", "Orders", "--issue-number", "12")
    assert code == 0, err
    assert "issue #12 of `octo-org/shop`" in prompt.read_text()
    assert "personabot/builder-issue-12" in out
    assert "Closes #12" in out.split("--- pull request body ---\n", 1)[1]


def test_manual_trigger_without_an_issue(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    prompt = env.tmp / "prompt.txt"
    env.agent_does(record_prompt=str(prompt))
    code, out, err = run(capsys, "builder", str(env.checkout))
    assert code == 0, err
    assert "This run was started by a `manual` trigger." in prompt.read_text()
    assert "no changes" in out
    assert "pull request body" not in out


def test_agent_failure_prints_why_and_the_log_tail(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.agent_does(write={"x.txt": "x\n"}, say=[f"line {i}" for i in range(40)] + ["it broke"], exit=3)
    code, out, err = run(capsys, "builder", str(env.checkout))
    assert code == 1
    assert "the agent failed with exit code 3" in err
    assert "it broke" in err and "line 39" in err
    assert "line 5\n" not in err  # only the tail
    assert "pull request body" not in out


def test_agent_timeout(env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONABOT_AGENT_TIMEOUT", "0.5")
    env.agent_does(say=["thinking"], sleep=20)
    started = time.monotonic()
    code, _, err = run(capsys, "builder", str(env.checkout))
    assert code == 1
    assert "the agent timed out after 0.5 s" in err
    assert time.monotonic() - started < 15
    assert env.leftovers() == []


def test_repository_and_extra_personas(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    folder = env.checkout / ".github" / "personas"
    folder.mkdir(parents=True)
    (folder / "tidy.md").write_text('---\nid: tidy\nemoji: "🧹"\ntitle: "{{ emoji }} tidy {{ repo_full }}"\n---\nTidy up.\n')
    extra = env.tmp / "extra"
    extra.mkdir()
    (extra / "tidy.md").write_text('---\nid: tidy\ntitle: "extra tidy for {{ repo }}"\n---\nTidy more.\n')
    code, out, err = run(capsys, "tidy", str(env.checkout))
    assert code == 0, err
    assert "🧹 tidy octo-org/shop" in out
    code, out, err = run(capsys, "tidy", str(env.checkout), "--dir", str(extra))
    assert code == 0, err
    assert "extra tidy for shop" in out


def test_unknown_persona_is_a_usage_error(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "nobody", str(env.checkout))
    assert code == 2
    assert "no persona 'nobody'; known: builder" in err


def test_folder_name_when_there_is_no_remote(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    git(env.checkout, "remote", "remove", "origin")
    env.agent_does(write={"x.txt": "x\n"})
    code, out, err = run(capsys, "builder", str(env.checkout))
    assert code == 0, err
    assert TITLE in out
    assert "key=local/shop:builder" in out


def test_missing_checkout_is_a_usage_error(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "builder", str(env.tmp / "nowhere"))
    assert code == 2
    assert "nowhere" in err and "not a folder" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_updates_in_place_on_a_terminal() -> None:
    stream = _Terminal()
    with Progress(stream, "running agent x on /tmp/c", interval=0.05):
        time.sleep(0.3)
    text = stream.getvalue()
    assert text.count("\r") >= 3
    assert text.endswith("\n") and text.count("\n") == 1
    assert "running agent x on /tmp/c … 0 s" in text


def test_progress_is_one_line_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress(stream, "running agent x on /tmp/c", interval=0.05):
        time.sleep(0.2)
    assert stream.getvalue() == "running agent x on /tmp/c …\n"


def test_ctrl_c_stops_the_agent_and_removes_the_copy(env: Env) -> None:
    pid_file = env.tmp / "agent.pid"
    env.instructions.write_text(json.dumps({"sleep": 60}))
    # The agent records its pid first; the script's own spec handling does the sleeping.
    env.script.write_text(f"import os; open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n" + AGENT)
    process_env = {**os.environ, "TMPDIR": str(env.temp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "personabot.cli", "try", "builder", str(env.checkout)],
        env=process_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    agent_pid = None
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        agent_pid = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130
        assert "interrupted; the agent was stopped" in err
        with pytest.raises(ProcessLookupError):
            os.kill(agent_pid, 0)
        assert env.leftovers() == []
    finally:
        proc.kill()
        proc.wait()
        if agent_pid is not None:  # never leave the agent behind when the test fails
            try:
                os.killpg(agent_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_subfolder_is_copied_alone_with_a_note(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    sub = env.checkout / "pkg"
    sub.mkdir()
    (sub / "mod.py").write_text("x = 1\n")
    listing = env.tmp / "listing.json"
    env.agent_does(record_files=str(listing))
    code, out, err = run(capsys, "builder", str(sub))
    assert code == 0, err
    assert f"note: {sub} is inside the checkout {env.checkout}; only pkg/ is copied" in out
    assert json.loads(listing.read_text())["files"] == ["mod.py"]
