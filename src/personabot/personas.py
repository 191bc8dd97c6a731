"""Personas: the file format, loading with precedence, and sandboxed rendering.

A persona is Markdown with YAML front matter and a Jinja2 body. Files come from three places
(built-in, operator, repository) and the repository's are written by strangers, so everything here
is pure and defensive: the loader takes texts (relative path -> text) rather than reading disk or
the API, and rendering runs in Jinja's immutable sandbox with undefined variables as errors.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType, TracebackType
from typing import Any, Literal

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from personabot.sanitize import sanitize_text

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_TITLE = "{{ emoji }} {{ id }}: automated changes for {{ repo }}"
AUTOMATION_MODES = ("AUTO_CREATE_PR", "MANUAL", "AUTOMATION_MODE_UNSPECIFIED")
TITLE_MAX = 256
JOURNAL_LIMIT = 10
JOURNALS_DIR = ".personabot/journals"
TRIGGERS = ("push", "label", "install", "comment", "schedule", "manual")


class PersonaError(Exception):
    """Anything wrong with a persona: YAML, validation, template syntax, rendering, sandbox.

    One type so callers (the CLI, the runner's status comment) can show every problem the same way:
    where it is and what to do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        what = f"{self.key}: " if self.key else ""
        return f"{where}{what}{self.message}"


# --- front matter -----------------------------------------------------------------------------

_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NAMES: tuple[dict[str, int], ...] = (
    {},
    {},
    {},
    {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())},
    {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())},
)
_CRON_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _cron_value(text: str, index: int) -> int:
    names = _CRON_NAMES[index]
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ValueError(f"{_CRON_FIELD_NAMES[index]} {text!r} is not a number")
    low, high = _CRON_RANGES[index]
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{_CRON_FIELD_NAMES[index]} {value} is outside {low}-{high}")
    return value


def validate_cron(expression: str) -> str:
    """Check a five-field cron expression (used by schedules later; rejected early now)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expression!r} must have 5 fields, it has {len(fields)}")
    try:
        for index, part in enumerate(fields):
            for item in part.split(","):
                _check_cron_item(item, index)
    except ValueError as exc:
        raise ValueError(f"cron {expression!r}: {exc}") from None
    return expression


def _check_cron_item(item: str, index: int) -> None:
    base, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"step {step!r} must be a positive number")
    if base == "*":
        return
    low, _, high = base.partition("-")
    first = _cron_value(low, index)
    if high and _cron_value(high, index) < first:
        raise ValueError(f"range {base!r} runs backwards")


class FrontMatter(BaseModel):
    """The persona's settings: the single source of truth for keys, types and defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: StrictStr
    emoji: StrictStr = ""
    title: StrictStr = DEFAULT_TITLE
    description: StrictStr = ""
    automation_mode: StrictStr = "AUTO_CREATE_PR"
    require_plan_approval: StrictBool = False
    dedupe: StrictBool = True
    enabled: StrictBool = True
    schedule: tuple[StrictStr, ...] | None = None
    branch: StrictStr | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not a valid id: use lowercase letters, digits, '-' and '_' "
                "(at most 64, starting with a letter or digit)"
            )
        return value

    @field_validator("automation_mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in AUTOMATION_MODES:
            raise ValueError(
                f"{value!r} is not an automation mode; allowed: {', '.join(AUTOMATION_MODES)}"
            )
        # The unspecified mode of the format this one generalises means "ask first".
        return "MANUAL" if value == "AUTOMATION_MODE_UNSPECIFIED" else value

    @field_validator("schedule", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("schedule")
    @classmethod
    def _cron_fields(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for expression in value or ():
            validate_cron(expression)
        return value


# --- loaded personas --------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A Jinja template's text and where it came from, compiled on first use.

    Compiling is most of the cost of loading, and the planner loads every persona of a repository
    for each delivery while only the one that runs is rendered.
    """

    source: str
    text: str
    first_line: int  # line in the file where the template's first line sits

    def compiled(self) -> jinja2.Template:
        try:
            return _compile_cached(self.text)
        except jinja2.TemplateSyntaxError as exc:
            line = self.first_line + (exc.lineno or 1) - 1
            raise PersonaError(
                f"template syntax error: {exc.message}", file=self.source, line=line
            ) from None


@dataclass(frozen=True)
class Persona:
    """One persona: its front matter, its body template, and which file defined it."""

    meta: FrontMatter
    body: Template
    title_template: Template
    source: str
    origin: str

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def emoji(self) -> str:
        return self.meta.emoji

    @property
    def title(self) -> str:
        return self.meta.title

    @property
    def description(self) -> str:
        return self.meta.description

    @property
    def automation_mode(self) -> Literal["AUTO_CREATE_PR", "MANUAL"]:
        return "MANUAL" if self.meta.automation_mode == "MANUAL" else "AUTO_CREATE_PR"

    @property
    def require_plan_approval(self) -> bool:
        return self.meta.require_plan_approval

    @property
    def dedupe(self) -> bool:
        return self.meta.dedupe

    @property
    def enabled(self) -> bool:
        return self.meta.enabled

    @property
    def schedule(self) -> tuple[str, ...] | None:
        return self.meta.schedule

    @property
    def branch(self) -> str | None:
        return self.meta.branch


@dataclass(frozen=True)
class PersonaSet:
    """Every persona, partial and block from all sources, after precedence was applied."""

    personas: Mapping[str, Persona]
    partials: Mapping[str, Template] = field(default_factory=dict)
    errors: tuple[PersonaError, ...] = ()

    def get(self, persona_id: str) -> Persona:
        try:
            return self.personas[persona_id]
        except KeyError:
            failed = [e for e in self.errors if _id_of_source(e.file) == persona_id]
            if failed:
                raise failed[0] from None
            known = ", ".join(sorted(self.personas)) or "none"
            raise PersonaError(f"no persona {persona_id!r}; known: {known}") from None


Source = tuple[str, Mapping[str, str]]
"""(label, {path relative to the personas folder: text}); the label prefixes file names in errors."""


_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


@functools.lru_cache(maxsize=512)
def _compile_cached(text: str) -> jinja2.Template:
    # Keyed by text: a repository's personas are fetched anew for every run, usually unchanged.
    return _ENV.from_string(text)


def _split_front_matter(text: str, source: str) -> tuple[str, str, int]:
    """Return (front matter, body, line of the body's first line)."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        raise PersonaError("missing front matter: the file must start with a '---' line", file=source, line=1)
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    raise PersonaError("front matter is not closed: add a '---' line after it", file=source, line=1)


_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_front_matter(front: str) -> tuple[object, dict[str, int]]:
    """Parse YAML safely and note the line (1-based, within the front matter) of each top key.

    One pass: the node tree gives the lines for error messages, then becomes the data.
    """
    loader = _YamlLoader(front)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines = {}
        if isinstance(node, yaml.MappingNode):
            lines = {
                str(key.value): key.start_mark.line + 1
                for key, _ in node.value
                if isinstance(key, yaml.ScalarNode)
            }
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def parse_persona(text: str, source: str, expected_id: str, origin: str = "") -> Persona:
    """Parse and validate one persona file; raise PersonaError naming the file, key and line."""
    front, body, body_line = _split_front_matter(text, source)
    try:
        data, lines = _load_front_matter(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise PersonaError(f"invalid YAML front matter: {problem}", file=source, line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PersonaError("front matter must be a mapping of keys to values", file=source, line=2)
    try:
        meta = FrontMatter.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) if error["loc"] else None
        top = str(error["loc"][0]) if error["loc"] else ""
        line = lines[top] + 1 if top in lines else 2
        raise PersonaError(_explain(error), file=source, line=line, key=key) from None
    if meta.id != expected_id:
        raise PersonaError(
            f"id {meta.id!r} must equal the file's name {expected_id!r}",
            file=source,
            line=lines.get("id", 0) + 1,
            key="id",
        )
    title_line = lines.get("title", 0) + 1
    return Persona(
        meta=meta,
        body=Template(source, body, body_line),
        title_template=Template(source, meta.title, title_line),
        source=source,
        origin=origin,
    )


def _explain(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        allowed = ", ".join(FrontMatter.model_fields)
        return f"unknown key; allowed keys: {allowed}"
    if kind == "bool_type":
        return f"must be true or false, not {error['input']!r}"
    if kind in ("string_type", "tuple_type"):
        return f"has the wrong type ({type(error['input']).__name__}): {error['msg']}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _classify(path: str) -> tuple[str, str] | None:
    """What a file is from its path: ('persona'|'partial'|'block', name), or None to ignore it."""
    parts = PurePosixPath(path).parts
    if not parts or not parts[-1].endswith(".md"):
        return None
    stem = parts[-1][:-3]
    if len(parts) == 1:
        return None if stem.lower() == "readme" else ("persona", stem)
    if len(parts) == 2 and parts[1] == "prompt.md" and parts[0] not in ("partials", "blocks"):
        return ("persona", parts[0])
    if len(parts) == 2 and parts[0] == "partials":
        return ("partial", stem)
    # Blocks may sit inside the personas folder or beside it (`.jules/blocks` next to
    # `.jules/personas`), which a folder reader passes as `../blocks/<name>.md`.
    if parts[-2] == "blocks" and (len(parts) == 2 or parts[:-2] == ("..",)):
        return ("block", f"{stem}_block")
    return None


def _id_of_source(file: str | None) -> str | None:
    if not file:
        return None
    path = PurePosixPath(file)
    return path.parent.name if path.name == "prompt.md" else path.stem


def load_personas(sources: Sequence[Source]) -> PersonaSet:
    """Load personas, partials and blocks from sources given lowest precedence first.

    A later persona with the same id replaces an earlier one, and likewise partials and blocks by
    name. A broken file is reported in `errors` and does not stop the others from loading; a broken
    file also hides an earlier persona of the same id, so a typo never silently runs the old one.
    """
    personas: dict[str, Persona] = {}
    partials: dict[str, Template] = {}
    errors: dict[str, PersonaError] = {}
    for label, files in sources:
        # Blocks beside the folder first, so the folder's own blocks win within one source.
        ordered = sorted(files.items(), key=lambda item: (not item[0].startswith("../"), item[0]))
        for path, text in ordered:
            kind = _classify(path)
            if kind is None:
                continue
            what, name = kind
            source = f"{label.rstrip('/')}/{path}" if label else path
            try:
                if what == "persona":
                    personas[name] = parse_persona(text, source, name, origin=label)
                    errors.pop(name, None)
                else:
                    partials[name] = Template(source, text, 1)
            except PersonaError as exc:
                if what == "persona":
                    personas.pop(name, None)
                    errors[name] = exc
                else:
                    errors[f"{what}:{name}"] = exc
    return PersonaSet(
        personas=MappingProxyType(dict(sorted(personas.items()))),
        partials=MappingProxyType(partials),
        errors=tuple(errors.values()),
    )


def read_folder(folder: Path) -> dict[str, str]:
    """Read a personas folder (and a `blocks/` folder beside it) into texts for `load_personas`."""
    if not folder.is_dir():
        raise PersonaError("personas folder not found", file=str(folder))
    files: dict[str, str] = {}
    sibling_blocks = folder.parent / "blocks"
    if sibling_blocks.is_dir() and sibling_blocks != folder / "blocks":
        for path in sorted(sibling_blocks.glob("*.md")):
            files[f"../blocks/{path.name}"] = path.read_text(encoding="utf-8")
    for path in sorted(folder.rglob("*.md")):
        relative = path.relative_to(folder).as_posix()
        if _classify(relative) is not None:
            files[relative] = path.read_text(encoding="utf-8")
    return files


def builtin_dir() -> Path:
    """The built-in personas: inside the installed package, or at the top of a source checkout."""
    packaged = Path(__file__).with_name("personas")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "personas"


def load_folders(folders: Iterable[tuple[str, Path]]) -> PersonaSet:
    """Load (label, folder) pairs, lowest precedence first: the disk side of `load_personas`."""
    return load_personas([(label, read_folder(path)) for label, path in folders])


# --- rendering --------------------------------------------------------------------------------


def journal_entries_text(entries: Mapping[str, str], limit: int = JOURNAL_LIMIT) -> str:
    """The last `limit` journal entries, oldest first, each under its file name.

    Entry files are named `YYYY-MM-DD-HHMM-<slug>.md`, so name order is time order.
    """
    names = sorted(name for name in entries if name.endswith(".md"))[-limit:]
    return "\n\n".join(f"### {name}\n\n{entries[name].strip()}" for name in names)


def read_journal_entries(workspace: Path, persona_id: str, limit: int = JOURNAL_LIMIT) -> str:
    """Read this persona's journal from a workspace (the disk side of `journal_entries_text`)."""
    folder = workspace / JOURNALS_DIR / persona_id
    if not folder.is_dir():
        return ""
    entries = {
        path.name: path.read_text(encoding="utf-8", errors="replace")
        for path in folder.glob("*.md")
        if path.is_file() and not path.is_symlink()
    }
    return journal_entries_text(entries, limit)


def build_context(
    persona: Persona,
    *,
    repo_full: str,
    default_branch: str = "main",
    base_branch: str | None = None,
    trigger: str = "manual",
    event: str = "",
    issue: Mapping[str, Any] | None = None,
    push: Mapping[str, Any] | None = None,
    comment: Mapping[str, Any] | None = None,
    open_prs: Sequence[Mapping[str, Any]] = (),
    journal_entries: str = "",
    run_id: str = "",
    date: str = "",
) -> dict[str, Any]:
    """The variables a persona's templates see (documented in the README's table)."""
    if trigger not in TRIGGERS:
        raise PersonaError(f"unknown trigger {trigger!r}; known: {', '.join(TRIGGERS)}")
    owner, _, name = repo_full.partition("/")
    context: dict[str, Any] = persona.meta.model_dump()
    if issue is not None:
        issue = {**issue, "title": sanitize_text(issue.get("title")), "body": sanitize_text(issue.get("body"))}
    if push is not None:
        push = {**push, "commits": list(push.get("commits", ()))[-20:]}
    context.update(
        owner=owner,
        repo=name,
        repo_full=repo_full,
        default_branch=default_branch,
        base_branch=base_branch or persona.branch or default_branch,
        trigger=trigger,
        event=event,
        issue=issue,
        push=push,
        comment=None if comment is None else {**comment, "body": sanitize_text(comment.get("body"))},
        open_prs=[dict(pr) for pr in open_prs],
        journal_entries=journal_entries,
        run_id=run_id,
        date=date,
    )
    return context


def _render(template: Template, context: Mapping[str, Any]) -> str:
    compiled = template.compiled()  # raises PersonaError with the line of a syntax error
    try:
        return compiled.render(context)
    except SecurityError as exc:
        raise PersonaError(
            f"blocked by the sandbox: {exc}", file=template.source, line=_line(template, exc)
        ) from None
    except jinja2.UndefinedError as exc:
        raise PersonaError(
            f"undefined variable: {exc.message}", file=template.source, line=_line(template, exc)
        ) from None
    except jinja2.TemplateError as exc:
        raise PersonaError(f"render error: {exc}", file=template.source, line=_line(template, exc)) from None
    except Exception as exc:  # a template can raise anything a filter raises (e.g. int('x'))
        raise PersonaError(
            f"render error: {type(exc).__name__}: {exc}", file=template.source, line=_line(template, exc)
        ) from None


def _line(template: Template, exc: BaseException) -> int | None:
    """The file line of the innermost template frame in the traceback, when Jinja recorded one."""
    traceback: TracebackType | None = exc.__traceback__
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = template.first_line + traceback.tb_lineno - 1
        traceback = traceback.tb_next
    return line


def _with_partials(personas: PersonaSet, context: Mapping[str, Any]) -> dict[str, Any]:
    full = dict(context)
    for name, partial in personas.partials.items():
        full[name] = _render(partial, context).rstrip("\n")
    return full


def _title(persona: Persona, full_context: Mapping[str, Any]) -> str:
    text = " ".join(_render(persona.title_template, full_context).split())
    if len(text) > TITLE_MAX:
        text = text[: TITLE_MAX - 1].rstrip() + "…"
    return text


def render_title(persona: Persona, personas: PersonaSet, context: Mapping[str, Any]) -> str:
    """The PR title: one line, whitespace collapsed, cut to GitHub's 256 characters."""
    return _title(persona, _with_partials(personas, context))


RUN_INSTRUCTIONS = "run_instructions"


def render_prompt(persona: Persona, personas: PersonaSet, context: Mapping[str, Any]) -> str:
    """The agent's prompt: the body rendered with the context, partials, blocks and the title.

    The `run_instructions` partial (what triggered this run, how to hand work back) is appended
    unless the body places it itself: persona files written for other tools do not mention the
    issue they are asked to work on, and the agent must still see it.
    """
    full = _with_partials(personas, context)
    full["title"] = _title(persona, full)
    prompt = _render(persona.body, full)
    if RUN_INSTRUCTIONS in full and RUN_INSTRUCTIONS not in persona.body.text:
        prompt = f"{prompt.rstrip()}\n\n{full[RUN_INSTRUCTIONS]}\n"
    return prompt
