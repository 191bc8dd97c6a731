"""The `personabot` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="personabot", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_web_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


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


if __name__ == "__main__":
    sys.exit(main())
