"""Setup mode: register the GitHub App from `app.yml` through GitHub's manifest flow.

Before APP_ID/PRIVATE_KEY exist, `personabot serve` mounts these routes instead of the webhook route:
`/` posts the manifest to GitHub's "new app" form, GitHub sends the browser back to
`/setup/callback` with a one-time code, and the server trades that code for the app's credentials,
stores them in `.env` and hands new settings to the server so it can switch to normal mode without a
restart.

Compared with Probot, three things are refused on purpose: a callback whose `state` this server did
not hand out (someone else's code must not become our credentials), a second registration once
credentials exist (it would silently orphan the first app), and setup mode as a whole in production
(a misconfigured production server must fail at startup, not offer to register a new app).

The pure parts (manifest, state tokens, `.env` text, pages) are separate from the I/O (HTTP exchange,
file writes, routes) so they can be tested without a server.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import yaml
from dotenv import dotenv_values
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from personabot.errors import PersonabotError
from personabot.settings import Settings

log = logging.getLogger(__name__)

CALLBACK_PATH = "/setup/callback"
APP_YML = "app.yml"
STATE_TTL_SECONDS = 3600.0
# GitHub's own expiry for manifest codes is one hour; a state older than that is useless anyway.

# Keys GitHub accepts in a manifest. A typo in app.yml (`default_event`) would otherwise be dropped
# by GitHub without a word and the app would silently miss events.
MANIFEST_KEYS = frozenset(
    {
        "name",
        "url",
        "description",
        "public",
        "default_events",
        "default_permissions",
        "hook_attributes",
        "redirect_url",
        "callback_urls",
        "setup_url",
        "setup_on_update",
        "request_oauth_on_install",
    }
)

# GitHub logins: letters, digits and single hyphens, no leading/trailing hyphen, at most 39 chars.
_ORG_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
# Manifest codes are opaque but URL-safe; anything else must not reach the API path.
_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_ENV_KEY_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")

ENV_KEYS = ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")


class SetupError(PersonabotError):
    """Setup mode cannot go on; the message says what was wrong and where."""


class SetupNotAllowed(SetupError):
    """Raised at startup when setup mode would start in production; `serve` exits with status 2."""


# --------------------------------------------------------------------------------------------------
# app.yml and the manifest (pure)


def app_yml_path() -> Path:
    """The manifest file: the copy inside the installed package first, else the repository's root.

    The wheel carries `personabot/app.yml` (force-include in pyproject); an editable or source
    checkout only has the one at the top of the repository.
    """
    installed = Path(__file__).resolve().parent / APP_YML
    if installed.is_file():
        return installed
    repo_root = Path(__file__).resolve().parents[2] / APP_YML
    if repo_root.is_file():
        return repo_root
    raise SetupError(f"{APP_YML} not found: looked for {installed} and {repo_root}")


def read_app_yml() -> str:
    return app_yml_path().read_text(encoding="utf-8")


def build_manifest(
    app_yml_text: str, settings: Settings, *, source: str = APP_YML
) -> dict[str, Any]:
    """The manifest GitHub receives: app.yml plus the URLs only the running server knows.

    `hook_attributes.url` and `redirect_url` always come from the server's public URL: a value left in
    app.yml from another deployment would send webhooks and credentials to the wrong host.
    """
    try:
        data = yaml.safe_load(app_yml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SetupError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SetupError(f"{source}: expected a mapping of manifest keys, got {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in MANIFEST_KEYS)
    if unknown:
        raise SetupError(
            f"{source}: unknown manifest key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(MANIFEST_KEYS))}"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SetupError(f"{source}: name: required, a non-empty string")
    for key in ("default_events",):
        if key in data and not (
            isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])
        ):
            raise SetupError(f"{source}: {key}: expected a list of event names")
    if "default_permissions" in data and not isinstance(data["default_permissions"], dict):
        raise SetupError(f"{source}: default_permissions: expected a mapping of permission: level")
    hook = data.get("hook_attributes") or {}
    if not isinstance(hook, dict):
        raise SetupError(f"{source}: hook_attributes: expected a mapping")

    manifest = dict(data)
    manifest["url"] = data.get("url") or settings.url
    manifest["hook_attributes"] = {**hook, "url": settings.url + settings.webhook_path}
    manifest["redirect_url"] = settings.url + CALLBACK_PATH
    manifest.setdefault("public", False)
    return manifest


def new_app_form_url(settings: Settings, state: str, org: str | None = None) -> str:
    """Where the browser posts the manifest: the user's or an organisation's "new app" form."""
    base = settings.github_url.rstrip("/")
    if org is not None:
        if not valid_org(org):
            raise SetupError(f"org: {org!r} is not a valid GitHub organisation name")
        path = f"/organizations/{org}/settings/apps/new"
    else:
        path = "/settings/apps/new"
    return f"{base}{path}?{urlencode({'state': state})}"


def valid_org(name: str) -> bool:
    return bool(_ORG_RE.match(name))


def installation_url(html_url: str) -> str:
    return html_url.rstrip("/") + "/installations/new"


# --------------------------------------------------------------------------------------------------
# state tokens


class SetupState:
    """Random `state` tokens handed out with the form, checked once on the callback.

    Kept in memory on purpose: the flow takes one browser a minute, and a restart simply means
    clicking the button again. The number of live tokens is capped so that reloading `/` in a loop
    cannot grow memory without bound (the oldest token goes first).
    """

    def __init__(
        self,
        ttl: float = STATE_TTL_SECONDS,
        *,
        max_tokens: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_tokens
        self._clock = clock
        self._tokens: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._prune()
            self._tokens[token] = self._clock() + self._ttl
            while len(self._tokens) > self._max:
                self._tokens.popitem(last=False)
        return token

    def consume(self, token: str | None) -> bool:
        """True exactly once for a token this object issued and that has not expired."""
        if not token:
            return False
        with self._lock:
            expires = self._tokens.pop(token, None)
        return expires is not None and self._clock() < expires

    def _prune(self) -> None:
        now = self._clock()
        for token in [t for t, expires in self._tokens.items() if expires <= now]:
            del self._tokens[token]


# --------------------------------------------------------------------------------------------------
# credentials and .env (pure text, then one atomic write)


@dataclass(frozen=True)
class AppCredentials:
    """What the manifest conversion returns that the server needs to keep."""

    app_id: int
    slug: str
    name: str
    html_url: str
    pem: str
    webhook_secret: str | None
    client_id: str | None
    client_secret: str | None

    @classmethod
    def from_conversion(cls, data: Mapping[str, Any]) -> AppCredentials:
        missing = [k for k in ("id", "pem", "html_url") if not data.get(k)]
        if missing:
            raise SetupError(f"GitHub's conversion response lacks {', '.join(missing)}")
        try:
            app_id = int(data["id"])
        except (TypeError, ValueError):
            raise SetupError(f"GitHub's conversion response has a bad id: {data['id']!r}") from None
        return cls(
            app_id=app_id,
            slug=str(data.get("slug") or ""),
            name=str(data.get("name") or data.get("slug") or ""),
            html_url=str(data["html_url"]),
            pem=str(data["pem"]),
            webhook_secret=data.get("webhook_secret") or None,
            client_id=data.get("client_id") or None,
            client_secret=data.get("client_secret") or None,
        )

    def env_values(self) -> dict[str, str]:
        """The `.env` entries; the PEM is kept on one line with literal `\\n` (settings.py undoes it)."""
        values = {
            "APP_ID": str(self.app_id),
            "PRIVATE_KEY": self.pem.replace("\r\n", "\n").replace("\n", "\\n"),
            "WEBHOOK_SECRET": self.webhook_secret,
            "GITHUB_CLIENT_ID": self.client_id,
            "GITHUB_CLIENT_SECRET": self.client_secret,
        }
        return {key: value for key, value in values.items() if value is not None}


def _env_line(key: str, value: str) -> str:
    # Single quotes: python-dotenv, docker compose and `sh` all read them literally, so the `\n` in
    # the key survives for settings.py to turn back into newlines.
    if "'" in value or "\n" in value or "\r" in value:
        raise SetupError(f"{key}: value cannot be written to .env (quote or newline in it)")
    return f"{key}='{value}'"


def update_env_text(existing: str, values: Mapping[str, str]) -> str:
    """`existing` with `values` set: other lines kept as they are, old lines for these keys replaced.

    The first old line of a key is replaced in place (so an operator's ordering and comments stay);
    later duplicates are dropped, since dotenv would let the last one win over the new value.
    """
    out: list[str] = []
    written: set[str] = set()
    for line in existing.splitlines():
        match = _ENV_KEY_RE.match(line)
        key = match.group(1) if match else None
        if key is not None and key in values:
            if key not in written:
                out.append(_env_line(key, values[key]))
                written.add(key)
            continue
        out.append(line)
    for key, value in values.items():
        if key not in written:
            out.append(_env_line(key, value))
    return "\n".join(out) + "\n"


def env_has_credentials(env_path: Path) -> bool:
    """True when `.env` already holds an APP_ID and a key (written by an earlier setup, say)."""
    if not env_path.is_file():
        return False
    values = dotenv_values(env_path)
    return bool(values.get("APP_ID")) and bool(
        values.get("PRIVATE_KEY") or values.get("PRIVATE_KEY_PATH")
    )


def write_env(env_path: Path, values: Mapping[str, str]) -> None:
    """Merge `values` into the file atomically, readable by its owner only (it holds the App's key)."""
    target = env_path.resolve()
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    text = update_env_text(existing, values)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".env.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def configured_settings(settings: Settings, credentials: AppCredentials) -> Settings:
    """The running settings with the new credentials, validated like any other settings.

    Explicit values win over the environment, so a stale APP_ID variable cannot shadow the new app.
    """
    values = settings.model_dump(by_alias=True)
    values.update(
        {
            "APP_ID": credentials.app_id,
            "PRIVATE_KEY": credentials.pem,
            "PRIVATE_KEY_PATH": None,
            "WEBHOOK_SECRET": credentials.webhook_secret,
            "GITHUB_CLIENT_ID": credentials.client_id,
            "GITHUB_CLIENT_SECRET": credentials.client_secret,
        }
    )
    return Settings.model_validate(values)


# --------------------------------------------------------------------------------------------------
# startup check


def check_setup_allowed(settings: Settings) -> None:
    """Refuse setup mode in production: there a missing key is a deployment error, not a first run."""
    if settings.environment.strip().lower() == "production":
        raise SetupNotAllowed(
            "APP_ID/PRIVATE_KEY missing and PERSONABOT_ENV=production: setup mode is disabled in "
            "production; set the credentials"
        )


def needs_setup(settings: Settings) -> bool:
    """Setup mode is for a server without the App's id and key (WEBHOOK_SECRET alone is not enough)."""
    return not settings.has_app_credentials


# --------------------------------------------------------------------------------------------------
# pages (pure: values in, HTML out; every value is escaped)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1f2328; }
h1 { font-size: 1.6rem; } code { background: #f6f8fa; padding: 0 .25rem; border-radius: 4px; }
button { font-size: 1rem; padding: .5rem 1rem; border-radius: 6px; border: 1px solid #1f883d;
         background: #1f883d; color: white; cursor: pointer; }
input[type=text] { font-size: 1rem; padding: .3rem; }
.error { color: #d1242f; } dt { font-weight: 600; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def render_setup_page(manifest: Mapping[str, Any], form_url: str, org: str | None) -> str:
    e = html.escape
    hook_url = manifest["hook_attributes"]["url"]
    owner = f"the organisation <code>{e(org)}</code>" if org else "your personal account"
    body = f"""<h1>Register {e(str(manifest["name"]))} on GitHub</h1>
<p>This server has no GitHub App credentials yet. The button below sends the app's manifest
(<code>app.yml</code>) to GitHub, which creates the app under {owner} and sends you back here;
the server then stores the credentials in <code>.env</code> and starts accepting webhooks.</p>
<dl>
<dt>Webhook URL</dt><dd><code>{e(hook_url)}</code></dd>
<dt>Callback URL</dt><dd><code>{e(manifest["redirect_url"])}</code></dd>
</dl>
<p>GitHub must be able to reach the webhook URL. If it is wrong, set <code>PERSONABOT_URL</code> to
this server's public address and restart.</p>
<form id="register-form" method="post" action="{e(form_url)}">
<input type="hidden" name="manifest" value="{e(json.dumps(manifest))}">
<button id="register" type="submit">Register GitHub App</button>
</form>
<h2>Under an organisation</h2>
<form method="get" action="/">
<label>Organisation <input type="text" name="org" value="{e(org or "")}"
 pattern="[A-Za-z0-9][A-Za-z0-9\\-]{{0,38}}" required></label>
<button id="use-org" type="submit">Use this organisation</button>
</form>"""
    return _page(f"Register {manifest['name']}", body)


def render_message_page(title: str, message: str, *, error: bool = False) -> str:
    cls = " class=\"error\"" if error else ""
    return _page(title, f"<h1{cls}>{html.escape(title)}</h1>\n<p>{html.escape(message)}</p>\n"
                 "<p><a href=\"/\">Back to setup</a></p>")


def render_done_page(
    credentials: AppCredentials, settings: Settings, *, switched: bool, save_error: str | None = None
) -> str:
    e = html.escape
    install = installation_url(credentials.html_url)
    mode = (
        "The server has switched to normal mode and accepts webhooks at "
        f"<code>{e(settings.url + settings.webhook_path)}</code>."
        if switched
        else "Restart the server to switch to normal mode."
    )
    if save_error is None:
        saved = "Its credentials are saved in <code>.env</code> (readable by you only)."
    else:
        # The key is not shown: whoever reads this page later should not find it. GitHub lets the
        # owner generate a new key and webhook secret on the app's settings page.
        saved = (
            f"<p class=\"error\">The credentials could not be saved: {e(save_error)}. The server uses "
            "them until it stops; before that, set <code>APP_ID</code> yourself and generate a new "
            "private key and webhook secret in the app's settings on GitHub.</p>"
        )
    warning = (
        ""
        if credentials.webhook_secret
        else "<p class=\"error\">GitHub returned no webhook secret: set WEBHOOK_SECRET in .env "
        "and in the app's settings on GitHub, or webhooks will be refused.</p>"
    )
    body = f"""<h1>{e(credentials.name or "The app")} is registered</h1>
<p>App id <code>{credentials.app_id}</code>. {saved} {mode}</p>
{warning}
<p><a id="install" href="{e(install)}">Install the app on your repositories</a></p>"""
    return _page("App registered", body)


# --------------------------------------------------------------------------------------------------
# I/O: the conversion and the routes


async def exchange_code(
    settings: Settings, code: str, *, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """Trade the one-time manifest code for the app's credentials (no authentication needed)."""
    url = f"{settings.github_api_url.rstrip('/')}/app-manifests/{code}/conversions"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    owns_client = client is None
    client = client or httpx.AsyncClient(timeout=httpx.Timeout(30, connect=10))
    try:
        response = await client.post(url, headers=headers)
    except httpx.HTTPError as exc:
        reason = f"{exc.__class__.__name__}: {exc}"
        raise SetupError(f"could not reach GitHub at {url}: {reason}") from exc
    finally:
        if owns_client:
            await client.aclose()
    if response.status_code != 201:
        try:
            detail = response.json().get("message", "")
        except ValueError:
            detail = response.text[:200]
        raise SetupError(
            f"GitHub answered {response.status_code} to the code exchange ({detail}). "
            "Codes are single use and expire after one hour: start again from the setup page."
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise SetupError("GitHub's conversion response is not JSON") from exc
    if not isinstance(data, dict):
        raise SetupError("GitHub's conversion response is not a JSON object")
    return data


_HEADERS = {
    "Cache-Control": "no-store",
    # The callback URL carries the one-time code; keep it out of Referer headers.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def setup_routes(
    settings: Settings,
    env_path: Path,
    on_configured: Callable[[Settings], None],
    *,
    app_yml_text: str | None = None,
    state: SetupState | None = None,
) -> list[Route]:
    """The setup pages. Build them only after `check_setup_allowed(settings)` passed.

    `on_configured(new_settings)` runs once, after the credentials are written, so the caller can
    mount the webhook route; it is called from the event loop and should not block.
    """
    manifest_text = app_yml_text if app_yml_text is not None else read_app_yml()
    # Fail at startup, not on the first visit, when app.yml is broken.
    build_manifest(manifest_text, settings)
    states = state or SetupState()
    lock = asyncio.Lock()
    done: dict[str, AppCredentials] = {}
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; "
        f"form-action 'self' {_origin(settings.github_url)}"
    )

    def respond(content: str, status: int = 200) -> HTMLResponse:
        headers = {**_HEADERS, "Content-Security-Policy": csp}
        return HTMLResponse(content, status_code=status, headers=headers)

    def already_registered() -> bool:
        return bool(done) or settings.has_app_credentials or env_has_credentials(env_path)

    async def index(request: Request) -> HTMLResponse:
        if already_registered():
            return respond(render_message_page(
                "Already registered",
                "This server already has GitHub App credentials; setup is closed.",
            ))
        org = request.query_params.get("org") or None
        if org is not None and not valid_org(org):
            return respond(render_message_page(
                "Invalid organisation",
                f"org: {org!r} is not a valid GitHub organisation name "
                "(letters, digits and single hyphens, at most 39 characters).",
                error=True,
            ), 400)
        manifest = build_manifest(manifest_text, settings)
        form_url = new_app_form_url(settings, states.issue(), org)
        return respond(render_setup_page(manifest, form_url, org))

    async def callback(request: Request) -> HTMLResponse:
        code = request.query_params.get("code", "")
        token = request.query_params.get("state")
        async with lock:
            # Checked before the state so that a late second tab cannot spend a state token, and
            # under the lock so that two callbacks cannot both register.
            if already_registered():
                return respond(render_message_page(
                    "App already registered",
                    "This server already has GitHub App credentials, so this registration was not "
                    "saved. Delete the extra app in GitHub's settings if you created one by mistake.",
                    error=True,
                ), 409)
            if not states.consume(token):
                return respond(render_message_page(
                    "Unknown or used setup link",
                    "state: missing, unknown, expired or already used. Start again from the setup "
                    "page; each button click is good for one registration.",
                    error=True,
                ), 400)
            if not _CODE_RE.match(code):
                return respond(render_message_page(
                    "Invalid callback", "code: missing or malformed in the callback URL.", error=True
                ), 400)
            try:
                credentials = AppCredentials.from_conversion(await exchange_code(settings, code))
            except SetupError as exc:
                log.error("GitHub App setup failed: %s", exc)
                return respond(render_message_page("Setup failed", str(exc), error=True), 502)
            # From here the app exists on GitHub and the code is spent: whatever happens to the
            # file, the server keeps the credentials in memory and the page says what to do.
            done["app"] = credentials
            save_error: str | None = None
            try:
                write_env(env_path, credentials.env_values())
            except (SetupError, OSError) as exc:
                save_error = f"could not write {env_path}: {exc}"
                log.error("GitHub App %s registered but %s", credentials.app_id, save_error)
            else:
                log.info(
                    "GitHub App %s (id %s) registered; credentials written to %s",
                    credentials.slug or credentials.name, credentials.app_id, env_path,
                )
        new_settings = configured_settings(settings, credentials)
        switched = True
        try:
            on_configured(new_settings)
        except Exception:  # the credentials are known; a restart finishes the job
            log.exception("switching to normal mode failed; restart the server")
            switched = False
        page = render_done_page(credentials, new_settings, switched=switched, save_error=save_error)
        return respond(page, 500 if save_error else 200)

    return [
        Route("/", index, methods=["GET"], name="setup"),
        Route(CALLBACK_PATH, callback, methods=["GET"], name="setup_callback"),
    ]
