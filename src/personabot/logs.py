"""Logging: one handler for personabot, uvicorn and libraries, in `pretty` or `json` format.

Every line says which delivery, run, repository and persona it concerns, without each call site
passing them: `log_context(...)` puts them in a context variable for the duration of a block, so
they follow the code into functions and asyncio tasks and never into another thread's lines.

Secrets never reach the output: a filter on the handler rewrites each record (message, arguments,
traceback) through `agents.redact` plus the literal values of the secret settings, before any
formatter sees it. Being on the handler, it also covers uvicorn's and httpx's records.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from personabot.agents import redact, settings_secrets
from personabot.agents.base import REDACTED
from personabot.settings import Settings

CONTEXT_FIELDS = ("delivery_id", "run_id", "repository", "persona")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
# uvicorn's loggers otherwise print with their own handlers and format.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# One INFO line per HTTP request is noise at `info`; they show at `debug`.
CHATTY_LOGGERS = ("httpx", "httpcore", "hishel", "alembic")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("personabot_log_context", default=_EMPTY)

# Beyond agents.redact: the App's JWT (a bearer credential for ten minutes) and the one-time code
# of the setup callback (`/setup/callback?code=...`), which uvicorn's access log would print.
_EXTRA_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"([?&]code=)[^&\s\"']+"), rf"\1{REDACTED}"),
)


# --- context -----------------------------------------------------------------------------------


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach delivery_id, run_id, repository and/or persona to every log line inside the block.

    Nested blocks add to (and may override) the outer fields; None values are left out. The values
    live in a context variable, so each thread and asyncio task sees only its own.
    """
    unknown = sorted(set(fields) - set(CONTEXT_FIELDS))
    if unknown:
        raise TypeError(f"log_context() got unknown field(s) {', '.join(unknown)}; known: {', '.join(CONTEXT_FIELDS)}")
    merged = {**_context.get(), **{key: value for key, value in fields.items() if value is not None}}
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    """The fields `log_context` has set here (for handing to work started elsewhere)."""
    return dict(_context.get())


def _record_context(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in CONTEXT_FIELDS if getattr(record, name, None) is not None}


class ContextFilter(logging.Filter):
    """Copies the current log context onto the record (`extra=` given at the call site wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


# --- redaction ---------------------------------------------------------------------------------


class RedactionFilter(logging.Filter):
    """Rewrites each record so that no key, secret or token reaches any formatter."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        text = redact(text, self.secrets)
        for pattern, replacement in _EXTRA_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: logging would print them raw in its error report
            message = f"{record.msg} (the log call's arguments could not be formatted)"
        record.msg = self.redact(str(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters (ours and logging's) use a record's exc_text rather than format it again.
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


# --- formats -----------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the context fields known, exception."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(_record_context(record))
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


_COLORS = {"DEBUG": "\x1b[2m", "INFO": "\x1b[32m", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[1;31m"}
_RESET = "\x1b[0m"


class PrettyFormatter(logging.Formatter):
    """`2026-12-03 16:51:29 INFO  personabot.runner  message  run_id=7 persona=builder`."""

    def __init__(self, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        level = f"{record.levelname:<7}"
        if self.color:
            level = f"{_COLORS.get(record.levelname, '')}{level}{_RESET}"
        line = f"{when} {level} {record.name}  {record.getMessage()}"
        context = _record_context(record)
        if context:
            line += "  " + " ".join(f"{name}={value}" for name, value in context.items())
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


# --- setup -------------------------------------------------------------------------------------


def log_level(name: str) -> int:
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"LOG_LEVEL={name!r} is unknown: use one of {', '.join(LEVELS)}") from None


def secret_values(settings: Settings) -> list[str]:
    """The literal values to remove: the secret settings, and each line of a PEM key on its own.

    Lines matter because a key can be printed in pieces (a traceback, a wrapped value) where the
    whole value and the BEGIN/END pattern no longer match.
    """
    values = settings_secrets(settings)
    for value in list(values):
        if "-----BEGIN" in value:
            values.extend(line.strip() for line in value.splitlines() if len(line.strip()) >= 16 and "-----" not in line)
    return values


def make_handler(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """The handler every logger writes through: context, then redaction, then the format."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        color = _isatty(stream) and "NO_COLOR" not in os.environ
        handler.setFormatter(PrettyFormatter(color=color))
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactionFilter(secret_values(settings)))
    handler._personabot = True  # type: ignore[attr-defined]  # marks ours, so setup is repeatable
    return handler


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send all logging (personabot, uvicorn, libraries) through one redacting handler on `stream`.

    Calling it again replaces the handler it installed before. uvicorn must then be started with
    `log_config=None`, or it installs its own handlers over these.
    """
    level = log_level(settings.log_level)
    handler = make_handler(settings, stream)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_personabot", False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    return handler


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
