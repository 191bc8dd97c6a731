"""`personabot try`: one persona run on a temporary copy of a local checkout, without GitHub.

It answers "what would the server do with this persona here?" before anything is installed: the
same personas, rendering, agent, guardrails and PR text as a server run (the runner's own pure
helpers), on a copy, so the checkout the user works in is never touched by the agent. Nothing is
pushed and no GitHub credential is needed.

The copy takes every file of the working tree, tracked or not, ignored or not (the server's
workspace is the whole repository, and a local try is mostly about uncommitted work), but not the
checkout's `.git/`: the agent gets a fresh local repository with one base commit, no remotes and no
credentials from the user's git config.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TextIO

from pydantic import ValidationError

from personabot.agents import Agent, agent_from_settings
from personabot.changes import Entry, Verdict, check
from personabot.errors import PermanentError
from personabot.personas import (
    Persona,
    PersonaError,
    PersonaSet,
    builtin_dir,
    load_folders,
    read_journal_entries,
    render_prompt,
    render_title,
)
from personabot.repoconfig import (
    CONFIG_PATH,
    RepoConfig,
    RepoConfigError,
    parse_repo_config,
)
from personabot.runner import (
    agent_problem,
    branch_name,
    log_tail,
    pr_body,
    pr_marker,
    pr_summary,
    run_context,
)
from personabot.settings import Settings, load_settings
from personabot.triggers import IssueInfo, RunSpec
from personabot.workspace import GIT_ENV, agent_changes, commit_base

LOCAL_RUN_ID = 0  # marker and branch names need a run id; a local try has no stored run
LOCAL_OWNER = "local"  # owner of `local/<folder>` when the checkout has no usable remote
PROGRESS_INTERVAL = 1.0

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # what a shell reports for Ctrl-C
NO_AGENT_HINT = """
For example, in the environment or in a .env file in the current folder:
  PERSONABOT_AGENT=claude
or any command that reads the prompt on stdin (or from $PERSONABOT_PROMPT_FILE):
  PERSONABOT_AGENT=command
  PERSONABOT_AGENT_COMMAND='my-agent --non-interactive'"""


class UsageError(Exception):
    """The command cannot start as asked (exit 2): the message says what to change."""


@dataclass(frozen=True)
class TryRequest:
    persona: str
    checkout: Path = Path(".")
    issue_title: str | None = None
    issue_body: str | None = None
    issue_number: int | None = None
    keep: bool = False
    dirs: tuple[Path, ...] = ()


# --- pure helpers ----------------------------------------------------------------------------

_REMOTE = re.compile(r"[:/](?P<owner>[^/:]+)/(?P<name>[^/]+?)(?:\.git)?/?$")


def repo_from_remote(url: str) -> str | None:
    """`owner/name` from a GitHub-style remote URL (https, ssh or scp form), else None."""
    match = _REMOTE.search(url.strip())
    if match is None:
        return None
    return f"{match['owner']}/{match['name']}"


def local_spec(
    persona: Persona, repository: str, default_branch: str, request: TryRequest, config: RepoConfig
) -> RunSpec:
    """The RunSpec a server would have planned for this request.

    With an issue title the run looks like a `persona:<id>` label on that issue; the number is
    only known when given (0 in the prompt otherwise, and then no `Closes #N` in the PR body).
    """
    issue = None
    if request.issue_title is not None:
        number = request.issue_number or 0
        issue = IssueInfo(
            number=number,
            title=request.issue_title,
            body=request.issue_body or "",
            url=f"https://github.com/{repository}/issues/{number}" if request.issue_number else "",
            labels=(f"{config.label_prefix}{persona.id}",),
            author="",
        )
    key = f"{repository}#{request.issue_number}:{persona.id}" if request.issue_number else f"{repository}:{persona.id}"
    return RunSpec(
        repository=repository,
        default_branch=default_branch,
        installation_id=0,
        persona=persona.id,
        trigger="label" if issue else "manual",
        event="issues" if issue else "",
        issue_number=request.issue_number if issue else None,
        concurrency_key=key,
        issue=issue,
    )


def agent_label(settings: Settings) -> str:
    """How the progress line names the agent: the preset, or `command (<program>)`."""
    if settings.agent == "command":
        try:
            program = shlex.split(settings.agent_command or "")[0]
        except (ValueError, IndexError):
            return "command"
        return f"command ({Path(program).name})"
    return settings.agent or "?"


# --- disk: the copy and the checkout's identity ------------------------------------------------


def copy_checkout(source: Path, dest: Path) -> int:
    """Copy the working tree (without the top `.git`) to `dest`; returns the number of files.

    Symlinks are copied as links, never followed; fifos, sockets and devices are skipped (git
    cannot hold them, and opening a fifo would block).
    """
    count = 0
    dest.mkdir(parents=True)
    for current, dirnames, filenames in os.walk(source, followlinks=False):
        here = Path(current)
        target = dest / here.relative_to(source)
        if here == source:
            dirnames[:] = [name for name in dirnames if name != ".git"]
            filenames = [name for name in filenames if name != ".git"]  # a worktree's pointer file
        for name in list(dirnames):
            path = here / name
            if path.is_symlink():
                os.symlink(os.readlink(path), target / name)
                dirnames.remove(name)
                count += 1
            else:
                (target / name).mkdir()
        for name in filenames:
            path = here / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(path), target / name)
            elif stat.S_ISREG(info.st_mode):
                try:
                    shutil.copy2(path, target / name, follow_symlinks=False)
                except OSError as exc:
                    raise PermanentError(f"cannot copy {path}: {exc.strerror or exc}") from None
            else:
                continue
            count += 1
    return count


def _git_output(checkout: Path, *args: str) -> str | None:
    env = {"PATH": os.environ.get("PATH", os.defpath), **GIT_ENV}
    try:
        result = subprocess.run(["git", *args], cwd=checkout, env=env, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def repository_name(checkout: Path) -> str:
    """`owner/name` from the `origin` remote when there is one, else `local/<folder name>`."""
    url = _git_output(checkout, "remote", "get-url", "origin")
    return (repo_from_remote(url) if url else None) or f"{LOCAL_OWNER}/{checkout.resolve().name}"


def current_branch(checkout: Path) -> str:
    return _git_output(checkout, "symbolic-ref", "--quiet", "--short", "HEAD") or "main"


def read_repo_config(checkout: Path) -> RepoConfig:
    """The checkout's `.github/personabot.yml` (defaults when absent); RepoConfigError if invalid."""
    path = checkout / CONFIG_PATH
    return parse_repo_config(path.read_text(encoding="utf-8") if path.is_file() else None)


def persona_folders(
    settings: Settings, checkout: Path, config: RepoConfig, extra: Sequence[Path]
) -> list[tuple[str, Path]]:
    """Lowest precedence first: built-in, PERSONABOT_PERSONAS_DIR, the checkout's, then each --dir."""
    folders = [("builtin", builtin_dir())]
    if settings.personas_dir is not None:
        folders.append((str(settings.personas_dir), settings.personas_dir))
    repo_dir = checkout / config.personas_dir.strip("/")
    if repo_dir.is_dir():  # the server treats a missing folder as "no repository personas" too
        folders.append((config.personas_dir.strip("/"), repo_dir))
    folders.extend((str(path), path) for path in extra)
    return folders


# --- progress --------------------------------------------------------------------------------


class Progress:
    """`label … 12 s` on stderr while something runs: updated in place on a terminal, else one line.

    A log file or CI output gets a single line instead of a line per second.
    """

    def __init__(self, stream: TextIO, label: str, *, interval: float = PROGRESS_INTERVAL) -> None:
        self.stream = stream
        self.label = label
        self.interval = interval
        self.tty = stream.isatty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._width = 0

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self.tty:
            self._draw()
            self._thread = threading.Thread(target=self._tick, name="personabot-progress", daemon=True)
            self._thread.start()
        else:
            self.stream.write(f"{self.label} …\n")
            self.stream.flush()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def _draw(self) -> None:
        line = f"{self.label} … {time.monotonic() - self._started:.0f} s"
        # Pad over a longer previous line so no stale characters remain.
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)


# --- the command -----------------------------------------------------------------------------


def try_persona(request: TryRequest, settings: Settings, out: TextIO, err: TextIO) -> int:
    """Run the persona on a copy of the checkout and print what the server would do; the exit code."""
    checkout = request.checkout.resolve()
    if not checkout.is_dir():
        raise UsageError(f"{request.checkout} is not a folder (expected a checkout of a repository)")
    if request.issue_title is None and (request.issue_body is not None or request.issue_number is not None):
        raise UsageError("--issue-body and --issue-number describe an issue: give --issue-title too")
    try:
        agent = agent_from_settings(settings)
    except PermanentError as exc:
        hint = NO_AGENT_HINT if not (settings.agent or "").strip() else ""
        raise UsageError(f"{exc}{hint}") from None
    config = read_repo_config(checkout)  # RepoConfigError: exit 1 with its message
    personas = load_folders(persona_folders(settings, checkout, config, request.dirs))
    try:
        persona = personas.get(request.persona)
    except PersonaError as exc:
        if exc.file is None:  # no such persona (a broken persona file names itself: exit 1)
            raise UsageError(str(exc)) from None
        raise
    for error in personas.errors:
        print(f"warning: {error}", file=err)
    for note in _notes(persona, config, checkout):
        print(f"note: {note}", file=out)

    parent = Path(tempfile.mkdtemp(prefix="personabot-try-"))
    keep = request.keep
    try:
        copy = parent / checkout.name
        copy_checkout(checkout, copy)
        base = commit_base(copy, parent / "git", message="personabot try: base (a copy of the working tree)")
        return _run(agent, settings, request, checkout, copy, base, persona, personas, config, out, err)
    finally:
        if keep:
            print(f"kept the copy at {parent / checkout.name}", file=out)
        else:
            shutil.rmtree(parent, ignore_errors=True)


def _notes(persona: Persona, config: RepoConfig, checkout: Path) -> list[str]:
    notes = []
    top = _git_output(checkout, "rev-parse", "--show-toplevel")
    if top is not None and Path(top).resolve() != checkout:
        # Not resolved up on purpose: a folder inside a git-tracked home directory must not
        # turn into a copy of the whole home directory.
        notes.append(
            f"{checkout} is inside the checkout {top}; only {checkout.name}/ is copied "
            f"(pass {top} to try the whole repository)"
        )
    if config.persona(persona.id) is None:
        notes.append(f"{CONFIG_PATH} sets {persona.id} to false: the server would never run it here")
    if not persona.enabled:
        notes.append(f"{persona.id} is disabled (enabled: false): the server would not run it")
    return notes


def _run(
    agent: Agent,
    settings: Settings,
    request: TryRequest,
    checkout: Path,
    copy: Path,
    base: Mapping[str, Entry],
    persona: Persona,
    personas: PersonaSet,
    config: RepoConfig,
    out: TextIO,
    err: TextIO,
) -> int:
    repository = repository_name(checkout)
    branch = current_branch(checkout)
    spec = local_spec(persona, repository, branch, request, config)
    context = run_context(
        persona,
        spec,
        default_branch=branch,
        base_branch=branch,
        open_prs=[],  # no GitHub: the prompt sees no open pull requests
        journal_entries=read_journal_entries(copy, persona.id),
        run_id=LOCAL_RUN_ID,
        date=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    title = render_title(persona, personas, context)
    prompt = render_prompt(persona, personas, context)
    print(f"title: {title}", file=out)
    print(f"branch: {branch_name(persona, spec, LOCAL_RUN_ID)} (from {branch})", file=out)
    out.flush()

    with Progress(err, f"running agent {agent_label(settings)} on {copy}"):
        result = agent.run(prompt, copy, settings.agent_timeout)
    problem = agent_problem(result, settings.agent_timeout)
    print(f"agent: {result.status} in {result.duration:.1f} s", file=out)
    if problem is not None:
        _fail(err, problem, result.log)
        return EXIT_FAILED

    changes = agent_changes(copy, base, copy.parent / "git", max_bytes=config.limits.max_total_bytes)
    print(file=out)
    if changes.is_empty:
        print("no changes: the agent left the repository as it was; the server would open no PR", file=out)
        return EXIT_OK
    print(changes.stat(), file=out)
    verdict = check(changes, allow_workflows=config.allow_workflows, limits=config.limits)
    _print_verdict(out, verdict)
    if not verdict.allowed:
        _fail(err, "the changes were refused; the server would push nothing", result.log)
        return EXIT_FAILED
    _print_body(out, persona, config, spec, pr_summary(result, persona, changes))
    return EXIT_OK


def _print_verdict(out: TextIO, verdict: Verdict) -> None:
    print(file=out)
    if verdict.allowed:
        print("guardrails: allowed", file=out)
    else:
        print("guardrails: refused", file=out)
        print(verdict.message(), file=out)


def _print_body(out: TextIO, persona: Persona, config: RepoConfig, spec: RunSpec, summary: str) -> None:
    marker = pr_marker(persona.id, spec.concurrency_key, LOCAL_RUN_ID)
    body = pr_body(summary, spec, [], marker)
    if persona.automation_mode == "MANUAL":
        print("\nMANUAL mode: the server would push the branch and open no PR; this body is for reference", file=out)
    elif config.draft:
        print("\nthe server would open this PR as a draft (draft: true)", file=out)
    print("\n--- pull request body ---", file=out)
    print(body, file=out)
    print("--- end of pull request body ---", file=out)


def _fail(err: TextIO, problem: str, agent_log: str) -> None:
    print(f"personabot try: {problem}", file=err)
    tail = log_tail(agent_log)
    if tail:
        print("last lines of the agent's log:", file=err)
        for line in tail.splitlines():
            print(f"  {line}", file=err)


def main(
    request: TryRequest, out: TextIO = sys.stdout, err: TextIO = sys.stderr, settings: Settings | None = None
) -> int:
    """`try_persona` with the given settings (read from the environment and `.env` when None);
    errors become exit codes."""
    if settings is None:
        try:
            settings = load_settings()
        except ValidationError as exc:
            print(f"personabot try: invalid settings:\n{exc}", file=err)
            return EXIT_USAGE
    try:
        return try_persona(request, settings, out, err)
    except UsageError as exc:
        print(f"personabot try: {exc}", file=err)
        return EXIT_USAGE
    except (RepoConfigError, PersonaError, PermanentError) as exc:
        print(f"personabot try: {exc}", file=err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\npersonabot try: interrupted; the agent was stopped", file=err)
        return EXIT_INTERRUPTED
