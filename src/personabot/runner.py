"""One run, start to finish: the only module that knows the whole sequence.

    token -> config and personas -> branch and PR state -> workspace at the right commit
    -> prompt -> agent -> changes and guardrails -> one commit -> ref (never forced) -> PR
    -> status on the issue

Every decision about a branch is made before the agent runs, so a run that will be skipped costs
no agent time, and nothing reaches GitHub until the changes passed the guardrails: a refused or
failed run leaves no half-written branch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from personabot import onboarding
from personabot.agents import Agent, AgentResult
from personabot.changes import ChangeSet, FileChange, check
from personabot.errors import PermanentError, RateLimited, TransientError
from personabot.github import (
    BranchHead,
    GitHubAPIError,
    GitHubApp,
    Installation,
    PullRequest,
    TreeEntry,
)
from personabot.metrics import AGENT_SECONDS
from personabot.personas import (
    Persona,
    PersonaError,
    Source,
    build_context,
    read_journal_entries,
    render_prompt,
    render_title,
)
from personabot.planner import RepositorySetup, load_repository
from personabot.repoconfig import CONFIG_PATH, RepoConfig
from personabot.triggers import RunSpec
from personabot.workspace import Workspace

log = logging.getLogger(__name__)

OutcomeStatus = Literal["succeeded", "skipped", "failed", "awaiting_approval"]
BRANCH_PREFIX = "personabot/"
WRITE_PERMISSIONS = ("admin", "maintain", "write")
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class RunOutcome:
    """What a run ended with; the worker stores it and the status comment shows it."""

    status: OutcomeStatus
    message: str
    branch: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None


class ClaimedRunLike(Protocol):
    """What the runner needs of a claimed run (the store's `ClaimedRun`)."""

    @property
    def id(self) -> int: ...

    @property
    def spec(self) -> RunSpec: ...

    @property
    def attempts(self) -> int: ...


# --- pure helpers: names and texts the user sees --------------------------------------------------


def branch_name(persona: Persona, spec: RunSpec, run_id: int) -> str:
    """`personabot/<persona>[-issue-<n>][/<run id>]`: one branch per persona and key.

    Issue branches are `-issue-<n>`, not `/issue-<n>`: git cannot hold `personabot/builder` and
    `personabot/builder/issue-3` at once (one ref would have to be a file and a folder), so a
    persona with both push and label triggers could never open its second kind of PR.
    """
    name = f"{BRANCH_PREFIX}{persona.id}"
    if spec.issue_number is not None:
        name += f"-issue-{spec.issue_number}"
    if not persona.dedupe:
        name += f"/{run_id}"
    return name


def pr_marker(persona_id: str, key: str, run_id: int) -> str:
    return f"<!-- personabot:persona={persona_id} key={key} run={run_id} -->"


def status_marker(persona_id: str, run_id: int) -> str:
    return f"<!-- personabot:status persona={persona_id} run={run_id} -->"


def pr_body(summary: str, spec: RunSpec, notes: Sequence[str], marker: str) -> str:
    parts = [summary.strip()]
    parts.extend(f"> {note}" for note in notes)
    if spec.issue_number is not None:
        parts.append(f"Closes #{spec.issue_number}")
    parts.append(marker)
    return "\n\n".join(part for part in parts if part)


def _without_marker(body: str) -> str:
    return "\n".join(line for line in body.splitlines() if not line.startswith("<!-- personabot:")).strip()


def default_summary(persona: Persona, changes: ChangeSet) -> str:
    return f"Changes made by the {persona.emoji + ' ' if persona.emoji else ''}{persona.id} persona.\n\n```\n{changes.stat()}\n```"


def pr_summary(result: AgentResult, persona: Persona, changes: ChangeSet) -> str:
    """The PR description: what the agent wrote to its summary file, else a stat of the changes."""
    return result.summary.strip() or default_summary(persona, changes)


def agent_problem(result: AgentResult, timeout: float) -> str | None:
    """Why the agent's work cannot be used (timeout, failure), or None when it finished well."""
    if result.status == "timeout":
        return f"the agent timed out after {timeout:g} s and was stopped"
    if result.status != "ok":
        code = f" with exit code {result.exit_code}" if result.exit_code is not None else ""
        return f"the agent failed{code}"
    return None


def run_context(
    persona: Persona,
    spec: RunSpec,
    *,
    default_branch: str,
    base_branch: str,
    open_prs: Sequence[Mapping[str, object]],
    journal_entries: str,
    run_id: int,
    date: str,
) -> dict[str, Any]:
    """The template context of one run; `personabot try` builds its prompt through it too."""
    return build_context(
        persona,
        repo_full=spec.repository,
        default_branch=default_branch,
        base_branch=base_branch,
        trigger=spec.trigger,
        event=spec.event,
        issue=asdict(spec.issue) if spec.issue else None,
        push=asdict(spec.push) if spec.push else None,
        comment=(
            {"author": spec.comment_author or "", "body": spec.comment_body or ""}
            if spec.trigger == "comment"
            else None
        ),
        open_prs=open_prs,
        journal_entries=journal_entries,
        run_id=str(run_id),
        date=date,
    )


def log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def commit_message(title: str, summary: str, run_id: int) -> str:
    body = summary.strip()
    if len(body) > 4000:
        body = body[:4000].rstrip() + "\n…"
    return f"{title}\n\n{body}\n\npersonabot run {run_id}".replace("\n\n\n", "\n\n")


def tree_entries(changes: ChangeSet, upload_blob: Callable[[bytes], str]) -> list[TreeEntry]:
    """Text inline in the tree request; binary content as blobs first; deletions as `sha: null`."""
    entries: list[TreeEntry] = []
    for change in changes.files:
        entries.append(_tree_entry(change, upload_blob))
    return entries


def _tree_entry(change: FileChange, upload_blob: Callable[[bytes], str]) -> TreeEntry:
    if change.status == "deleted" or change.content is None:
        return TreeEntry(path=change.path, mode=change.mode or "100644", sha=None)
    mode = change.mode or "100644"
    if change.is_binary:
        return TreeEntry(path=change.path, mode=mode, sha=upload_blob(change.content))
    return TreeEntry(path=change.path, mode=mode, content=change.content.decode("utf-8"))


def open_prs_for_prompt(pulls: Sequence[PullRequest]) -> list[dict[str, object]]:
    """Open PRs with the gh CLI's field names, which persona files in the wild already use."""
    return [
        {
            "number": pr.number,
            "title": pr.title,
            "url": pr.html_url,
            "headRefName": pr.head_ref,
            "baseRefName": pr.base_ref,
            "isDraft": pr.draft,
            "author": {"login": pr.author or ""},
        }
        for pr in pulls
    ]


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Runner:
    """Executes claimed runs; the worker calls it (`runner(claimed) -> RunOutcome`)."""

    app: GitHubApp
    agent: Agent
    base_sources: Callable[[], Sequence[Source]]
    agent_timeout: float = 1800
    workspace_parent: Path | None = None
    sleep: Callable[[float], None] = time.sleep
    max_attempts: int = 5  # the worker's; the last failed attempt reports on the issue

    def __call__(self, claimed: ClaimedRunLike) -> RunOutcome:
        spec = claimed.spec
        with self.app.installation(spec.installation_id) as installation:
            run = _Run(self, installation, spec, claimed.id, claimed.attempts)
            return run.execute()


@dataclass(frozen=True)
class BranchState:
    """The commit a run builds on, whether its branch exists, and whether that branch holds work
    that never got a PR (an earlier attempt stopped between pushing and opening it)."""

    start: BranchHead
    exists: bool
    unpublished: bool


class _Skip(Exception):
    """Ends a run early as skipped, with the reason the user reads."""


class _Fail(Exception):
    """Ends a run as failed with a message (and optionally the agent's log tail)."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class _Run:
    def __init__(self, runner: Runner, gh: Installation, spec: RunSpec, run_id: int, attempts: int) -> None:
        self.runner = runner
        self.gh = gh
        self.spec = spec
        self.repo = spec.repository
        self.owner = spec.repository.split("/", 1)[0]
        self.run_id = run_id
        self.attempts = attempts
        self.status_comment: int | None = None
        self.persona_label = f"**{spec.persona}**"

    # -- orchestration -------------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        try:
            outcome = self._execute()
        except _Skip as skip:
            outcome = RunOutcome("skipped", str(skip))
        except _Fail as failure:
            outcome = RunOutcome("failed", str(failure))
            self._report(outcome, failure.log)
            return outcome
        except (PermanentError, PersonaError) as exc:
            outcome = RunOutcome("failed", str(exc))
        except RateLimited:
            raise  # deferred without counting an attempt: the comment keeps saying "working"
        except TransientError as exc:
            # The worker retries; only the last attempt's failure is final and worth reporting.
            if self.attempts + 1 >= self.runner.max_attempts:
                self._report(RunOutcome("failed", f"gave up after {self.attempts + 1} attempts: {exc}"))
            raise
        except Exception as exc:
            # A bug or an OS error: the worker records the run as failed; the issue must say so too.
            self._report(RunOutcome("failed", f"{type(exc).__name__}: {exc}"))
            raise
        self._report(outcome)
        return outcome

    def _execute(self) -> RunOutcome:
        if onboarding.is_onboarding(self.spec):
            return self._onboard()
        if self.spec.trigger == "comment":
            self._check_commenter()
        if self.spec.issue_number is not None:
            self._start_feedback()
        default_branch, setup = self._load()
        if setup.config_error is not None:
            raise _Fail(f"`{CONFIG_PATH}` is invalid:\n\n```\n{setup.config_error}\n```")
        persona = setup.personas.get(self.spec.persona)
        self.persona_label = f"{persona.emoji} **{persona.id}**".strip()
        return self._work(persona, setup, default_branch)

    def _load(self) -> tuple[str, RepositorySetup]:
        """The default branch, and the config and personas read from it (as the planner read them)."""
        default_branch = self.spec.default_branch or self.gh.get_repository(self.repo).default_branch
        return default_branch, load_repository(self.gh, self.repo, default_branch, self.runner.base_sources())

    def _open_pr_from(self, branch: str, open_pulls: Sequence[PullRequest]) -> PullRequest | None:
        """Our open PR whose head is `branch` (the `?head=owner:branch` filter, on a listing we have)."""
        return next((p for p in open_pulls if p.head_label == f"{self.owner}:{branch}"), None)

    def _onboard(self) -> RunOutcome:
        """Open the onboarding PR once: never while one is open, never again after it was closed."""
        default_branch, setup = self._load()
        if setup.config.exists or setup.config_error is not None:
            raise _Skip(f"`{CONFIG_PATH}` exists already: no onboarding needed")
        branch = onboarding.BRANCH
        pr = self._open_pr_from(branch, self.gh.list_open_prs(self.repo))
        if pr is not None:
            raise _Skip(f"the onboarding PR #{pr.number} is already open")
        last = self.gh.list_closed_prs(self.repo, branch)
        if last is not None and not last.merged:
            raise _Skip(f"the onboarding PR #{last.number} was closed without merging: not opened again")
        existing = self.gh.get_branch_head(self.repo, branch)
        if existing is not None:
            self.gh.delete_ref(self.repo, branch)  # left over from a merged onboarding: start afresh
        base = self.gh.get_branch_head(self.repo, default_branch)
        if base is None:
            raise PermanentError(f"the default branch {default_branch!r} does not exist in {self.repo}")
        text = onboarding.config_text(setup.personas.personas)
        tree = self.gh.create_tree(self.repo, base.tree, [TreeEntry(path=CONFIG_PATH, mode="100644", content=text)])
        commit = self.gh.create_commit(self.repo, onboarding.TITLE, tree, [base.sha])
        self.gh.create_ref(self.repo, branch, commit)
        marker = pr_marker(onboarding.ONBOARDING, self.spec.concurrency_key, self.run_id)
        created = self.gh.create_pr(
            self.repo, title=onboarding.TITLE, body=onboarding.pr_body(marker), head=branch, base=default_branch
        )
        return RunOutcome("succeeded", f"opened #{created.number}", branch, created.number, created.html_url)

    # -- before the agent: permissions, feedback, branch state ----------------------------------

    def _check_commenter(self) -> None:
        user = self.spec.comment_author or ""
        permission = self.gh.collaborator_permission(self.repo, user)
        if permission not in WRITE_PERMISSIONS:
            assert self.spec.issue_number is not None
            self.gh.create_comment(
                self.repo,
                self.spec.issue_number,
                f"Thanks for asking, @{user}! Only people with write access to this repository can "
                f"start a persona, so `{self.spec.persona}` will not run this time.\n\n"
                f"{status_marker(self.spec.persona, self.run_id)}",
            )
            raise _SkipSilently(f"@{user} has {permission} permission; running a persona needs write")

    def _start_feedback(self) -> None:
        assert self.spec.issue_number is not None
        if self.attempts == 0:
            if self.spec.comment_id is not None:
                self.gh.add_reaction(self.repo, comment_id=self.spec.comment_id, content="eyes")
            else:
                self.gh.add_reaction(self.repo, issue=self.spec.issue_number, content="eyes")
        working = self._status_text(f"{self.persona_label} is working on this (run {self.run_id}).")
        # A retry (counted or not: rate limits and shutdowns do not count) edits the comment an
        # earlier attempt wrote instead of adding one.
        marker = status_marker(self.spec.persona, self.run_id)
        self.status_comment = self.gh.find_comment(self.repo, self.spec.issue_number, marker)
        if self.status_comment is not None:
            self.gh.update_comment(self.repo, self.status_comment, working)
        else:
            self.status_comment = self.gh.create_comment(self.repo, self.spec.issue_number, working)

    def _work(self, persona: Persona, setup: RepositorySetup, default_branch: str) -> RunOutcome:
        config = setup.config
        base_branch = persona.branch or default_branch
        branch = branch_name(persona, self.spec, self.run_id)
        # One listing serves the prompt's `open_prs`, the open-PR limit and finding our own PR
        # (the same filter as `?head=owner:branch`, without a second request).
        open_pulls = self.gh.list_open_prs(self.repo)
        pr: PullRequest | None
        if self.spec.issue is not None and self.spec.issue.is_pull_request:
            # `/persona <id>` in a pull request's thread: follow-up work for that persona's PR.
            pr = self._own_pull_request(persona, open_pulls)
            branch = pr.head_ref
        else:
            pr = self._open_pr_from(branch, open_pulls)
        notes: list[str] = []
        if pr is not None:
            if not config.update_open_prs:
                raise _Skip(f"`{branch}` already has open PR #{pr.number} and update_open_prs is false")
            start, notes = self._refresh_open_pr(pr, branch)
            state = BranchState(start, exists=True, unpublished=False)
        else:
            state = self._start_point(persona, branch, base_branch, config, open_pulls)
        return self._change(persona, setup, default_branch, base_branch, branch, state, pr, notes, open_pulls)

    def _own_pull_request(self, persona: Persona, open_pulls: Sequence[PullRequest]) -> PullRequest:
        number = self.spec.issue_number
        pr = next((p for p in open_pulls if p.number == number), None)
        prefix = f"{self.owner}:{BRANCH_PREFIX}{persona.id}"
        if pr is None or not (pr.head_label == prefix or pr.head_label.startswith((f"{prefix}-issue-", f"{prefix}/"))):
            raise _Skip(
                f"#{number} is not an open pull request of the {persona.id} persona: ask for new work "
                f"on an issue, or comment on one of {persona.id}'s own pull requests"
            )
        return pr

    def _refresh_open_pr(self, pr: PullRequest, branch: str) -> tuple[BranchHead, list[str]]:
        """Bring the PR up to date with its base, then work on its head."""
        result = self.gh.update_branch(self.repo, pr.number, pr.head_sha)
        delays = (0.5, 1.0, 2.0, 4.0) if result == "updated" else (0.0,)
        for delay in delays:
            # GitHub merges the base in asynchronously: wait briefly for the new head.
            head = self.gh.get_branch_head(self.repo, branch)
            if head is None:
                raise TransientError(f"the branch of #{pr.number} disappeared during the run")
            if result != "updated" or head.sha != pr.head_sha:
                break
            self.runner.sleep(delay)
        else:
            raise TransientError(f"#{pr.number} is being updated with its base; trying again shortly")
        if result == "conflict":
            return head, [
                f"#{pr.number} could not be brought up to date with its base (merge conflict); "
                "this run worked on its head as it is."
            ]
        return head, []

    def _start_point(
        self, persona: Persona, branch: str, base_branch: str, config: RepoConfig, open_pulls: Sequence[PullRequest]
    ) -> BranchState:
        """Where a new PR's branch starts: the branch itself when it exists, else the base."""
        existing = self.gh.get_branch_head(self.repo, branch)
        last = None
        if existing is not None:
            last = self.gh.list_closed_prs(self.repo, branch)
            if last is not None and not last.merged and self.spec.trigger in ("push", "install"):
                raise _Skip(
                    f"the last PR from `{branch}` (#{last.number}) was closed without merging; "
                    f"delete the branch to let {self.spec.trigger} triggers run {persona.id} again"
                )
            if last is not None and last.merged:
                # Its work is in the base now: start again from the base instead of force-pushing.
                self.gh.delete_ref(self.repo, branch)
                existing = None
        if persona.automation_mode == "AUTO_CREATE_PR":
            ours = [
                p for p in open_pulls
                if p.head_label.startswith(f"{self.owner}:{BRANCH_PREFIX}") and p.head_ref != onboarding.BRANCH
            ]
            if len(ours) >= config.limits.open_prs:
                raise _Skip(
                    f"{len(ours)} personabot PRs are open and the limit is {config.limits.open_prs} "
                    "(`limits.open_prs`); merge or close some first"
                )
        if existing is not None:
            # Our branch without any PR: an earlier attempt pushed it and stopped before the PR.
            return BranchState(existing, exists=True, unpublished=last is None)
        base = self.gh.get_branch_head(self.repo, base_branch)
        if base is None:
            raise PermanentError(f"the base branch {base_branch!r} does not exist in {self.repo}")
        return BranchState(base, exists=False, unpublished=False)

    # -- the agent and the changes -------------------------------------------------------------

    def _change(
        self,
        persona: Persona,
        setup: RepositorySetup,
        default_branch: str,
        base_branch: str,
        branch: str,
        state: BranchState,
        pr: PullRequest | None,
        notes: list[str],
        open_pulls: Sequence[PullRequest],
    ) -> RunOutcome:
        with Workspace(parent=self.runner.workspace_parent) as workspace:
            self.gh.download_tarball(self.repo, state.start.sha, workspace.archive_path)
            workspace.prepare()
            context = run_context(
                persona,
                self.spec,
                default_branch=default_branch,
                base_branch=base_branch,
                open_prs=open_prs_for_prompt(open_pulls),
                journal_entries=read_journal_entries(workspace.root, persona.id),
                run_id=self.run_id,
                date=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            title = render_title(persona, setup.personas, context)
            prompt = render_prompt(persona, setup.personas, context)
            log.info("running the agent for %s", persona.id)
            result = self.runner.agent.run(prompt, workspace.root, self.runner.agent_timeout)
            AGENT_SECONDS.labels(persona.id, result.status).observe(result.duration)
            self._check_agent(result)
            changes = workspace.changeset(max_bytes=setup.config.limits.max_total_bytes)
        if changes.is_empty:
            if state.unpublished and persona.automation_mode == "AUTO_CREATE_PR":
                # Nothing new, but the branch holds an earlier attempt's commit: open its PR now.
                summary = result.summary.strip() or f"Changes made by the {persona.id} persona."
                return self._publish(persona, setup.config, base_branch, branch, title, summary, pr, notes)
            return RunOutcome("succeeded", "no changes: the agent left the repository as it was")
        verdict = check(changes, allow_workflows=setup.config.allow_workflows, limits=setup.config.limits)
        if not verdict.allowed:
            raise _Fail(f"the changes were refused, nothing was pushed:\n\n{verdict.message()}")
        summary = pr_summary(result, persona, changes)
        commit = self._commit(title, summary, changes, state.start)
        self._push(branch, commit, state)
        return self._publish(persona, setup.config, base_branch, branch, title, summary, pr, notes)

    def _check_agent(self, result: AgentResult) -> None:
        problem = agent_problem(result, self.runner.agent_timeout)
        if problem is not None:
            raise _Fail(problem, result.log)

    def _commit(self, title: str, summary: str, changes: ChangeSet, start: BranchHead) -> str:
        entries = tree_entries(changes, lambda content: self.gh.create_blob(self.repo, content))
        tree = self.gh.create_tree(self.repo, start.tree, entries)
        return self.gh.create_commit(self.repo, commit_message(title, summary, self.run_id), tree, [start.sha])

    def _push(self, branch: str, commit: str, state: BranchState) -> None:
        try:
            if state.exists:
                self.gh.update_ref(self.repo, branch, commit)  # fast-forward only: never forced
            else:
                self.gh.create_ref(self.repo, branch, commit)
        except GitHubAPIError as exc:
            if exc.status != 422:
                raise
            head = self.gh.get_branch_head(self.repo, branch)
            expected = state.start.sha if state.exists else None
            if (head.sha if head else None) != expected:
                # Someone pushed to (or created) the branch while the agent worked. Our commit
                # is not worth forcing over theirs: run again on the branch as it is now.
                raise TransientError(
                    f"`{branch}` moved during the run ({exc.detail}); trying again on its new head"
                ) from exc
            # The branch is as we left it, so GitHub refused the change itself (a missing
            # `workflows` permission, a ref name git cannot hold): retrying cannot help.
            raise PermanentError(f"GitHub refused to update `{branch}`: {exc.detail}") from exc

    def _publish(
        self,
        persona: Persona,
        config: RepoConfig,
        base_branch: str,
        branch: str,
        title: str,
        summary: str,
        pr: PullRequest | None,
        notes: list[str],
    ) -> RunOutcome:
        marker = pr_marker(persona.id, self.spec.concurrency_key, self.run_id)
        body = pr_body(summary, self.spec, notes, marker)
        if pr is not None:
            changed_title = title if title != pr.title else None
            changed_body = body if _without_marker(body) != _without_marker(pr.body) else None
            if self.spec.issue is not None and self.spec.issue.is_pull_request:
                changed_body = None  # follow-up from the PR's own thread: its body (and `Closes`) stay
            self.gh.update_pr(self.repo, pr.number, title=changed_title, body=changed_body)
            return RunOutcome("succeeded", f"updated #{pr.number}", branch, pr.number, pr.html_url)
        if persona.automation_mode == "MANUAL":
            url = self.gh.compare_url(self.repo, base_branch, branch)
            return RunOutcome("succeeded", f"pushed {branch} (MANUAL mode: no PR). Compare: {url}", branch, None, url)
        created = self._open_pr(title, body, branch, base_branch, config.draft)
        return RunOutcome("succeeded", f"opened #{created.number}", branch, created.number, created.html_url)

    def _open_pr(self, title: str, body: str, branch: str, base_branch: str, draft: bool) -> PullRequest:
        try:
            return self.gh.create_pr(self.repo, title=title, body=body, head=branch, base=base_branch, draft=draft)
        except GitHubAPIError as exc:
            detail = exc.detail.lower()
            if exc.status != 422:
                raise
            if "already exists" in detail:
                # A lost response to an earlier try of this same request: the PR is there.
                existing = self.gh.find_open_pr(self.repo, branch)
                if existing is not None:
                    return existing
            if draft and "draft" in detail:
                # Plans without draft PRs refuse them; a ready PR that says so beats no PR.
                note = "> `draft: true` is set, but this repository cannot have draft pull requests."
                return self.gh.create_pr(
                    self.repo, title=title, body=f"{note}\n\n{body}", head=branch, base=base_branch, draft=False
                )
            raise

    # -- feedback --------------------------------------------------------------------------------

    def _status_text(self, text: str) -> str:
        return f"{text}\n\n{status_marker(self.spec.persona, self.run_id)}"

    def _report(self, outcome: RunOutcome, agent_log: str = "") -> None:
        """Edit the issue's status comment in place with how the run ended."""
        if self.spec.issue_number is None or self.status_comment is None:
            return
        who = self.persona_label
        if outcome.status == "succeeded" and outcome.pr_number is not None:
            text = f"{who} {outcome.message}: {outcome.pr_url}"
        elif outcome.status == "succeeded" and outcome.pr_url:
            text = f"{who} pushed `{outcome.branch}` without opening a PR (MANUAL mode). Compare and open one: {outcome.pr_url}"
        elif outcome.status == "succeeded":
            text = f"{who} finished with no changes."
        elif outcome.status == "skipped":
            text = f"{who} skipped this run: {outcome.message}"
        else:
            text = f"{who} failed: {outcome.message}"
            tail = log_tail(agent_log)
            if tail:
                text += f"\n\n<details><summary>last {LOG_TAIL_LINES} lines of the agent's log</summary>\n\n```text\n{tail}\n```\n</details>"
        try:
            self.gh.update_comment(self.repo, self.status_comment, self._status_text(text))
        except (PermanentError, TransientError) as exc:
            # The run's outcome is recorded either way; a lost status edit must not turn it into a retry.
            log.warning("could not update the status comment on %s#%s: %s", self.repo, self.spec.issue_number, exc)


class _SkipSilently(_Skip):
    """Skipped after replying on the issue already (no status comment is created)."""
