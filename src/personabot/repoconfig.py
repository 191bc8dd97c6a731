"""`.github/personabot.yml`: the repository owner's settings, parsed strictly.

The file is written by hand by people who will not read our source, so every mistake (a misspelt key,
`draft: "yes"`, a trigger name with a typo) is an error that names the key and the line, never a
setting silently ignored. Pure: text in, `RepoConfig` out.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from personabot.errors import PermanentError

CONFIG_PATH = ".github/personabot.yml"

TriggerName = Literal["push", "label", "install", "comment"]
TRIGGER_NAMES: tuple[str, ...] = ("push", "label", "install", "comment")

# Where a value sits in the parsed data: keys and list positions.
_KeyPath = tuple[str | int, ...]

# Strict: YAML gives `5.0` or `true` where a count is meant only by mistake.
PositiveInt = Annotated[int, Field(strict=True, gt=0)]


def _one_or_many(value: object) -> object:
    # `on: push` and `branches: main` read naturally; treat a lone string as a one-item list.
    return (value,) if isinstance(value, str) else value


class PersonaConfig(BaseModel):
    """How one persona may be triggered in this repository."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on: tuple[TriggerName, ...] = ("label", "comment")
    # Push filters. `branches=None` means "the repository's default branch only".
    branches: tuple[StrictStr, ...] | None = None
    paths: tuple[StrictStr, ...] | None = None

    @field_validator("on", "branches", "paths", mode="before")
    @classmethod
    def _accept_single(cls, value: object) -> object:
        return _one_or_many(value)

    @field_validator("on")
    @classmethod
    def _dedupe(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    @field_validator("branches", "paths")
    @classmethod
    def _non_empty_patterns(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and any(not item.strip() for item in value):
            raise ValueError("patterns must not be empty")
        return value


class Limits(BaseModel):
    """Size limits; the defaults match the documented guardrails."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    open_prs: PositiveInt = 5
    max_files: PositiveInt = 200
    max_total_bytes: PositiveInt = 5 * 1024 * 1024
    max_text_file_bytes: PositiveInt = 1024 * 1024
    max_binary_file_bytes: PositiveInt = 50 * 1024 * 1024


def _persona_entry_kind(value: Any) -> str:
    return "off" if value is False else "settings"


# A persona entry is either its settings or `false`. The callable discriminator keeps validation
# errors about one branch only (no "or" soup from a plain union).
PersonaEntry = Annotated[
    Annotated[PersonaConfig, Tag("settings")] | Annotated[Literal[False], Tag("off")],
    Discriminator(_persona_entry_kind),
]


class RepoConfig(BaseModel):
    """The parsed `.github/personabot.yml`, defaults applied."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    personas_dir: StrictStr = ".github/personas"
    label_prefix: StrictStr = "persona:"
    draft: StrictBool = False
    update_open_prs: StrictBool = True
    allow_workflows: StrictBool = False
    limits: Limits = Limits()
    personas: dict[StrictStr, PersonaEntry] = {}
    # Not a user key: whether the file was there at all (parse_repo_config rejects it in YAML).
    exists: bool = Field(default=False, exclude=True)

    @field_validator("personas_dir")
    @classmethod
    def _relative_dir(cls, value: str) -> str:
        cleaned = value.strip().rstrip("/")
        if not cleaned or cleaned.startswith("/") or ".." in cleaned.split("/"):
            raise ValueError(f"must be a folder inside the repository, like .github/personas; got {value!r}")
        return posixpath.normpath(cleaned)

    @field_validator("label_prefix")
    @classmethod
    def _non_empty_prefix(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def persona(self, persona_id: str) -> PersonaConfig | None:
        """The persona's settings here; defaults when not mentioned, None when set to `false`."""
        entry = self.personas.get(persona_id, PersonaConfig())
        return None if entry is False else entry


class RepoConfigError(PermanentError):
    """The config file is invalid; the message names the file, line and key for the repo owner."""

    def __init__(
        self,
        problem: str,
        *,
        key: str | None = None,
        line: int | None = None,
        path: str = CONFIG_PATH,
        more: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.key = key
        self.line = line
        self.problem = problem
        lines = [_format(path, line, key, problem), *more]
        super().__init__("\n".join(lines))


def _format(path: str, line: int | None, key: str | None, problem: str) -> str:
    where = f"`{path}`" + (f", line {line}" if line is not None else "")
    return f"{where}: {key}: {problem}" if key else f"{where}: {problem}"


class _KeysAsTextLoader(yaml.SafeLoader):
    """SafeLoader whose mapping keys are always the text as written.

    PyYAML implements YAML 1.1, where the plain scalars `on`, `off`, `yes`, `no` are booleans; GitHub
    users write `on:` as a key (as in Actions workflows) and mean the word. Values keep the normal
    resolution, so `draft: false` is still a boolean. Duplicate keys are refused instead of PyYAML's
    silent last-one-wins, which would hide half of a user's settings.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):  # pragma: no cover - PyYAML only calls us on maps
            return super().construct_mapping(node, deep=deep)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark
                )
            key = key_node.value
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_KeysAsTextLoader.add_constructor(
    "tag:yaml.org,2002:map",
    lambda loader, node: loader.construct_mapping(node, deep=True),
)


def _index_lines(node: yaml.Node, path: _KeyPath, out: dict[_KeyPath, int], seen: set[int]) -> None:
    """Record the 1-based line of every key and list item, by its path in the data."""
    out.setdefault(path, node.start_mark.line + 1)
    # An alias reuses a node: walk each node once, or `&a [*a, *a]` chains explode (or loop).
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, key_node.value)
            out.setdefault(key_path, key_node.start_mark.line + 1)
            _index_lines(value_node, key_path, out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), out, seen)


def _load(text: str) -> tuple[Any, dict[_KeyPath, int]]:
    loader = _KeysAsTextLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise RepoConfigError(f"not valid YAML: {problem}", line=line) from exc
    except yaml.YAMLError as exc:
        raise RepoConfigError(f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    lines: dict[_KeyPath, int] = {}
    _index_lines(node, (), lines, set())
    return data, lines


# The model that owns the keys at a data path: unknown keys are explained with the known ones.
def _model_at(path: _KeyPath) -> type[BaseModel] | None:
    if path == ():
        return RepoConfig
    if path == ("limits",):
        return Limits
    if len(path) == 2 and path[0] == "personas":
        return PersonaConfig
    return None


def _user_keys(model: type[BaseModel]) -> list[str]:
    return [name for name, field in model.model_fields.items() if not field.exclude]


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _problem(error: ErrorDetails, path: _KeyPath) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        model = _model_at(path[:-1])
        known = _user_keys(model) if model else []
        hint = difflib.get_close_matches(str(path[-1]), known, n=1)
        text = "unknown key"
        if hint:
            text += f" (did you mean {hint[0]!r}?)"
        if known:
            text += f"; known keys: {', '.join(known)}"
        return text
    if kind == "literal_error" and "on" in path:
        return f"{value!r} is not one of {', '.join(TRIGGER_NAMES)}"
    if kind == "bool_type":
        return f"expected true or false, got {_describe(value)}"
    if kind in ("int_type", "int_parsing"):
        return f"expected a whole number, got {_describe(value)}"
    if kind == "greater_than":
        return f"expected a positive whole number, got {_describe(value)}"
    if kind == "string_type":
        return f"expected text, got {_describe(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, got {_describe(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        if len(path) == 2 and path[0] == "personas":
            return f"expected the persona's settings (a mapping) or false, got {_describe(value)}"
        return f"expected a mapping, got {_describe(value)}"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return error["msg"]


def _line_for(path: _KeyPath, lines: Mapping[_KeyPath, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _key_name(path: _KeyPath) -> str | None:
    # List positions are shown by line, not in the dotted name: `personas.builder.on`.
    names = [str(part) for part in path if not isinstance(part, int)]
    return ".".join(names) or None


def parse_repo_config(text: str | None) -> RepoConfig:
    """Parse the config file's text; None (no file) gives the defaults with `exists=False`.

    Raises RepoConfigError naming the first problem in file order (others follow, one per line).
    """
    if text is None:
        return RepoConfig(exists=False)
    data, lines = _load(text)
    if data is None:
        return RepoConfig(exists=True)
    if not isinstance(data, dict):
        raise RepoConfigError(
            f"expected a mapping of settings at the top level, got {_describe(data)}", line=1
        )
    if "exists" in data:
        # `exists` is our bookkeeping, not a setting; report it as the unknown key it is to users.
        known = ", ".join(_user_keys(RepoConfig))
        raise RepoConfigError(f"unknown key; known keys: {known}", key="exists", line=lines.get(("exists",)))
    try:
        return RepoConfig.model_validate({**data, "exists": True})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = _strip_tags(error["loc"])
            problems.append((_line_for(path, lines) or 0, _key_name(path), _problem(error, path)))
        problems.sort(key=lambda item: item[0])
        first_line, first_key, first_problem = problems[0]
        more = tuple(_format(CONFIG_PATH, line or None, key, problem) for line, key, problem in problems[1:])
        raise RepoConfigError(first_problem, key=first_key, line=first_line or None, more=more) from None


def _strip_tags(loc: _KeyPath) -> _KeyPath:
    # pydantic inserts the discriminator tag after `personas.<id>`; drop it there (and only there, so
    # a persona really named "settings" keeps its name).
    if len(loc) >= 3 and loc[0] == "personas" and loc[2] in ("settings", "off"):
        return (*loc[:2], *loc[3:])
    return loc
