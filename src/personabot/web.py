"""The web server: GitHub's webhook intake and a health check.

The intake's one job is to make a delivery durable and answer fast. GitHub waits 10 seconds and
never retries on its own, so nothing here calls GitHub or decides which personas run: the request
verifies the signature, records the delivery once and returns. Planning happens on the worker side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan

from personabot.logs import log_context
from personabot.metrics import DELIVERIES
from personabot.settings import Settings

log = logging.getLogger(__name__)

# GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub and is refused before
# it is held in memory.
MAX_BODY_BYTES = 25 * 1024 * 1024

# The events personabot can ever act on. Everything else is still recorded (an operator can see what
# arrived) but with status "ignored", so the planner never spends a GitHub call on it. Keep in step
# with app.yml's subscribed events and triggers.py.
ACTED_ON_EVENTS: frozenset[str] = frozenset(
    {
        "issues",
        "issue_comment",
        "push",
        "installation",
        "installation_repositories",
        "pull_request",
    }
)

# Events about an installation rather than one repository: their payload lists repositories, and
# the delivery row names none.
_INSTALLATION_EVENTS = frozenset({"installation", "installation_repositories"})

# The label for requests whose event header is not authenticated: a caller without the secret must
# not be able to invent label values.
UNVERIFIED = "unverified"

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


class WebhookSecretMissing(RuntimeError):
    """The server was asked to accept webhooks without a secret to check them with (fail closed)."""


class DeliveryRecorder(Protocol):
    """Where a verified delivery is made durable; `personabot.store.Store` satisfies it.

    Synchronous because it does database I/O; the web layer calls it from a worker thread.
    Returns False when a delivery with this id was already recorded (GitHub's redelivery).
    """

    def record_delivery(
        self,
        id: str,
        event: str,
        action: str | None,
        installation_id: int | None,
        repository: str | None,
        payload: dict[str, Any],
        status: str = "received",
        reason: str | None = None,
    ) -> bool: ...


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `header` is GitHub's `sha256=<hex>` HMAC of `body` under `secret`.

    Only the SHA-256 header counts: the legacy SHA-1 `X-Hub-Signature` is not accepted on its own.
    The comparison is constant-time so a caller cannot learn the digest byte by byte.
    """
    if not secret or header is None:
        return False
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match.group(1).lower())


@dataclass(frozen=True)
class DeliveryFacts:
    """What the deliveries table indexes, read from the payload without trusting its shape."""

    action: str | None
    installation_id: int | None
    repository: str | None
    status: str
    reason: str | None


def delivery_facts(event: str, payload: Mapping[str, Any]) -> DeliveryFacts:
    """Pure pre-filter: the columns of the delivery row, and whether it is ignored outright."""
    action = payload.get("action")
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, Mapping) else None
    repository = None
    if event not in _INSTALLATION_EVENTS:
        repo = payload.get("repository")
        name = repo.get("full_name") if isinstance(repo, Mapping) else None
        repository = name if isinstance(name, str) else None
    if event in ACTED_ON_EVENTS:
        status, reason = "received", None
    else:
        status, reason = "ignored", f"personabot does not act on '{event}' events"
    return DeliveryFacts(
        action=action if isinstance(action, str) else None,
        # bool is an int in Python; a payload saying `"id": true` has no installation id.
        installation_id=(
            installation_id
            if isinstance(installation_id, int) and not isinstance(installation_id, bool)
            else None
        ),
        repository=repository,
        status=status,
        reason=reason,
    )


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


class _TooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refusing as soon as it is known to exceed `limit` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        # isascii: str.isdigit() also accepts digits like "²" that int() refuses.
        if not (declared.isascii() and declared.isdigit()):
            raise HTTPException(400, f"Content-Length header is not a number: {declared[:40]!r}")
        if int(declared) > limit:
            raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    # A chunked body declares no length, so count while streaming and stop at the cap.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def webhook_secret(settings: Settings) -> bytes:
    """The secret as bytes, or WebhookSecretMissing: checked before anything else is started."""
    value = settings.webhook_secret.get_secret_value() if settings.webhook_secret is not None else ""
    if not value:
        raise WebhookSecretMissing(
            "settings.webhook_secret missing: set WEBHOOK_SECRET to the GitHub App's webhook "
            "secret; without it personabot refuses to accept webhooks"
        )
    return value.encode("utf-8")


def webhook_route(settings: Settings, recorder: DeliveryRecorder) -> Route:
    """`POST WEBHOOK_PATH`. Raises WebhookSecretMissing when `settings.webhook_secret` is not set."""
    secret = webhook_secret(settings)

    def accept(delivery_id: str, event: str, body: bytes) -> JSONResponse:
        # Runs in a worker thread: parsing a large payload and the database write both block, and
        # neither may stall the event loop that answers other deliveries.
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            DELIVERIES.labels(event, "bad_request").inc()
            return _error(400, "body is not valid JSON (set the webhook content type to JSON)")
        if not isinstance(payload, dict):
            DELIVERIES.labels(event, "bad_request").inc()
            return _error(400, "body is not a JSON object")
        if event == "ping":
            DELIVERIES.labels(event, "ping").inc()
            return JSONResponse({"ok": True})
        facts = delivery_facts(event, payload)
        with log_context(delivery_id=delivery_id, repository=facts.repository):
            return _record(delivery_id, event, payload, facts)

    def _record(delivery_id: str, event: str, payload: dict[str, Any], facts: DeliveryFacts) -> JSONResponse:
        created = recorder.record_delivery(
            id=delivery_id,
            event=event,
            action=facts.action,
            installation_id=facts.installation_id,
            repository=facts.repository,
            payload=payload,
            status=facts.status,
            reason=facts.reason,
        )
        log.debug("delivery %s (%s) recorded=%s status=%s", delivery_id, event, created, facts.status)
        outcome = "duplicate" if not created else ("ignored" if facts.status == "ignored" else "accepted")
        DELIVERIES.labels(event, outcome).inc()
        return JSONResponse(
            {"delivery": delivery_id, "duplicate": not created},
            status_code=202 if created else 200,
        )

    async def webhook(request: Request) -> Response:
        try:
            body = await _read_capped(request, MAX_BODY_BYTES)
        except _TooLarge:
            DELIVERIES.labels(UNVERIFIED, "too_large").inc()
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        # The signature comes first: an unauthenticated caller learns nothing else about the intake.
        # Checked on the loop: HMAC-SHA256 runs at about 1 GB/s, so even the cap is tens of ms.
        if not verify_signature(secret, body, request.headers.get("x-hub-signature-256")):
            DELIVERIES.labels(UNVERIFIED, "rejected").inc()
            return _error(401, "X-Hub-Signature-256 missing, malformed or not matching the body")
        event = request.headers.get("x-github-event", "").strip()
        if not event:
            DELIVERIES.labels(UNVERIFIED, "bad_request").inc()
            return _error(400, "X-GitHub-Event header missing")
        delivery_id = request.headers.get("x-github-delivery", "").strip()
        if not delivery_id:
            DELIVERIES.labels(event, "bad_request").inc()
            return _error(400, "X-GitHub-Delivery header missing")
        return await run_in_threadpool(accept, delivery_id, event, body)

    return Route(settings.webhook_path, webhook, methods=["POST"])


def create_app(
    settings: Settings,
    recorder: DeliveryRecorder,
    *,
    webhook: bool = True,
    routes: Sequence[BaseRoute] = (),
    lifespan: Lifespan[Starlette] | None = None,
) -> Starlette:
    """The ASGI app: the webhook route (unless `webhook=False`, for setup mode), health and `routes`.

    Raises WebhookSecretMissing when the webhook route is asked for without a secret.
    """
    app_routes: list[BaseRoute] = [webhook_route(settings, recorder)] if webhook else []

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, exc.detail)

    async def server_error(request: Request, exc: Exception) -> Response:
        # GitHub shows a 5xx in the app's delivery log, where an operator can redeliver it.
        return _error(500, "internal error while handling the delivery; see the server log")

    app_routes += [Route("/healthz", healthz, methods=["GET"]), *routes]
    return Starlette(
        routes=app_routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
