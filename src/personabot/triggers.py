"""Which personas run for one webhook delivery: (event, payload, config, personas) -> runs.

Pure, so every rule is tested on recorded GitHub payloads without mocks. This is the last place raw
payload dicts are read: what a run needs later is copied into `RunSpec`, and the text that will reach
an agent's prompt is sanitised here, once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol, get_args

from personabot.repoconfig import CONFIG_PATH, RepoConfig
from personabot.sanitize import sanitize_text

TriggerKind = Literal["push", "label", "install", "comment", "schedule", "manual"]

# Every comment and PR body the app writes carries this; text containing it is the app's own.
MARKER_PREFIX = "<!-- personabot:"

# Branches the app itself pushes to (ARCHITECTURE.md): pushes there never trigger anything.
APP_BRANCH_PREFIX = "personabot/"

# GitHub lists at most 20 commits in a push payload; we keep the newest 20 as the prompt's context.
MAX_PUSH_COMMITS = 20

_ZERO_SHA = "0" * 40
_AUTOMATIC: frozenset[str] = frozenset({"push", "install"})


class PersonaLike(Protocol):
    """What planning needs of a persona (personas.Persona satisfies it)."""

    @property
    def id(self) -> str: ...

    @property
    def automation_mode(self) -> str: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def require_plan_approval(self) -> bool: ...


@dataclass(frozen=True)
class AppIdentity:
    """Who the app is on GitHub, to recognise (and ignore) its own events."""

    slug: str

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass(frozen=True)
class RepoRef:
    owner: str
    name: str
    default_branch: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class IssueInfo:
    """The issue as the prompt sees it; title and body are sanitised."""

    number: int
    title: str
    body: str
    url: str
    labels: tuple[str, ...]
    author: str
    is_pull_request: bool = False  # a `/persona` comment can come from a pull request's thread


@dataclass(frozen=True)
class PushCommit:
    id: str
    message: str
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushInfo:
    ref: str
    before: str
    after: str
    commits: tuple[PushCommit, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    """One persona acting once on one repository (and issue): what the queue stores and runs."""

    repository: str
    default_branch: str | None
    installation_id: int
    persona: str
    trigger: TriggerKind
    event: str
    issue_number: int | None
    concurrency_key: str
    issue: IssueInfo | None = None
    push: PushInfo | None = None
    comment_id: int | None = None
    comment_author: str | None = None
    comment_body: str | None = None  # sanitised; the request may say more than `/persona <id>`

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists) that `from_json` turns back into an equal spec."""
        return _jsonable(asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        trigger = data["trigger"]
        if trigger not in get_args(TriggerKind):
            raise ValueError(f"unknown trigger {trigger!r} in a stored run")
        issue = data.get("issue")
        push = data.get("push")
        return cls(
            repository=data["repository"],
            default_branch=data.get("default_branch"),
            installation_id=int(data["installation_id"]),
            persona=data["persona"],
            trigger=trigger,
            event=data["event"],
            issue_number=data.get("issue_number"),
            concurrency_key=data["concurrency_key"],
            issue=_issue_from_json(issue) if issue is not None else None,
            push=_push_from_json(push) if push is not None else None,
            comment_id=data.get("comment_id"),
            comment_author=data.get("comment_author"),
            comment_body=data.get("comment_body"),
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _issue_from_json(data: Mapping[str, Any]) -> IssueInfo:
    return IssueInfo(
        number=int(data["number"]),
        title=data["title"],
        body=data["body"],
        url=data["url"],
        labels=tuple(data.get("labels", ())),
        author=data["author"],
        is_pull_request=bool(data.get("is_pull_request", False)),
    )


def _push_from_json(data: Mapping[str, Any]) -> PushInfo:
    return PushInfo(
        ref=data["ref"],
        before=data["before"],
        after=data["after"],
        commits=tuple(
            PushCommit(
                id=c["id"],
                message=c["message"],
                added=tuple(c.get("added", ())),
                modified=tuple(c.get("modified", ())),
                removed=tuple(c.get("removed", ())),
            )
            for c in data.get("commits", ())
        ),
    )


@dataclass(frozen=True)
class Ignored:
    """Nothing runs; `reason` is stored with the delivery and shown to the operator."""

    reason: str


# --- globs --------------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob the way GitHub Actions' `paths:` reads it.

    `*` and `?` stay within one path segment, `**` spans any number of segments (`docs/**` is
    everything below docs, `**/x.py` is x.py at any depth, `**.py` any .py file), `[abc]`/`[!abc]`
    are character classes. The whole path must match; a leading `/` is ignored.
    """
    pat = pattern.lstrip("/")
    out: list[str] = []
    i = 0
    while i < len(pat):
        char = pat[i]
        if pat.startswith("**", i):
            i += 2
            if pat.startswith("/", i):
                # `**/` may match no directory at all: `**/x` matches `x`.
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = pat.find("]", i + 2 if pat.startswith(("[!", "[^"), i) else i + 1)
            if end == -1:
                out.append(re.escape(char))
                i += 1
                continue
            body = pat[i + 1 : end]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("^", "\\^")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(pattern: str, path: str) -> bool:
    """True when `path` (relative, `/`-separated) matches the glob `pattern`."""
    return glob_to_regex(pattern).match(path.lstrip("/")) is not None


# --- payload helpers ----------------------------------------------------------------------------


def _get(mapping: Any, *keys: str) -> Any:
    """payload["a"]["b"]..., or None when any level is missing or not a mapping (payloads vary)."""
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _name(event: str, payload: Mapping[str, Any]) -> str:
    action = payload.get("action")
    return f"{event}.{action}" if isinstance(action, str) and action else event


def _repo_ref(data: Any) -> RepoRef | None:
    if not isinstance(data, Mapping):
        return None
    full_name = data.get("full_name")
    branch = data.get("default_branch")
    default_branch = branch if isinstance(branch, str) else None
    if isinstance(full_name, str) and "/" in full_name:
        owner, name = full_name.split("/", 1)
        return RepoRef(owner, name, default_branch)
    login = _get(data, "owner", "login")
    short = data.get("name")
    if isinstance(login, str) and isinstance(short, str):
        return RepoRef(login, short, default_branch)
    return None


def _installation_repos(event: str, payload: Mapping[str, Any]) -> list[RepoRef]:
    key = "repositories" if event == "installation" else "repositories_added"
    items = payload.get(key)
    refs = [_repo_ref(item) for item in items] if isinstance(items, list) else []
    return [ref for ref in refs if ref is not None]


def _first_line(body: str) -> str:
    # Judge the command on the sanitised text: `/persona\u200b x` or a comment in front must not
    # make a command the reader cannot see.
    cleaned = sanitize_text(body).strip()
    return cleaned.splitlines()[0].strip() if cleaned else ""


def _branch_of(ref: str) -> str | None:
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


# --- filters that need no config (usable at intake) ----------------------------------------------

INSTALL_EVENTS = frozenset({("installation", "created"), ("installation_repositories", "added")})


def _precheck(event: str, payload: Mapping[str, Any]) -> Ignored | None:
    """Rules that need neither the repository's config nor the app's identity."""
    action = payload.get("action")
    name = _name(event, payload)
    if event == "push":
        ref = payload.get("ref")
        if not isinstance(ref, str) or not ref:
            return Ignored("push without a ref")
        if ref.startswith("refs/tags/"):
            return Ignored(f"push to {ref} is a tag")
        branch = _branch_of(ref)
        if branch is None:
            return Ignored(f"push to {ref} is not a branch")
        if payload.get("deleted") is True or payload.get("after") == _ZERO_SHA:
            return Ignored(f"push to {ref} deletes the branch")
        if branch.startswith(APP_BRANCH_PREFIX):
            return Ignored(f"push to {branch} is personabot's own branch")
        return None
    if event == "issues":
        if action not in ("labeled", "opened"):
            return Ignored(f"{name} is not a trigger")
        if not isinstance(_get(payload, "issue", "number"), int):
            return Ignored(f"{name} carries no issue")
        return None
    if event == "issue_comment":
        if action != "created":
            return Ignored(f"{name} is not a trigger")
        body = _get(payload, "comment", "body")
        if not isinstance(body, str) or not isinstance(_get(payload, "issue", "number"), int):
            return Ignored(f"{name} carries no comment text or issue")
        if MARKER_PREFIX in body:
            return Ignored("the comment carries personabot's marker (the app's own comment)")
        words = _first_line(body).split()
        if not words or words[0] != "/persona":
            return Ignored("the comment's first line is not a /persona command")
        if len(words) != 2:
            return Ignored("the comment's first line must be '/persona <id>', e.g. '/persona builder'")
        return None
    if (event, action) in INSTALL_EVENTS:
        if not _installation_repos(event, payload):
            return Ignored(f"{name} lists no repositories")
        return None
    return Ignored(f"{name} is not a trigger")


def repositories(event: str, payload: Mapping[str, Any]) -> list[RepoRef] | Ignored:
    """The repositories a delivery concerns, or why it can be ignored without reading any config.

    Cheap enough for the intake: an `Ignored` here is also what `plan` would answer.
    """
    ignored = _precheck(event, payload)
    if ignored is not None:
        return ignored
    if (event, payload.get("action")) in INSTALL_EVENTS:
        return _installation_repos(event, payload)
    ref = _repo_ref(payload.get("repository"))
    if ref is None:
        return Ignored(f"{_name(event, payload)} carries no repository")
    return [ref]


# --- planning -----------------------------------------------------------------------------------


def _issue_info(issue: Mapping[str, Any]) -> IssueInfo:
    labels = issue.get("labels")
    names = (_get(label, "name") for label in (labels if isinstance(labels, list) else []))
    label_names = tuple(name for name in names if isinstance(name, str))
    return IssueInfo(
        number=int(issue["number"]),
        title=sanitize_text(issue.get("title")),
        body=sanitize_text(issue.get("body")),
        url=str(issue.get("html_url") or ""),
        labels=label_names,
        author=str(_get(issue, "user", "login") or ""),
        is_pull_request=isinstance(issue.get("pull_request"), Mapping),
    )


def _push_info(payload: Mapping[str, Any]) -> PushInfo:
    raw = payload.get("commits")
    commits = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
    return PushInfo(
        ref=payload["ref"],
        before=str(payload.get("before") or ""),
        after=str(payload.get("after") or ""),
        commits=tuple(
            PushCommit(
                id=str(c.get("id") or ""),
                message=sanitize_text(c.get("message")),
                added=_str_tuple(c.get("added")),
                modified=_str_tuple(c.get("modified")),
                removed=_str_tuple(c.get("removed")),
            )
            for c in commits[-MAX_PUSH_COMMITS:]
        ),
    )


def _str_tuple(value: Any) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _changed_files(payload: Mapping[str, Any]) -> list[str]:
    files: dict[str, None] = {}
    commits = payload.get("commits")
    for commit in commits if isinstance(commits, list) else []:
        for key in ("added", "modified", "removed"):
            files.update(dict.fromkeys(_str_tuple(_get(commit, key))))
    return list(files)


@dataclass
class _Planner:
    event: str
    config: RepoConfig
    personas: Mapping[str, PersonaLike]
    repo: RepoRef
    installation_id: int
    runs: list[RunSpec] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def eligible(self, persona_id: str, trigger: TriggerKind) -> bool:
        """Apply the rules every trigger shares; record why a persona does not run."""
        persona = self.personas.get(persona_id)
        if persona is None:
            known = ", ".join(sorted(self.personas)) or "none"
            self.reasons.append(f"unknown persona '{persona_id}' (known personas: {known})")
            return False
        settings = self.config.persona(persona_id)
        if settings is None:
            self.reasons.append(f"persona '{persona_id}' is set to false in {CONFIG_PATH}")
            return False
        if not persona.enabled:
            self.reasons.append(f"persona '{persona_id}' is disabled")
            return False
        if trigger not in settings.on:
            on = ", ".join(settings.on) or "nothing"
            self.reasons.append(f"persona '{persona_id}' does not run on {trigger} (its `on` is: {on})")
            return False
        # Tolerate an Enum-typed mode as well as the plain string of the front matter.
        mode = str(getattr(persona.automation_mode, "value", persona.automation_mode))
        if trigger in _AUTOMATIC and mode != "AUTO_CREATE_PR":
            self.reasons.append(
                f"persona '{persona_id}' has automation_mode {mode}: "
                "it runs only when asked by label or comment"
            )
            return False
        if trigger in _AUTOMATIC and persona.require_plan_approval:
            # A label or comment is a person asking for this run; nothing else approves it.
            self.reasons.append(
                f"persona '{persona_id}' has require_plan_approval: it runs only when asked by label or comment"
            )
            return False
        return True

    def add(self, persona_id: str, trigger: TriggerKind, **context: Any) -> None:
        issue: IssueInfo | None = context.get("issue")
        repo = self.repo.full_name
        key = f"{repo}#{issue.number}:{persona_id}" if issue else f"{repo}:{persona_id}"
        if any(run.concurrency_key == key for run in self.runs):
            return
        self.runs.append(
            RunSpec(
                repository=repo,
                default_branch=self.repo.default_branch,
                installation_id=self.installation_id,
                persona=persona_id,
                trigger=trigger,
                event=self.event,
                issue_number=issue.number if issue else None,
                concurrency_key=key,
                **context,
            )
        )

    def result(self, nothing: str) -> list[RunSpec] | Ignored:
        if self.runs:
            return list(self.runs)
        return Ignored("; ".join(dict.fromkeys(self.reasons)) or nothing)


def plan(
    event: str,
    payload: Mapping[str, Any],
    config: RepoConfig,
    personas: Mapping[str, PersonaLike],
    app: AppIdentity,
    repository: RepoRef | None = None,
) -> list[RunSpec] | Ignored:
    """The runs one delivery asks for in one repository, or why there are none.

    For installation events, which list several repositories, call once per repository with that
    repository's config and `repository` set (see `repositories`). Other events name their own
    repository; `repository` is then not needed.
    """
    ignored = _precheck(event, payload)
    if ignored is not None:
        return ignored
    sender_login = _get(payload, "sender", "login")
    if (
        _get(payload, "sender", "type") == "Bot"
        and isinstance(sender_login, str)
        and sender_login.casefold() == app.bot_login.casefold()
    ):
        return Ignored(f"sent by personabot itself ({sender_login})")
    installation_id = _get(payload, "installation", "id")
    if not isinstance(installation_id, int) or isinstance(installation_id, bool):
        return Ignored(f"{_name(event, payload)} carries no installation id (not sent to a GitHub App)")

    action = payload.get("action")
    if (event, action) in INSTALL_EVENTS:
        return _plan_install(event, payload, config, personas, installation_id, repository)

    repo = _repo_ref(payload.get("repository"))
    if repo is None:
        return Ignored(f"{_name(event, payload)} carries no repository")
    planner = _Planner(event, config, personas, repo, installation_id)
    if event == "push":
        return _plan_push(planner, payload)
    if event == "issues":
        return _plan_issue(planner, payload, str(action))
    return _plan_comment(planner, payload)


def _plan_issue(planner: _Planner, payload: Mapping[str, Any], action: str) -> list[RunSpec] | Ignored:
    prefix = planner.config.label_prefix
    issue = _issue_info(payload["issue"])
    if action == "labeled":
        label = _get(payload, "label", "name")
        if not isinstance(label, str):
            return Ignored("issues.labeled carries no label name")
        if not label.startswith(prefix) or label == prefix:
            return Ignored(f"label '{label}' is not a persona label (prefix '{prefix}')")
        labels: Sequence[str] = [label]
    else:
        labels = [name for name in issue.labels if name.startswith(prefix) and name != prefix]
        if not labels:
            return Ignored(f"issue #{issue.number} was opened without a persona label (prefix '{prefix}')")
    for label in labels:
        persona_id = label[len(prefix) :]
        if planner.eligible(persona_id, "label"):
            planner.add(persona_id, "label", issue=issue)
    return planner.result(f"no persona label on issue #{issue.number}")


def _plan_comment(planner: _Planner, payload: Mapping[str, Any]) -> list[RunSpec] | Ignored:
    persona_id = _first_line(payload["comment"]["body"]).split()[1]
    issue = _issue_info(payload["issue"])
    if planner.eligible(persona_id, "comment"):
        comment_id = _get(payload, "comment", "id")
        planner.add(
            persona_id,
            "comment",
            issue=issue,
            comment_id=comment_id if isinstance(comment_id, int) else None,
            comment_author=str(_get(payload, "comment", "user", "login") or "") or None,
            comment_body=sanitize_text(str(_get(payload, "comment", "body") or "")),
        )
    return planner.result(f"no persona runs for the comment on #{issue.number}")


def _plan_push(planner: _Planner, payload: Mapping[str, Any]) -> list[RunSpec] | Ignored:
    branch = _branch_of(payload["ref"]) or ""
    changed = _changed_files(payload)
    push = _push_info(payload)
    candidates = _personas_on(planner.config, "push")
    if not candidates:
        return Ignored(f"no persona has `on: push` in {CONFIG_PATH}")
    for persona_id in candidates:
        if not planner.eligible(persona_id, "push"):
            continue
        settings = planner.config.persona(persona_id)
        assert settings is not None  # eligible() refused personas set to false
        why_not = _push_filter(settings.branches, settings.paths, branch, changed, planner.repo)
        if why_not:
            planner.reasons.append(f"persona '{persona_id}': {why_not}")
            continue
        planner.add(persona_id, "push", push=push)
    return planner.result(f"no persona runs on the push to {branch}")


def _push_filter(
    branches: tuple[str, ...] | None,
    paths: tuple[str, ...] | None,
    branch: str,
    changed: Iterable[str],
    repo: RepoRef,
) -> str | None:
    """Why a push does not concern a persona, or None when it does."""
    if branches is None:
        if repo.default_branch is None:
            return f"the default branch of {repo.full_name} is unknown"
        if branch != repo.default_branch:
            return f"push to {branch} is not to the default branch ({repo.default_branch})"
    elif not any(glob_match(pattern, branch) for pattern in branches):
        return f"push to {branch} is not in its branches ({', '.join(branches)})"
    if paths is not None:
        changed = list(changed)
        if not any(glob_match(pattern, path) for pattern in paths for path in changed):
            return f"no file changed by the push matches its paths ({', '.join(paths)})"
    return None


def _personas_on(config: RepoConfig, trigger: str) -> list[str]:
    # Only the config can opt a persona into automatic triggers (the default `on` has neither).
    return [
        persona_id
        for persona_id, settings in config.personas.items()
        if settings is not False and trigger in settings.on
    ]


def _plan_install(
    event: str,
    payload: Mapping[str, Any],
    config: RepoConfig,
    personas: Mapping[str, PersonaLike],
    installation_id: int,
    repository: RepoRef | None,
) -> list[RunSpec] | Ignored:
    listed = _installation_repos(event, payload)
    if repository is None:
        if len(listed) != 1:
            raise ValueError(
                f"{_name(event, payload)} lists {len(listed)} repositories: plan each with repository=..."
            )
        repository = listed[0]
    elif repository.full_name not in {ref.full_name for ref in listed}:
        raise ValueError(f"{repository.full_name} is not among the repositories of {_name(event, payload)}")
    planner = _Planner(event, config, personas, repository, installation_id)
    candidates = _personas_on(config, "install")
    if not candidates:
        return Ignored(f"no persona has `on: install` in {repository.full_name}'s {CONFIG_PATH}")
    for persona_id in candidates:
        if planner.eligible(persona_id, "install"):
            planner.add(persona_id, "install")
    return planner.result(f"no persona runs on installation in {repository.full_name}")
