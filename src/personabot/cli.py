"""The `personabot` command: one sub-command per job, each reading the settings once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personabot.personas import (
    PersonaError,
    PersonaSet,
    build_context,
    builtin_dir,
    load_folders,
    read_journal_entries,
    render_prompt,
    render_title,
)
from personabot.settings import load_settings

# --- personas ---------------------------------------------------------------------------------

SAMPLE_REPO = "octo-org/example"


def _persona_folders(extra: Sequence[Path]) -> list[tuple[str, Path]]:
    """Built-in, then PERSONABOT_PERSONAS_DIR, then each --dir: lowest precedence first."""
    folders = [("builtin", builtin_dir())]
    operator = load_settings().personas_dir
    if operator is not None:
        folders.append((str(operator), operator))
    folders.extend((str(path), path) for path in extra)
    return folders


def _load(args: argparse.Namespace) -> PersonaSet:
    return load_folders(_persona_folders(args.dir))


def _sample_context(persona, repo: str, trigger: str, journal: str) -> dict:  # type: ignore[no-untyped-def]
    issue = None
    if trigger in ("label", "comment"):
        issue = {
            "number": 1,
            "title": "Sample issue",
            "body": "What the maintainer asked for.",
            "url": f"https://github.com/{repo}/issues/1",
            "labels": [f"persona:{persona.id}"],
        }
    push = None
    if trigger == "push":
        push = {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": "1" * 40,
            "commits": [{"id": "1" * 40, "message": "Sample commit", "added": [], "modified": ["README.md"], "removed": []}],
        }
    open_prs = [
        {
            "number": 2,
            "title": "Sample open pull request",
            "url": f"https://github.com/{repo}/pull/2",
            "headRefName": "personabot/sample",
            "baseRefName": "main",
            "isDraft": False,
            "author": {"login": "personabot[bot]"},
        }
    ]
    return build_context(
        persona,
        repo_full=repo,
        trigger=trigger,
        event={"label": "issues", "comment": "issue_comment", "push": "push"}.get(trigger, ""),
        issue=issue,
        push=push,
        open_prs=open_prs,
        journal_entries=journal,
        run_id="sample",
        date=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def cmd_personas_list(args: argparse.Namespace) -> int:
    personas = _load(args)
    rows = [("ID", "EMOJI", "MODE", "DEDUPE", "PLAN APPROVAL", "ENABLED", "SOURCE")]
    for persona in personas.personas.values():
        rows.append(
            (
                persona.id,
                persona.emoji,
                persona.automation_mode,
                _yes(persona.dedupe),
                _yes(persona.require_plan_approval),
                _yes(persona.enabled),
                persona.source,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for error in personas.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if personas.errors else 0


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def cmd_personas_check(args: argparse.Namespace) -> int:
    personas = _load(args)
    problems = [str(error) for error in personas.errors]
    for persona in personas.personas.values():
        for trigger in ("label", "push"):
            try:
                context = _sample_context(persona, SAMPLE_REPO, trigger, "")
                render_title(persona, personas, context)
                render_prompt(persona, personas, context)
            except PersonaError as exc:
                problems.append(f"{exc} (rendering for a {trigger} trigger)")
                break
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"ok: {len(personas.personas)} personas load and render")
    return 0


def cmd_personas_render(args: argparse.Namespace) -> int:
    personas = _load(args)
    try:
        persona = personas.get(args.id)
        journal = read_journal_entries(args.workspace, persona.id) if args.workspace else ""
        context = _sample_context(persona, args.repo, args.trigger, journal)
        if args.title:
            print(render_title(persona, personas, context))
        else:
            sys.stdout.write(render_prompt(persona, personas, context))
    except PersonaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def add_personas_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = subparsers.add_parser("personas", help="list, check and render personas")
    commands = group.add_subparsers(dest="personas_command", required=True)
    dirs = argparse.ArgumentParser(add_help=False)
    dirs.add_argument(
        "--dir", action="append", type=Path, default=[], metavar="DIR",
        help="an extra personas folder (repeatable; later folders win)",
    )
    commands.add_parser("list", parents=[dirs], help="one line per persona").set_defaults(handler=cmd_personas_list)
    commands.add_parser("check", parents=[dirs], help="validate and test-render all").set_defaults(
        handler=cmd_personas_check
    )
    render = commands.add_parser("render", parents=[dirs], help="print a rendered prompt or title")
    render.add_argument("id")
    render.add_argument("--repo", default=SAMPLE_REPO, metavar="OWNER/NAME")
    render.add_argument("--workspace", type=Path, help="a checkout whose journal entries to include")
    render.add_argument("--trigger", default="manual", choices=("push", "label", "install", "comment", "schedule", "manual"))
    render.add_argument("--title", action="store_true", help="print the PR title instead of the prompt")
    render.set_defaults(handler=cmd_personas_render)


# --- web commands: `personabot serve` ------------------------------------------------------------


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_web_commands(subparsers: Any) -> None:
    """Register `serve`; `subparsers` is what `ArgumentParser.add_subparsers()` returned."""
    serve = subparsers.add_parser(
        "serve",
        help="run the web server (webhook intake) and worker slots in one process",
        description="Run the web server and N worker slots in one process. Needs WEBHOOK_SECRET.",
    )
    serve.add_argument(
        "--workers", type=_non_negative, default=2, metavar="N",
        help="worker slots in this process (default 2; 0 = web only, as in the Procfile)",
    )
    serve.add_argument("--host", default=None, metavar="H", help="listen address (default HOST, 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, metavar="P", help="listen port (default PORT, 3000)")
    serve.set_defaults(handler=_serve)


def _fail(message: str) -> int:
    print(f"personabot serve: {message}", file=sys.stderr)
    return 2


def _serve(args: argparse.Namespace) -> int:
    # Imported here so that other commands do not pay for the web stack.
    import uvicorn
    from pydantic import ValidationError

    from personabot.settings import load_settings
    from personabot.web import WebhookSecretMissing, create_app, webhook_secret

    try:
        settings = load_settings()
    except ValidationError as exc:
        return _fail(f"invalid settings:\n{exc}")
    # Fail closed before touching the database: no secret, no webhooks.
    try:
        webhook_secret(settings)
    except WebhookSecretMissing as exc:
        return _fail(str(exc))
    try:
        from personabot.store import Store
    except ImportError as exc:
        return _fail(f"the delivery store (personabot.store.Store) cannot be imported: {exc}")
    store = Store(settings.database_url)
    store.upgrade()  # idempotent; safe when a worker process starts at the same time
    app = create_app(settings, store)

    # TODO(lead): start `args.workers` worker slots in this process (default 2, 0 = web only) next
    # to the web server, and stop them on SIGTERM with the grace period of issue 3.

    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        log_level=settings.log_level.lower(),
    )
    return 0


# --- end of web commands -------------------------------------------------------------------------


# --- try: `personabot try` (logic in trylocal.py) -----------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def add_try_commands(subparsers: Any) -> None:
    """Register `try`; `subparsers` is what `ArgumentParser.add_subparsers()` returned."""
    command = subparsers.add_parser(
        "try",
        help="run a persona on a temporary copy of a local checkout and show the PR it would open",
        description=(
            "Run the configured agent (PERSONABOT_AGENT) as PERSONA on a temporary copy of a local "
            "checkout, with the server's rendering, guardrails and PR text. Prints the title, the "
            "diff stat, the guardrail verdict and the PR body. Needs no GitHub credentials; the "
            "checkout itself is never changed. Exit 0: allowed change or no change; 1: the agent "
            "failed or the guardrails refused; 2: usage error."
        ),
    )
    command.add_argument("persona", metavar="PERSONA", help="persona id, e.g. builder")
    command.add_argument("path", nargs="?", type=Path, default=Path("."), metavar="PATH", help="the checkout (default: .)")
    command.add_argument("--issue-title", metavar="T", help="run as if labelled on an issue with this title")
    command.add_argument("--issue-body", metavar="B", help="that issue's body")
    command.add_argument(
        "--issue-number", type=_positive_int, metavar="N",
        help="that issue's number (the PR body then says `Closes #N`)",
    )
    command.add_argument("--keep", action="store_true", help="keep the copy and print its path")
    command.add_argument(
        "--dir", action="append", type=Path, default=[], metavar="DIR",
        help="an extra personas folder (repeatable; later folders win)",
    )
    command.set_defaults(handler=_try)


def _try(args: argparse.Namespace) -> int:
    from personabot import trylocal

    request = trylocal.TryRequest(
        persona=args.persona,
        checkout=args.path,
        issue_title=args.issue_title,
        issue_body=args.issue_body,
        issue_number=args.issue_number,
        keep=args.keep,
        dirs=tuple(args.dir),
    )
    return trylocal.main(request, sys.stdout, sys.stderr)


# --- end of try ----------------------------------------------------------------------------------


# --- entry point ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personabot", description="Run coding-agent personas on GitHub repositories.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_personas_commands(subparsers)
    add_web_commands(subparsers)
    add_try_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
