"""The two ASGI apps `bench/intake.py` serves with uvicorn (`--factory --app-dir bench`).

Settings come from the environment the benchmark gives the server process: WEBHOOK_SECRET and
DATABASE_URL (sqlite:///<temp file>).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from personabot.settings import load_settings
from personabot.web import (
    DeliveryRecorder,
    create_app,
    verify_signature,
    webhook_secret,
)


def _store(database_url: str) -> DeliveryRecorder:
    from personabot.store import Store

    store = Store(database_url)
    store.upgrade()
    return store


def personabot_app() -> Starlette:
    """The real intake: personabot.web.create_app with the real store on SQLite."""
    settings = load_settings()
    return create_app(settings, _store(settings.database_url))


def baseline_app() -> Starlette:
    """The floor to compare with: read the body, verify the signature, answer 202, store nothing."""
    settings = load_settings()
    secret = webhook_secret(settings)

    async def webhook(request: Request) -> Response:
        body = await request.body()
        if not verify_signature(secret, body, request.headers.get("x-hub-signature-256")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        delivery = request.headers.get("x-github-delivery", "")
        return JSONResponse({"delivery": delivery, "duplicate": False}, status_code=202)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route(settings.webhook_path, webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
