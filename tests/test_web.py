"""Webhook intake through the real ASGI app, and one real uvicorn server.

Recording goes to the real store on SQLite, so duplicate detection is the database's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from personabot.settings import Settings
from personabot.store import Store
from personabot.web import (
    ACTED_ON_EVENTS,
    MAX_BODY_BYTES,
    WebhookSecretMissing,
    create_app,
    delivery_facts,
    verify_signature,
)
from tests import serving
from tests.serving import serve_in_thread


class StoreRecorder(Store):
    """The real store, plus a look at what it recorded (the fields the intake fills in)."""

    def rows(self) -> list[dict[str, Any]]:
        found = [self.get_delivery(info.id) for info in reversed(self.list_deliveries(limit=1000))]
        return [
            {"id": d.id, "event": d.event, "action": d.action, "installation_id": d.installation_id,
             "repository": d.repository, "payload": dict(d.payload), "status": d.status, "reason": d.reason}
            for d in found
            if d is not None
        ]

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "github-webhooks"
SECRET = "It's a Secret to Everybody"
HOOK = "/api/github/webhooks"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def sign(body: bytes, secret: str = SECRET) -> str:
    return serving.sign(body, secret)


def github_headers(body: bytes, event: str = "issues", delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body),
    }


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"webhook_secret": SECRET, "webhook_path": HOOK}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[StoreRecorder]:
    rec = StoreRecorder(f"sqlite:///{tmp_path / 'deliveries.db'}")
    rec.upgrade()
    yield rec
    rec.close()


@pytest.fixture
def app(recorder: StoreRecorder) -> Starlette:
    return create_app(settings(), recorder)


def call(app: Starlette, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def post(app: Starlette, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return call(app, "POST", HOOK, content=body, headers=headers)


LABELED = fixture("issues/labeled.payload.json") | {"installation": {"id": 4242}}
LABELED_BODY = json.dumps(LABELED).encode()


# --- verify_signature: the pure check --------------------------------------------------------


def test_signature_accepts_githubs_own_example() -> None:
    # The worked example from GitHub's "Validating webhook deliveries" documentation.
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify_signature(SECRET.encode(), b"Hello, World!", header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        sign(b"body")[len("sha256=") :],  # the hex without its prefix
        "sha1=" + hashlib.sha1(b"body").hexdigest(),
        "sha256=" + "z" * 64,
        sign(b"body")[:-1],  # 63 hex digits
        sign(b"body") + "0",  # 65 hex digits
        sign(b"body", secret="another secret"),
        sign(b"body altered"),
    ],
    ids=["none", "empty", "no-prefix", "sha1", "not-hex", "short", "long", "wrong-secret", "other-body"],
)
def test_signature_rejects(header: str | None) -> None:
    assert not verify_signature(SECRET.encode(), b"body", header)


def test_signature_accepts_uppercase_hex_and_rejects_empty_secret() -> None:
    header = sign(b"body")
    assert verify_signature(SECRET.encode(), b"body", "sha256=" + header[7:].upper())
    assert not verify_signature(b"", b"body", sign(b"body", secret=""))


# --- the signature matrix through the app --------------------------------------------------


def _sha1_only(body: bytes) -> dict[str, str]:
    headers = github_headers(body)
    del headers["X-Hub-Signature-256"]
    headers["X-Hub-Signature"] = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    return headers


def _with_signature(value: str | None) -> Any:
    def build(body: bytes) -> dict[str, str]:
        headers = github_headers(body)
        if value is None:
            del headers["X-Hub-Signature-256"]
        else:
            headers["X-Hub-Signature-256"] = value
        return headers

    return build


MATRIX = {
    "missing": _with_signature(None),
    "sha1-only": _sha1_only,
    "malformed-hex": _with_signature("sha256=" + "g" * 64),
    "wrong-length": lambda body: github_headers(body) | {"X-Hub-Signature-256": sign(body)[:-2]},
    "wrong-secret": lambda body: github_headers(body) | {"X-Hub-Signature-256": sign(body, "nope")},
    "body-altered": lambda body: github_headers(body + b" ") | {"X-Hub-Signature-256": sign(body)},
}


@pytest.mark.parametrize("case", list(MATRIX))
def test_bad_signature_is_401_and_nothing_is_stored(
    case: str, app: Starlette, recorder: StoreRecorder
) -> None:
    headers = MATRIX[case](LABELED_BODY)
    body = LABELED_BODY + b" " if case == "body-altered" else LABELED_BODY
    response = post(app, body, headers)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]
    assert recorder.rows() == []


def test_correct_signature_stores_the_fixture_with_its_facts(
    app: Starlette, recorder: StoreRecorder
) -> None:
    delivery = str(uuid.uuid4())
    response = post(app, LABELED_BODY, github_headers(LABELED_BODY, "issues", delivery))
    assert response.status_code == 202
    assert response.json() == {"delivery": delivery, "duplicate": False}
    [row] = recorder.rows()
    assert row["id"] == delivery
    assert (row["event"], row["action"]) == ("issues", "labeled")
    assert row["installation_id"] == 4242
    assert row["repository"] == "Codertocat/Hello-World"
    assert (row["status"], row["reason"]) == ("received", None)
    assert row["payload"] == LABELED


def test_installation_event_names_no_repository(app: Starlette, recorder: StoreRecorder) -> None:
    body = (FIXTURES / "installation" / "created.payload.json").read_bytes()
    assert post(app, body, github_headers(body, "installation")).status_code == 202
    [row] = recorder.rows()
    assert (row["event"], row["action"], row["installation_id"]) == ("installation", "created", 957387)
    assert row["repository"] is None


def test_push_without_installation_or_action_is_stored_with_nulls(
    app: Starlette, recorder: StoreRecorder
) -> None:
    body = (FIXTURES / "push" / "payload.json").read_bytes()
    assert post(app, body, github_headers(body, "push")).status_code == 202
    [row] = recorder.rows()
    assert (row["action"], row["installation_id"]) == (None, None)
    assert row["repository"] == "Codertocat/Hello-World"


# --- size cap ------------------------------------------------------------------------------


class CountingBody:
    """A request body that counts how much of it the server pulled."""

    def __init__(self, chunks: int, chunk_size: int = 1024 * 1024) -> None:
        self.chunks, self.chunk_size, self.sent = chunks, chunk_size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            yield b"x" * self.chunk_size


def test_declared_length_over_the_cap_is_413_before_reading(
    app: Starlette, recorder: StoreRecorder
) -> None:
    body = CountingBody(chunks=26)
    headers = github_headers(b"") | {"Content-Length": str(26 * 1024 * 1024)}
    response = post(app, body, headers)  # type: ignore[arg-type]
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]
    assert body.sent == 0
    assert recorder.rows() == []


def test_chunked_body_over_the_cap_is_413_and_reading_stops(
    app: Starlette, recorder: StoreRecorder
) -> None:
    body = CountingBody(chunks=40)
    response = post(app, body, github_headers(b""))  # type: ignore[arg-type]
    assert response.status_code == 413
    assert body.sent == 26  # the chunk that crossed 25 MiB, and not one more
    assert recorder.rows() == []


def test_a_body_of_exactly_the_cap_is_read(app: Starlette, recorder: StoreRecorder) -> None:
    body = b" " * (MAX_BODY_BYTES - 2) + b"[]"
    response = post(app, body, github_headers(body))
    assert response.status_code == 400  # read and verified, then refused as not an object
    assert response.json() == {"error": "body is not a JSON object"}


@pytest.mark.parametrize("declared", [b"12abc", b"\xb2", b"-1"], ids=["letters", "superscript-2", "negative"])
def test_content_length_that_is_not_a_number_is_400(app: Starlette, declared: bytes) -> None:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            # Raw bytes: the server decodes headers as latin-1, where b"\xb2" is "²", a digit to
            # str.isdigit() but not to int().
            headers = github_headers(b"{}") | {"Content-Length": declared}  # type: ignore[dict-item]
            return await client.post(HOOK, content=b"{}", headers=headers)

    response = asyncio.run(go())
    assert response.status_code == 400
    assert "Content-Length" in response.json()["error"]


# --- 400s, ping, duplicates, ignored events ------------------------------------------------


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_github_header_is_400(
    header: str, app: Starlette, recorder: StoreRecorder
) -> None:
    headers = github_headers(LABELED_BODY)
    del headers[header]
    response = post(app, LABELED_BODY, headers)
    assert response.status_code == 400
    assert response.json() == {"error": f"{header} header missing"}
    assert recorder.rows() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"payload=%7B%7D", "body is not valid JSON (set the webhook content type to JSON)"),
        (b'{"unterminated": ', "body is not valid JSON (set the webhook content type to JSON)"),
        (b"\xff\xfe{}", "body is not valid JSON (set the webhook content type to JSON)"),
        (b"[1, 2]", "body is not a JSON object"),
        (b'"text"', "body is not a JSON object"),
        (b"null", "body is not a JSON object"),
    ],
)
def test_body_that_is_not_a_json_object_is_400(
    body: bytes, message: str, app: Starlette, recorder: StoreRecorder
) -> None:
    response = post(app, body, github_headers(body))
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert recorder.rows() == []


def test_ping_answers_ok_and_stores_nothing(app: Starlette, recorder: StoreRecorder) -> None:
    body = (FIXTURES / "ping" / "with-app_id.payload.json").read_bytes()
    response = post(app, body, github_headers(body, "ping"))
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert recorder.rows() == []


def test_unsigned_ping_is_refused(app: Starlette) -> None:
    body = (FIXTURES / "ping" / "payload.json").read_bytes()
    headers = github_headers(body, "ping")
    del headers["X-Hub-Signature-256"]
    assert post(app, body, headers).status_code == 401


def test_redelivery_is_200_duplicate_and_stored_once(
    app: Starlette, recorder: StoreRecorder
) -> None:
    delivery = str(uuid.uuid4())
    headers = github_headers(LABELED_BODY, "issues", delivery)
    first = post(app, LABELED_BODY, headers)
    again = post(app, LABELED_BODY, headers)
    assert (first.status_code, first.json()) == (202, {"delivery": delivery, "duplicate": False})
    assert (again.status_code, again.json()) == (200, {"delivery": delivery, "duplicate": True})
    assert [row["id"] for row in recorder.rows()] == [delivery]


def test_event_the_app_never_acts_on_is_recorded_as_ignored(
    app: Starlette, recorder: StoreRecorder
) -> None:
    body = json.dumps({"action": "created", "repository": {"full_name": "o/r"}}).encode()
    response = post(app, body, github_headers(body, "star"))
    assert response.status_code == 202
    [row] = recorder.rows()
    assert (row["event"], row["status"]) == ("star", "ignored")
    assert row["reason"] == "personabot does not act on 'star' events"


@pytest.mark.parametrize("event", sorted(ACTED_ON_EVENTS))
def test_events_the_app_acts_on_are_received(event: str) -> None:
    facts = delivery_facts(event, {"action": "x"})
    assert (facts.status, facts.reason) == ("received", None)


def test_payload_fields_of_the_wrong_type_become_none() -> None:
    payload = {"action": 3, "installation": {"id": True}, "repository": {"full_name": ["o", "r"]}}
    facts = delivery_facts("issues", payload)
    assert (facts.action, facts.installation_id, facts.repository) == (None, None, None)
    assert delivery_facts("issues", {"installation": "7", "repository": "o/r"}).repository is None


# --- the rest of the app -------------------------------------------------------------------


def test_healthz(app: Starlette) -> None:
    response = call(app, "GET", "/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_errors_outside_the_webhook_route_are_json(app: Starlette) -> None:
    wrong_method = call(app, "GET", HOOK)
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "Method Not Allowed"}
    missing = call(app, "POST", "/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})


def test_webhook_path_follows_settings(recorder: StoreRecorder) -> None:
    app = create_app(settings(webhook_path="/hooks/github"), recorder)
    response = call(app, "POST", "/hooks/github", content=LABELED_BODY, headers=github_headers(LABELED_BODY))
    assert response.status_code == 202
    assert call(app, "POST", HOOK, content=LABELED_BODY, headers=github_headers(LABELED_BODY)).status_code == 404


def test_a_recorder_failure_is_a_json_500(recorder: StoreRecorder, app: Starlette) -> None:
    recorder.downgrade("base")  # the tables go away under the server
    response = post(app, LABELED_BODY, github_headers(LABELED_BODY))
    assert response.status_code == 500
    assert response.json()["error"].startswith("internal error")


@pytest.mark.parametrize("secret", [None, ""])
def test_no_secret_no_webhook_route(secret: str | None, recorder: StoreRecorder) -> None:
    with pytest.raises(WebhookSecretMissing, match="settings.webhook_secret missing"):
        create_app(settings(webhook_secret=secret), recorder)


# --- a real server -------------------------------------------------------------------------


@pytest.fixture
def served(app: Starlette) -> Iterator[str]:
    """The app behind a real uvicorn server on a free loopback port, in a thread."""
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.slow
def test_real_server_records_concurrent_deliveries_once(
    served: str, recorder: StoreRecorder
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(40)]

    async def deliver_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served, timeout=10) as client:
            sends = [
                client.post(HOOK, content=LABELED_BODY, headers=github_headers(LABELED_BODY, "issues", i))
                for i in ids + ids[:10]  # ten redeliveries racing the originals
            ]
            return await asyncio.gather(*sends)

    responses = asyncio.run(deliver_all())
    assert sorted(r.status_code for r in responses) == [200] * 10 + [202] * 40
    assert sum(r.json()["duplicate"] for r in responses) == 10
    assert sorted(row["id"] for row in recorder.rows()) == sorted(ids)


@pytest.mark.slow
def test_real_server_refuses_an_oversized_declared_body_without_waiting_for_it(served: str) -> None:
    port = int(served.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            (
                f"POST {HOOK} HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n"
                f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
            ).encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply:  # the head comes although no body byte was sent
            chunk = conn.recv(4096)
            assert chunk, "connection closed without a response"
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ")
