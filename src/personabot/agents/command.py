"""Run any coding-agent CLI as a subprocess in the workspace.

The agent is untrusted code working on untrusted input, so it gets: no shell, the workspace as its
working directory, an environment built from scratch (never the App key, the webhook secret or a
token), a temporary HOME, and its own process group so that a timeout kills everything it started.

The prompt reaches it twice, on stdin and in a file named by $PERSONABOT_PROMPT_FILE, because CLIs
differ in which they accept. It may write the pull-request summary to $PERSONABOT_SUMMARY_FILE.
Both files live outside the workspace so they never end up in the commit.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from personabot.agents.base import AgentResult, AgentStatus, redact

log = logging.getLogger(__name__)

OUTPUT_CAP = 1024 * 1024  # bytes of output kept (the tail: errors come last)
SUMMARY_CAP = 64 * 1024
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
POLL_INTERVAL = 0.05

# Never passed through, even when listed in PERSONABOT_AGENT_ENV: the agent must not be able to act
# as the App, forge webhooks, or reach the database.
FORBIDDEN_ENV = frozenset(
    {
        "PRIVATE_KEY",
        "PRIVATE_KEY_PATH",
        "WEBHOOK_SECRET",
        "GITHUB_CLIENT_SECRET",
        "DATABASE_URL",
        "PERSONABOT_TEST_DATABASE_URL",
    }
)
# Set by personabot itself; a listed name cannot override them.
_OWN_ENV = frozenset({"PATH", "LANG", "HOME", "PERSONABOT_PROMPT_FILE", "PERSONABOT_SUMMARY_FILE"})

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def allowed_env_names(names: Iterable[str]) -> list[str]:
    """The pass-through names minus the forbidden ones (each refusal is logged once, here)."""
    allowed: list[str] = []
    for name in names:
        if name in FORBIDDEN_ENV:
            log.warning("PERSONABOT_AGENT_ENV lists %s: refused, the agent never gets it", name)
        elif name in _OWN_ENV:
            log.warning("PERSONABOT_AGENT_ENV lists %s: ignored, personabot sets it", name)
        elif name not in allowed:
            allowed.append(name)
    return allowed


def expand(argument: str, env: Mapping[str, str]) -> str:
    """Replace $NAME / ${NAME} with the agent's own environment values (no shell involved).

    Lets a command line say `--message-file $PERSONABOT_PROMPT_FILE`; names the agent does not get
    stay as written.
    """
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), argument)


class _TailBuffer:
    """Keeps the last `cap` bytes of a stream and counts what was dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        excess = len(self.data) - self.cap
        if excess > 0:
            del self.data[:excess]
            self.dropped += excess

    def text(self) -> str:
        body = self.data.decode("utf-8", errors="replace")
        if self.dropped:
            return f"[personabot: {self.dropped} earlier bytes of output dropped]\n{body}"
        return body


class CommandAgent:
    """An agent run as `argv` (already split: no shell) inside the workspace."""

    def __init__(
        self,
        argv: Sequence[str],
        env_names: Sequence[str] = (),
        *,
        secrets: Iterable[str] = (),
        output_cap: int = OUTPUT_CAP,
        kill_grace: float = KILL_GRACE,
        parent_env: Mapping[str, str] | None = None,
    ) -> None:
        if not argv:
            raise ValueError("CommandAgent needs a command")
        self.argv = list(argv)
        self.env_names = allowed_env_names(env_names)
        self._secrets = [s for s in secrets if s]
        self._output_cap = output_cap
        self._kill_grace = kill_grace
        self._parent_env = parent_env

    def _environment(self, home: Path, prompt_file: Path, summary_file: Path) -> dict[str, str]:
        parent = os.environ if self._parent_env is None else self._parent_env
        env = {
            "PATH": parent.get("PATH", os.defpath),
            "LANG": parent.get("LANG", "C.UTF-8"),
            "HOME": str(home),
            "PERSONABOT_PROMPT_FILE": str(prompt_file),
            "PERSONABOT_SUMMARY_FILE": str(summary_file),
        }
        for name in self.env_names:
            if name in parent:
                env[name] = parent[name]
        return env

    def run(self, prompt: str, workspace: Path, timeout: float) -> AgentResult:
        started = time.monotonic()
        scratch = Path(tempfile.mkdtemp(prefix="personabot-agent-"))
        try:
            home = scratch / "home"
            home.mkdir()
            prompt_file = scratch / "prompt.md"
            prompt_file.write_text(prompt, encoding="utf-8")
            summary_file = scratch / "summary.md"
            env = self._environment(home, prompt_file, summary_file)
            # Values of passed-through variables (API keys) are secrets too when the agent echoes them.
            secrets = [*self._secrets, *(env[n] for n in self.env_names if n in env)]
            argv = [expand(arg, env) for arg in self.argv]
            return self._run(argv, env, prompt, Path(workspace), timeout, summary_file, secrets, started)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _run(
        self,
        argv: list[str],
        env: dict[str, str],
        prompt: str,
        workspace: Path,
        timeout: float,
        summary_file: Path,
        secrets: list[str],
        started: float,
    ) -> AgentResult:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=workspace,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
                close_fds=True,
            )
        except OSError as exc:
            message = f"personabot: could not start the agent {argv[0]!r}: {exc.strerror or exc}"
            return AgentResult("failed", "", redact(message, secrets), None, time.monotonic() - started)

        with _live_lock:
            _live_groups.add(proc.pid)
        try:
            return self._supervise(proc, prompt, timeout, summary_file, secrets, started)
        except BaseException:
            # Ctrl-C in `personabot try`, or the worker shutting down, at any point after the start:
            # the agent runs in its own session, so no signal reaches it by itself; it must not
            # outlive us in a removed folder.
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            with _live_lock:
                _live_groups.discard(proc.pid)

    def _supervise(
        self,
        proc: subprocess.Popen[bytes],
        prompt: str,
        timeout: float,
        summary_file: Path,
        secrets: list[str],
        started: float,
    ) -> AgentResult:
        output = _TailBuffer(self._output_cap)
        assert proc.stdin is not None and proc.stdout is not None
        writer = threading.Thread(target=_feed, args=(proc.stdin, prompt), daemon=True)
        reader = threading.Thread(target=_drain, args=(proc.stdout, output), daemon=True)
        writer.start()
        reader.start()

        timed_out = not _wait_unreaped(proc.pid, timeout)
        if timed_out:
            log.warning("agent exceeded %.0fs: terminating its process group", timeout)
            _signal_group(proc.pid, signal.SIGTERM)
            _wait_unreaped(proc.pid, self._kill_grace)
        # Whatever the agent left running (background servers, watchers) goes with it. The leader
        # is not reaped yet, so its process group id cannot have been reused by now.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(timeout=5)
        writer.join(timeout=1)
        proc.stdout.close()

        log_text = output.text()
        if timed_out:
            log_text += f"\n[personabot: stopped after {timeout:g}s: the agent's process group was killed]\n"
        summary = _read_summary(summary_file)
        status: AgentStatus = "timeout" if timed_out else ("ok" if proc.returncode == 0 else "failed")
        return AgentResult(
            status=status,
            summary=redact(summary, secrets),
            log=redact(log_text, secrets),
            exit_code=proc.returncode,
            duration=time.monotonic() - started,
        )


# Process groups of agents running now, so a stopping worker can end them: their threads are left
# behind after the grace period, and an agent in its own session would outlive the process.
_live_groups: set[int] = set()
_live_lock = threading.Lock()


def stop_all_agents() -> int:
    """SIGTERM every running agent's process group (at shutdown); returns how many were signalled.

    The runs that own them were already released to the queue; their threads see a failed agent
    and their outcome is discarded because the worker no longer holds the lease.
    """
    with _live_lock:
        groups = list(_live_groups)
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    return len(groups)


def _feed(stream, prompt: str) -> None:  # type: ignore[no-untyped-def]
    try:
        stream.write(prompt.encode("utf-8"))
    except (BrokenPipeError, OSError):
        pass  # agents that read the prompt file instead may close stdin early
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _drain(stream, buffer: _TailBuffer) -> None:  # type: ignore[no-untyped-def]
    while True:
        chunk = stream.read1(65536)
        if not chunk:
            return
        buffer.add(chunk)


def _wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait for `pid` to exit without reaping it (so its group id stays reserved). True if it did."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        if info is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_summary(path: Path) -> str:
    try:
        # O_NOFOLLOW: a summary that is a symlink to some host file is not read.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(SUMMARY_CAP)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").strip()
