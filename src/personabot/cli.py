"""The `personabot` command: one sub-command per job, each reading the settings once."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
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
from personabot.settings import Settings, load_settings, settings_error_text


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, as the list commands print them."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _fail(message: str, command: str = "personabot") -> int:
    """A usage or setup error: the message on stderr, exit status 2."""
    print(f"{command}: {message}", file=sys.stderr)
    return 2


# --- personas ---------------------------------------------------------------------------------

SAMPLE_REPO = "octo-org/example"


def _persona_folders(settings: Settings, extra: Sequence[Path]) -> list[tuple[str, Path]]:
    """Built-in, then PERSONABOT_PERSONAS_DIR, then each --dir: lowest precedence first."""
    folders = [("builtin", builtin_dir())]
    operator = settings.personas_dir
    if operator is not None:
        folders.append((str(operator), operator))
    folders.extend((str(path), path) for path in extra)
    return folders


def _load(args: argparse.Namespace) -> PersonaSet:
    return load_folders(_persona_folders(args.settings, args.dir))


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
    headers = ["ID", "EMOJI", "MODE", "DEDUPE", "PLAN APPROVAL", "ENABLED", "SOURCE"]
    rows = [
        [
            persona.id,
            persona.emoji,
            persona.automation_mode,
            _yes(persona.dedupe),
            _yes(persona.require_plan_approval),
            _yes(persona.enabled),
            persona.source,
        ]
        for persona in personas.personas.values()
    ]
    print(_table(headers, rows))
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


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than `minimum`, with a message naming the bound."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


def add_web_commands(subparsers: Any) -> None:
    """Register `serve`; `subparsers` is what `ArgumentParser.add_subparsers()` returned."""
    serve = subparsers.add_parser(
        "serve",
        help="run the web server (webhook intake) and worker slots in one process",
        description="Run the web server and N worker slots in one process. Needs WEBHOOK_SECRET.",
    )
    serve.add_argument(
        "--workers", type=_at_least(0), default=2, metavar="N",
        help="worker slots in this process (default 2; 0 = web only, as in the Procfile)",
    )
    serve.add_argument("--host", default=None, metavar="H", help="listen address (default HOST, 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, metavar="P", help="listen port (default PORT, 3000)")
    serve.set_defaults(handler=_serve)



def _serve(args: argparse.Namespace) -> int:
    # Imported here so that other commands do not pay for the web stack.
    import uvicorn

    from personabot import setup
    from personabot.errors import PermanentError
    from personabot.server import Server
    from personabot.store import Store
    from personabot.web import WebhookSecretMissing, webhook_secret

    settings: Settings = args.settings
    # Refuse before touching the database: setup mode in production, or webhooks without a secret.
    try:
        if setup.needs_setup(settings):
            setup.check_setup_allowed(settings)
        else:
            webhook_secret(settings)
    except (setup.SetupNotAllowed, WebhookSecretMissing) as exc:
        return _fail(str(exc), "personabot serve")
    try:
        store = Store(settings.database_url)
        store.upgrade()  # idempotent; safe when a worker process starts at the same time
        server = Server(settings, store, workers=args.workers)
        server.prepare()
        app = server.app()
    except (PermanentError, setup.SetupError) as exc:
        return _fail(str(exc), "personabot serve")
    if server.setup_mode:
        print(f"personabot: setup mode: open {settings.url}/ to register the GitHub App", file=sys.stderr)
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # our handler (configured in main) formats and redacts uvicorn's lines too
    )
    return 0


# --- end of web commands -------------------------------------------------------------------------


# --- try: `personabot try` (logic in trylocal.py) -----------------------------------------------


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
        "--issue-number", type=_at_least(1), metavar="N",
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
    return trylocal.main(request, sys.stdout, sys.stderr, settings=args.settings)


# --- end of try ----------------------------------------------------------------------------------


# ---- store and worker commands: db, runs, deliveries, worker ----------------------------------


def add_store_commands(subparsers: Any) -> None:
    """`personabot db upgrade|downgrade REV|current`, `runs`, `deliveries`, `worker`."""
    db = subparsers.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema (or REV)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=_cmd_db_upgrade)
    down = db_sub.add_parser("downgrade", help="migrate down to REV ('base' empties the database)")
    down.add_argument("revision")
    down.set_defaults(handler=_cmd_db_downgrade)
    current = db_sub.add_parser("current", help="show the database's and the code's revision")
    current.set_defaults(handler=_cmd_db_current)

    runs = subparsers.add_parser("runs", help="list recent runs, newest first")
    runs.add_argument("--status", help="only runs in this status (queued, running, failed, ...)")
    runs.add_argument("--limit", type=int, default=50)
    runs.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    runs.set_defaults(handler=_cmd_runs)

    deliveries = subparsers.add_parser("deliveries", help="list recent webhook deliveries")
    deliveries.add_argument("--status", help="received, planning, planned, ignored or failed")
    deliveries.add_argument("--limit", type=int, default=50)
    deliveries.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    deliveries.set_defaults(handler=_cmd_deliveries)

    worker = subparsers.add_parser(
        "worker", help="plan deliveries and execute runs (no web server)"
    )
    worker.add_argument("--concurrency", type=int, default=2, help="runs executed at once")
    worker.add_argument("--lease", type=float, default=60.0, help="lease seconds (renewed)")
    worker.add_argument(
        "--grace", type=float, default=30.0, help="seconds SIGTERM waits for running runs"
    )
    worker.add_argument(
        "--metrics-port", type=_at_least(1), metavar="P",
        help="serve this process's Prometheus metrics (runs, durations, GitHub calls) on port P",
    )
    worker.set_defaults(handler=_cmd_worker)


def _open_store(settings: Any) -> Any:
    from personabot.store import Store

    return Store(settings.database_url)


def _store_command(args: argparse.Namespace, action: Any) -> int:
    from personabot.errors import PermanentError

    settings = args.settings
    try:
        store = _open_store(settings)
    except PermanentError as exc:
        return _fail(str(exc))
    try:
        return int(action(store, settings) or 0)
    except PermanentError as exc:
        return _fail(str(exc))
    finally:
        store.close()


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> None:
        store.upgrade(args.revision)
        print(f"database at revision {store.current_revision()}")

    return _store_command(args, action)


def _cmd_db_downgrade(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> None:
        store.downgrade(args.revision)
        print(f"database at revision {store.current_revision() or 'base (empty)'}")

    return _store_command(args, action)


def _cmd_db_current(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> int:
        current, head = store.current_revision(), store.head_revision()
        state = "up to date" if current == head else "needs `personabot db upgrade`"
        print(f"current: {current or 'none'}\nhead:    {head}\n{state}")
        return 0

    return _store_command(args, action)


def _short(text: str | None, width: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _cmd_runs(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> int:
        from personabot.store import RUN_STATUSES

        if args.status is not None and args.status not in RUN_STATUSES:
            return _fail(f"--status {args.status!r}: one of {', '.join(RUN_STATUSES)}")
        records = store.list_runs(status=args.status, limit=args.limit)
        if args.json:
            print(json.dumps([r.to_json() for r in records], indent=2))
            return 0
        rows = [
            [
                str(r.id),
                r.status,
                str(r.attempts),
                r.concurrency_key,
                r.trigger + (f" (+{r.triggers_coalesced})" if r.triggers_coalesced else ""),
                _when(r.created_at),
                _short(r.pr_url or r.message or r.error),
            ]
            for r in records
        ]
        headers = ["ID", "STATUS", "ATTEMPTS", "KEY", "TRIGGER", "CREATED", "RESULT"]
        print(_table(headers, rows) if rows else "no runs")
        return 0

    return _store_command(args, action)


def _cmd_deliveries(args: argparse.Namespace) -> int:
    def action(store: Any, _settings: Any) -> int:
        from personabot.store import DELIVERY_STATUSES

        if args.status is not None and args.status not in DELIVERY_STATUSES:
            return _fail(f"--status {args.status!r}: one of {', '.join(DELIVERY_STATUSES)}")
        records = store.list_deliveries(limit=args.limit, status=args.status)
        if args.json:
            print(json.dumps([d.to_json() for d in records], indent=2))
            return 0
        rows = [
            [
                d.id,
                d.event + (f".{d.action}" if d.action else ""),
                d.repository or "-",
                d.status,
                _when(d.received_at),
                _short(d.reason),
            ]
            for d in records
        ]
        headers = ["DELIVERY", "EVENT", "REPOSITORY", "STATUS", "RECEIVED", "REASON"]
        print(_table(headers, rows) if rows else "no deliveries")
        return 0

    return _store_command(args, action)


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        return _fail("--concurrency must be at least 1")

    def action(store: Any, settings: Any) -> int:
        from personabot import worker as worker_module

        planner, executor = worker_module.default_pipeline(settings)
        store.upgrade()
        if args.metrics_port is not None:
            from personabot import metrics

            metrics.serve(args.metrics_port, settings.host, store)
        worker = worker_module.Worker(
            store,
            planner,
            executor,
            lease_seconds=args.lease,
            concurrency=args.concurrency,
            grace_seconds=args.grace,
        )
        if worker.run():
            from personabot.agents import stop_all_agents

            stop_all_agents()  # runs were released after the grace period: end their agents too
        return 0

    return _store_command(args, action)


# ---- end of store and worker commands ---------------------------------------------------------


# --- doctor: `personabot doctor` (checks in doctor.py) -------------------------------------------


def add_doctor_commands(subparsers: Any) -> None:
    """Register `doctor`; `subparsers` is what `ArgumentParser.add_subparsers()` returned."""
    command = subparsers.add_parser(
        "doctor",
        help="check settings, key, GitHub, database, agent and personas; one line each",
        description=(
            "Check that this deployment can work: settings present, the private key parses, GET /app "
            "answers with APP_ID, the database is reachable and migrated, the agent's executable is "
            "found, the personas load. Changes nothing. Exit 0: all passed; 1: something failed."
        ),
    )
    # Doctor reads the settings itself: unreadable settings are one of the things it reports.
    command.set_defaults(handler=_doctor, reads_own_settings=True)


def _doctor(args: argparse.Namespace) -> int:
    import logging

    from personabot import doctor

    logging.getLogger().setLevel(logging.WARNING)  # the report is the output; progress logs are noise
    return doctor.main(sys.stdout)


# --- end of doctor -------------------------------------------------------------------------------


# --- entry point ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personabot", description="Run coding-agent personas on GitHub repositories.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_personas_commands(subparsers)
    add_web_commands(subparsers)
    add_try_commands(subparsers)
    add_store_commands(subparsers)
    add_doctor_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    from personabot.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "reads_own_settings", False):
        return int(args.handler(args) or 0)
    try:
        args.settings = load_settings()  # read once; every command takes them from here
        configure_logging(args.settings)
    except ValidationError as exc:
        print(f"personabot: invalid settings: {settings_error_text(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"personabot: invalid settings: {exc}", file=sys.stderr)
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
