"""`personabot doctor`: is this deployment able to work? One check per moving part, in the order an
operator has to fix them (settings, key, GitHub, database, agent, personas).

Each check returns a `Check` and never raises: a doctor that crashes on the broken thing it was
asked about is no help. The I/O each check needs (the GitHub client, the store, PATH lookup, the
persona folders) is passed in, so tests and other callers (a readiness page) can reuse the checks.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from personabot.errors import PermanentError, TransientError
from personabot.settings import Settings, load_settings, settings_error_text

NOT_RUN_FIX = "fix the checks above first"
ENTERPRISE_HINT = "GitHub Enterprise Server: https://HOST/api/v3"
API_FIX = f"check GITHUB_API_URL ({ENTERPRISE_HINT})"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    items: tuple[str, ...] = ()  # one line each under the check (e.g. every broken persona file)


def not_run(name: str, why: str = "") -> Check:
    return Check(name, False, f"not run ({why})" if why else "not run", NOT_RUN_FIX)


def format_check(check: Check, *, ascii: bool = False) -> str:
    """`✓ name: detail` or `✗ name: detail — fix: …`, then the items indented below."""
    mark = ("[ok]" if check.ok else "[FAIL]") if ascii else ("✓" if check.ok else "✗")
    line = f"{mark} {check.name}: {check.detail}"
    if not check.ok and check.fix:
        line += f" {'-' if ascii else '—'} fix: {check.fix}"
    return "\n".join([line, *(f"    {item}" for item in check.items)])


# -- 1. settings ---------------------------------------------------------------------------------

SETUP_FIX = "run `personabot serve` to register the app (setup mode), or set them in .env"


def check_settings(settings: Settings) -> Check:
    key_name = "PRIVATE_KEY" if settings.private_key is not None else "PRIVATE_KEY_PATH"
    present = {
        "APP_ID": settings.app_id is not None,
        key_name: bool(settings.private_key or settings.private_key_path),
        "WEBHOOK_SECRET": bool(
            settings.webhook_secret and settings.webhook_secret.get_secret_value()
        ),
    }
    missing = [name for name, ok in present.items() if not ok]
    if missing:
        names = ["PRIVATE_KEY (or PRIVATE_KEY_PATH)" if n == key_name else n for n in missing]
        return Check("settings", False, f"missing {_and(names)}", SETUP_FIX)
    return Check("settings", True, f"{_and(list(present))} are set")


def check_unreadable_settings(error: ValidationError) -> Check:
    """Settings that cannot be parsed: names the variables, never their values (may be secret)."""
    return Check("settings", False, settings_error_text(error), "correct it in the environment or in .env")


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# -- 2. private key ------------------------------------------------------------------------------

KEY_FIX = (
    "set PRIVATE_KEY_PATH to the .pem file from the app's settings page on GitHub "
    "(or PRIVATE_KEY to its text)"
)


def describe_private_key(pem: str) -> str:
    """'an RSA 2048-bit private key', or ValueError saying what is wrong (never quoting the key)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if "-----BEGIN" not in pem:
        raise ValueError("is not PEM text (no -----BEGIN line)")
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except TypeError:  # cryptography's way of saying "this one needs a passphrase"
        raise ValueError("holds a passphrase-protected key; GitHub's keys have none") from None
    except Exception:  # ValueError / UnsupportedAlgorithm; their text may echo key bytes
        raise ValueError("does not hold a readable PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "").upper() or "non-RSA"
        kind = {"ELLIPTICCURVE": "EC"}.get(kind, kind)
        raise ValueError(f"holds an {kind} key; GitHub App keys are RSA")
    return f"an RSA {key.key_size}-bit private key"


def check_private_key(settings: Settings, cwd: Path | None = None) -> Check:
    if settings.private_key is not None:
        source = "PRIVATE_KEY"
        pem = settings.private_key.get_secret_value()
    elif settings.private_key_path is not None:
        path = settings.private_key_path
        source = f"PRIVATE_KEY_PATH={path}"
        where = "" if path.is_absolute() else f" ({(cwd or Path.cwd()) / path})"
        try:
            pem = (path if path.is_absolute() else (cwd or Path.cwd()) / path).read_text("utf-8")
        except FileNotFoundError:
            return Check("private key", False, f"{source} does not exist{where}", KEY_FIX)
        except UnicodeDecodeError:
            return Check("private key", False, f"{source} is not text (a DER key?)", KEY_FIX)
        except OSError as exc:
            detail = f"{source} cannot be read{where}: {exc.strerror}"
            return Check("private key", False, detail, KEY_FIX)
    else:
        return not_run("private key", "no key is set")
    try:
        kind = describe_private_key(pem)
    except ValueError as exc:
        return Check("private key", False, f"{source} {exc}", KEY_FIX)
    return Check("private key", True, f"{kind} from {source}")


# -- 3. GET /app ---------------------------------------------------------------------------------


def _make_app(settings: Settings) -> Any:
    from githubkit.cache import MemCacheStrategy

    from personabot.github import GitHubApp

    # No backoff: the operator is waiting at a terminal, one attempt says enough.
    return GitHubApp(settings, cache_strategy=MemCacheStrategy(), max_retries=0)


def check_github_app(settings: Settings, make_app: Callable[[Settings], Any] = _make_app) -> Check:
    from personabot.github import GitHubAPIError

    name = "GitHub App"
    api = settings.github_api_url.rstrip("/")
    asked = f"GET /app at {api}"
    try:
        info = make_app(settings).app_info()
    except GitHubAPIError as exc:
        answer = f"{exc.status} {exc.detail}".strip()
        if exc.status == 401 and "claim" in exc.detail:
            return Check(
                name, False, f"{asked} was refused ({answer})",
                "set this machine's clock right (GitHub checks the token's times; use NTP)",
            )
        if exc.status == 401:
            return Check(
                name, False,
                f"{asked} was refused ({answer}): "
                f"the private key does not belong to app {settings.app_id}",
                "correct APP_ID, or generate a private key on the app's settings page on GitHub "
                "and configure that one",
            )
        return Check(name, False, f"{asked} answered {answer}", API_FIX)
    except TransientError as exc:
        reason = re.sub(r"^GitHub get_app: | \(gave up after \d+ attempts?\)$", "", str(exc))
        if reason.startswith("network error"):
            return Check(
                name, False, f"cannot reach GITHUB_API_URL={api} ({reason})",
                f"check GITHUB_API_URL ({ENTERPRISE_HINT}) and this machine's network or proxy",
            )
        return Check(name, False, f"{asked} failed ({reason})", "try again; GitHub may be down")
    except (PermanentError, ValueError, KeyError) as exc:  # ValueError: an answer that is not JSON
        return Check(name, False, f"{asked} failed: {exc}", API_FIX)
    found = f"{asked} answers app '{info.slug}' (id {info.id})"
    if info.id != settings.app_id:
        return Check(
            name, False, f"{found}, but APP_ID is {settings.app_id}",
            f"set APP_ID={info.id}, or use the private key of app {settings.app_id}",
        )
    return Check(name, True, found)


# -- 4. database ---------------------------------------------------------------------------------

DB_FIX = "run `personabot db upgrade`"


def _open_store(url: str) -> Any:
    from personabot.store import Store

    return Store(url)


def check_database(
    settings: Settings, open_store: Callable[[str], Any] = _open_store, cwd: Path | None = None
) -> Check:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from personabot.store import normalize_url
    from personabot.store.db import all_revisions, head_revision

    name = "database"
    try:
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        url = normalize_url(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - any unparsable URL is the operator's to fix
        return Check(name, False, str(exc), "set DATABASE_URL (sqlite:///FILE or postgresql://…)")
    if url.get_backend_name() == "sqlite" and not url.query.get("uri"):
        # Opening a missing SQLite file creates it: a doctor must not, and an empty new file in
        # the wrong folder is exactly the mistake worth pointing out.
        path = Path(str(url.database))
        path = path if path.is_absolute() else (cwd or Path.cwd()) / path
        if not path.is_file():
            return Check(
                name, False, f"{shown}: the file {path} does not exist",
                "run `personabot db upgrade` to create it, "
                "or set DATABASE_URL to the server's database",
            )
    head = head_revision()
    store = open_store(settings.database_url)
    try:
        if not store.ping():
            try:
                store.current_revision()
                reason = "no answer"
            except SQLAlchemyError as exc:
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return Check(
                name, False, f"{shown} is not reachable ({reason})",
                "check DATABASE_URL and that the database server is running and reachable",
            )
        current = store.current_revision()
    except SQLAlchemyError as exc:
        return Check(name, False, f"{shown}: {str(exc).splitlines()[0]}", "check DATABASE_URL")
    finally:
        store.close()
    if current == head:
        return Check(name, True, f"{shown} is reachable and at the newest migration ({head})")
    if current is None:
        return Check(
            name, False,
            f"{shown} is reachable but has no tables yet (this personabot needs {head})",
            DB_FIX,
        )
    if current not in all_revisions():
        return Check(
            name, False,
            f"{shown} is at migration {current}, which this personabot does not know "
            f"(its newest is {head})",
            "run the personabot version that migrated it, or a newer one",
        )
    detail = f"{shown} is at migration {current}; this personabot needs {head}"
    return Check(name, False, detail, DB_FIX)


# -- 5. agent ------------------------------------------------------------------------------------


def check_agent(settings: Settings, which: Callable[[str], str | None] = shutil.which) -> Check:
    from personabot.agents import PRESETS, agent_from_settings

    name = "agent"
    choice = (settings.agent or "").strip()
    if not choice:
        return Check(
            name, False, "PERSONABOT_AGENT is not set",
            f"set PERSONABOT_AGENT to a preset ({', '.join(sorted(PRESETS))}) or to `command` with "
            "PERSONABOT_AGENT_COMMAND",
        )
    try:
        agent = agent_from_settings(settings)
    except PermanentError as exc:
        variable = "PERSONABOT_AGENT_COMMAND" if choice == "command" else "PERSONABOT_AGENT"
        return Check(name, False, str(exc), f"set {variable}")
    executable = str(getattr(agent, "argv", [""])[0])  # agent_from_settings builds a CommandAgent
    if choice == "command":
        runs = f"PERSONABOT_AGENT_COMMAND runs {executable!r}"
        fix = "install it, or set PERSONABOT_AGENT_COMMAND to a command on PATH or an absolute path"
    else:
        others = ", ".join(sorted(p for p in PRESETS if p != choice))
        runs = f"preset {choice!r} runs {executable!r}"
        fix = (
            f"install {executable}, or set PERSONABOT_AGENT to another preset ({others}) or to "
            "`command` with PERSONABOT_AGENT_COMMAND"
        )
    if "/" in executable:
        # The agent starts inside each run's workspace, so a relative path is the repository's own.
        if not os.path.isabs(executable):
            detail = f"{runs}, a path inside each repository's checkout (not checked)"
            return Check(name, True, detail)
        if os.path.isfile(executable) and os.access(executable, os.X_OK):
            return Check(name, True, f"{runs}, an executable file")
        return Check(name, False, f"{runs}, which is not an executable file", fix)
    found = which(executable)
    if found is None:
        return Check(name, False, f"{runs}, which is not on PATH", fix)
    return Check(name, True, f"{runs}, found at {found}")


# -- 6. personas ---------------------------------------------------------------------------------


def check_personas(settings: Settings, sources: Callable[[Settings], Any] | None = None) -> Check:
    from personabot.personas import PersonaError, load_personas

    if sources is None:
        from personabot.pipeline import base_sources

        sources = base_sources
    name = "personas"
    where = "the built-in personas"
    if settings.personas_dir is not None:
        where += f" and PERSONABOT_PERSONAS_DIR={settings.personas_dir}"
    try:
        loaded = load_personas(sources(settings))
    except PersonaError as exc:
        if exc.message == "personas folder not found" and settings.personas_dir is not None:
            return Check(
                name, False, f"PERSONABOT_PERSONAS_DIR={settings.personas_dir} is not a folder",
                "create it, or unset PERSONABOT_PERSONAS_DIR",
            )
        return Check(name, False, str(exc), "correct the file named")
    except (OSError, UnicodeDecodeError) as exc:
        fix = "check the folder's files and permissions"
        return Check(name, False, f"cannot read {where}: {exc}", fix)
    ids = ", ".join(loaded.personas)
    if loaded.errors:
        count = len(loaded.errors)
        return Check(
            name, False,
            f"{count} file{'s' if count != 1 else ''} with errors "
            f"({len(loaded.personas)} loaded: {ids})",
            "correct the files listed below; "
            "`personabot personas check` also test-renders every persona",
            items=tuple(str(error) for error in loaded.errors),
        )
    return Check(name, True, f"{len(loaded.personas)} loaded ({ids}) from {where}")


# -- all of them ---------------------------------------------------------------------------------

NAMES = ("settings", "private key", "GitHub App", "database", "agent", "personas")


def iter_checks(settings: Settings) -> Iterator[Check]:
    """The six checks in order, each when done; GET /app only once the settings and key pass."""
    first = [check_settings(settings), check_private_key(settings)]
    yield from first
    yield check_github_app(settings) if all(c.ok for c in first) else not_run("GitHub App")
    yield check_database(settings)
    yield check_agent(settings)
    yield check_personas(settings)


def diagnose(load: Callable[[], Settings] = load_settings) -> Iterator[Check]:
    try:
        settings = load()
    except ValidationError as exc:
        yield check_unreadable_settings(exc)
        yield from (not_run(name) for name in NAMES[1:])
        return
    yield from iter_checks(settings)


def main(out: TextIO) -> int:
    """Print one line per check; 1 when any failed."""
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        "✓✗—".encode(encoding)
        ascii = False
    except (UnicodeEncodeError, LookupError):
        ascii = True
    failed = 0
    for check in diagnose():
        print(format_check(check, ascii=ascii), file=out, flush=True)
        failed += not check.ok
    return 1 if failed else 0
