"""From a stored delivery to the runs it asks for.

The deciding is pure (`triggers.plan`); this module does the reading it needs first: the
repository's `.github/personabot.yml` and personas from the default branch. The runner reads them
through the same `load_repository` so a run acts on exactly what the planner decided with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from personabot.errors import PermanentError
from personabot.onboarding import onboarding_spec
from personabot.personas import PersonaSet, Source, load_personas
from personabot.repoconfig import (
    CONFIG_PATH,
    RepoConfig,
    RepoConfigError,
    parse_repo_config,
)
from personabot.triggers import (
    INSTALL_EVENTS,
    AppIdentity,
    Ignored,
    RepoRef,
    RunSpec,
    plan,
    repositories,
)


class RepositoryReader(Protocol):
    """The reads the planner needs; `github.Installation` provides them."""

    def get_repository(self, repo: str) -> Any: ...

    def get_file_text(self, repo: str, path: str, ref: str) -> str | None: ...

    def list_files_in(self, repo: str, directories: Sequence[str], ref: str) -> dict[str, dict[str, str]]: ...


@dataclass(frozen=True)
class RepositorySetup:
    """A repository's config (or why it is invalid) and its personas merged with ours."""

    config: RepoConfig
    config_error: RepoConfigError | None
    personas: PersonaSet


def repository_personas_files(reader: RepositoryReader, repo: str, config: RepoConfig, ref: str) -> dict[str, str]:
    """The repository's persona files, with a `blocks/` folder beside `personas_dir` included."""
    directory = config.personas_dir.strip("/")
    parent = str(PurePosixPath(directory).parent)
    sibling = f"{parent}/blocks" if parent not in ("", ".") else None
    found = reader.list_files_in(repo, [directory, *([sibling] if sibling else [])], ref)
    files = dict(found[directory])
    if sibling is not None:
        files.update({f"../blocks/{path}": text for path, text in found[sibling].items() if "/" not in path})
    return files


def load_repository(
    reader: RepositoryReader, repo: str, ref: str, base_sources: Sequence[Source]
) -> RepositorySetup:
    """Read config and personas from `ref`. An invalid config falls back to defaults, with the error.

    The caller decides what an invalid config means: issue runs report it on the issue, the
    planner still lets label and comment triggers through so that report can happen.
    """
    text = reader.get_file_text(repo, CONFIG_PATH, ref)
    error: RepoConfigError | None = None
    try:
        config = parse_repo_config(text)
    except RepoConfigError as exc:
        error = exc
        config = parse_repo_config(None)
    files = repository_personas_files(reader, repo, config, ref)
    personas = load_personas([*base_sources, (config.personas_dir.strip("/"), files)])
    return RepositorySetup(config=config, config_error=error, personas=personas)


PlanResult = list[RunSpec] | Ignored


class DeliveryLike(Protocol):
    @property
    def event(self) -> str: ...

    @property
    def installation_id(self) -> int | None: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


def plan_delivery(
    delivery: DeliveryLike,
    *,
    app: AppIdentity,
    reader_for: Callable[[int], RepositoryReader],
    base_sources: Sequence[Source],
    onboarding: bool = True,
) -> PlanResult:
    """Plan one delivery: one `triggers.plan` call per repository it concerns."""
    targets = repositories(delivery.event, delivery.payload)
    if isinstance(targets, Ignored):
        return targets
    if delivery.installation_id is None:
        return Ignored("the delivery has no installation id (not sent to a GitHub App installation)")
    reader = reader_for(delivery.installation_id)
    specs: list[RunSpec] = []
    reasons: list[str] = []
    for target in targets:
        try:
            result = _plan_repository(delivery, target, reader, app, base_sources, onboarding)
        except PermanentError as exc:
            if len(targets) == 1:
                raise
            # One unreadable repository of an installation must not cost the others their runs.
            result = Ignored(f"could not read the repository: {exc}")
        if isinstance(result, Ignored):
            reasons.append(result.reason if len(targets) == 1 else f"{target.full_name}: {result.reason}")
        else:
            specs.extend(result)
    if specs:
        return specs
    return Ignored("; ".join(reasons) or "no repository in the delivery")


def _plan_repository(
    delivery: DeliveryLike,
    target: RepoRef,
    reader: RepositoryReader,
    app: AppIdentity,
    base_sources: Sequence[Source],
    onboarding: bool,
) -> PlanResult:
    if target.default_branch is None:
        # Installation payloads list repositories without their default branch.
        target = RepoRef(target.owner, target.name, reader.get_repository(target.full_name).default_branch)
    assert target.default_branch is not None
    setup = load_repository(reader, target.full_name, target.default_branch, base_sources)
    result = plan(delivery.event, delivery.payload, setup.config, setup.personas.personas, app, target)
    installing = (delivery.event, delivery.payload.get("action")) in INSTALL_EVENTS
    if installing and onboarding and not setup.config.exists and setup.config_error is None:
        assert delivery.installation_id is not None
        return [onboarding_spec(target, delivery.installation_id, delivery.event)]
    if setup.config_error is not None and not isinstance(result, Ignored):
        # With a broken config only explicit requests go ahead, and they report the error.
        explicit = [spec for spec in result if spec.trigger in ("label", "comment")]
        if not explicit:
            return Ignored(f"{CONFIG_PATH} is invalid: {setup.config_error}")
        return explicit
    return result
