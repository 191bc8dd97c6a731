"""GitHub REST client for the App and its installations: the only module that builds API URLs.

Every operation the runner and planner use is one small synchronous method on `Installation`, so a
reader sees the whole API surface of personabot in one file and tests can pin each request's shape.

Error policy (the worker decides what to do with a run from the type of the error):
- 5xx, network errors and secondary rate limits are retried here a few times with backoff (honouring
  `retry-after`), then raised as `TransientError(retry_after=...)`;
- an exhausted primary rate limit raises `RateLimited(reset_at=...)` at once: sleeping for up to an
  hour inside a run would hold a worker and its lease for nothing;
- a 401 drops the cached installation token (and App JWT), fetches a new one and retries once, since
  tokens expire or get revoked between runs; a second 401 is permanent;
- other 4xx are `PermanentError`s that name the operation and the repository.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import BaseCacheStrategy, MemCacheStrategy
from githubkit.exception import RequestError, RequestFailed
from githubkit.utils import UNSET

from personabot import __version__
from personabot.errors import PermanentError, RateLimited, TransientError
from personabot.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

Permission = Literal["admin", "maintain", "write", "triage", "read", "none"]
UpdateBranchResult = Literal["updated", "up_to_date", "conflict"]
FileMode = Literal["100644", "100755", "120000"]

TIMEOUT = httpx.Timeout(30, connect=10)
MAX_RETRIES = 3  # retries after the first attempt, for 5xx / network / secondary rate limits
MAX_SLEEP = 60.0  # seconds: a longer retry-after is handed to the worker instead of slept here
SECONDARY_LIMIT_WAIT = 60.0
DEFAULT_TARBALL_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_PERSONA_FILES = 100
MAX_PAGES = 10

# Set around each operation so the response hook can label what it counts.
_current_operation: contextvars.ContextVar[str] = contextvars.ContextVar(
    "personabot_github_operation", default="unknown"
)

ResponseHook = Callable[[str, int], None]
"""Called with (operation, HTTP status) for every response, token exchanges included."""


class GitHubAPIError(PermanentError):
    """A 4xx that retrying cannot fix; the message names the operation, repository and status."""

    def __init__(self, message: str, *, operation: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class AppInfo:
    """What `GET /app` says about the App the JWT was signed for."""

    id: int
    slug: str
    name: str


@dataclass(frozen=True)
class Repository:
    full_name: str
    default_branch: str
    html_url: str
    private: bool

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    body: str
    html_url: str
    state: str
    draft: bool
    merged: bool
    head_ref: str
    head_sha: str
    base_ref: str
    author: str | None
    head_label: str = ""  # "owner:branch"; tells our branch from a fork's branch of the same name


@dataclass(frozen=True)
class BranchHead:
    sha: str
    tree: str


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a new tree: inline text `content`, an existing blob `sha`, or a deletion.

    A deletion is `sha=None, content=None` and is sent as `"sha": null`, which the Git Data API reads
    as "remove this path from base_tree".
    """

    path: str
    mode: FileMode
    sha: str | None = None
    content: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.sha is not None and self.content is not None:
            raise ValueError(f"tree entry {self.path!r}: give sha or content, not both")
        entry: dict[str, Any] = {"path": self.path, "mode": self.mode, "type": "blob"}
        if self.content is not None:
            entry["content"] = self.content
        else:
            entry["sha"] = self.sha
        return entry


# ----------------------------------------------------------------------------------------------
# Error classification


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        message = str(data.get("message", ""))
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            parts = [
                str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
                for e in errors
            ]
            message = f"{message} ({'; '.join(parts)})" if message else "; ".join(parts)
        return message
    return ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _is_secondary_limit(response: httpx.Response) -> bool:
    if response.status_code not in (403, 429):
        return False
    if "retry-after" in response.headers:
        return True
    return "secondary rate limit" in _message(response).lower()


def _primary_reset(response: httpx.Response) -> datetime | None:
    """The reset time when the primary rate limit is exhausted, else None."""
    if response.status_code not in (403, 429):
        return None
    if response.headers.get("x-ratelimit-remaining") != "0":
        return None
    try:
        return datetime.fromtimestamp(int(response.headers["x-ratelimit-reset"]), tz=UTC)
    except (KeyError, ValueError):
        # GitHub always sends the header; without it, an hour is the documented window.
        return datetime.fromtimestamp(time.time() + 3600, tz=UTC)


class _Retry(Exception):
    def __init__(self, reason: str, delay: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class _Unauthorized(Exception):
    def __init__(self, detail: str, token_exchange: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.token_exchange = token_exchange


# ----------------------------------------------------------------------------------------------


class GitHubApp:
    """The App itself (JWT auth) and a factory of installation clients sharing one token cache."""

    def __init__(
        self,
        settings: Settings,
        *,
        cache_strategy: BaseCacheStrategy | None = None,
        on_response: ResponseHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = MAX_RETRIES,
        max_sleep: float = MAX_SLEEP,
    ) -> None:
        key = settings.app_private_key()
        if settings.app_id is None or not key:
            raise PermanentError(
                "GitHub App credentials missing: set APP_ID and PRIVATE_KEY (or PRIVATE_KEY_PATH)"
            )
        self._strategy = AppAuthStrategy(settings.app_id, key)
        self._base_url = settings.github_api_url.rstrip("/") + "/"
        # One cache per app object: githubkit's default is a process-wide global, which would let
        # tests (and two apps in one process) share tokens.
        self._cache = cache_strategy or MemCacheStrategy()
        self._on_response = on_response
        self._sleep = sleep
        self._max_retries = max_retries
        self._max_sleep = max_sleep
        self._slug: str | None = None
        self._slug_lock = threading.Lock()
        self._client = _Client(self, self._make_github(self._strategy, follow_redirects=True))

    def _make_github(self, auth: Any, *, follow_redirects: bool) -> GitHub[Any]:
        return GitHub(
            auth,
            base_url=self._base_url,
            user_agent=f"personabot/{__version__}",
            timeout=TIMEOUT,
            follow_redirects=follow_redirects,
            http_cache=False,
            auto_retry=False,
            cache_strategy=self._cache,
            event_hooks={"response": [self._hook]},
        )

    def _hook(self, response: httpx.Response) -> None:
        if self._on_response is None:
            return
        operation = _current_operation.get()
        if response.request.url.path.endswith("/access_tokens"):
            operation = "create_installation_token"
        try:
            self._on_response(operation, response.status_code)
        except Exception:  # metrics must never break a run
            log.exception("GitHub response hook failed")

    def slug(self) -> str:
        """The App's slug (its bot login is `<slug>[bot]`), fetched once per process."""
        with self._slug_lock:
            if self._slug is None:
                data = self._client.send("get_app", "GET", "/app").json()
                self._slug = str(data["slug"])
            return self._slug

    def app_info(self) -> AppInfo:
        """`GET /app`, uncached: which App GitHub thinks the configured key belongs to."""
        data = self._client.send("get_app", "GET", "/app").json()
        if not isinstance(data, dict) or "id" not in data:
            raise PermanentError("GitHub get_app: the answer is not an app (no `id`)")
        return AppInfo(
            id=int(data["id"]), slug=str(data.get("slug") or ""), name=str(data.get("name") or "")
        )

    def installation(self, installation_id: int) -> Installation:
        return Installation(self, installation_id)


class _Client:
    """One githubkit client plus personabot's retry and error policy."""

    def __init__(self, app: GitHubApp, github: GitHub[Any]) -> None:
        self._app = app
        self.github = github
        # Requests as the App itself (not an installation) are signed with the App's JWT, so a
        # 401 there means the key or APP_ID is wrong, never an expired installation token.
        self.as_app = isinstance(github.auth, AppAuthStrategy)

    @contextmanager
    def operation(self, name: str) -> Iterator[None]:
        token = _current_operation.set(name)
        try:
            yield
        finally:
            _current_operation.reset(token)

    def _forget_credentials(self) -> None:
        """Drop the cached installation token and App JWT so the next request fetches new ones."""
        # githubkit 0.16 has no public "forget token" call; its AppAuth flow names the cache keys.
        auth = self.github.auth.get_auth_flow(self.github)
        cache = self.github.config.cache_strategy.get_cache_storage()
        keys = [auth._get_jwt_cache_key()]  # type: ignore[attr-defined]
        if getattr(auth, "installation_id", UNSET) is not UNSET:
            keys.append(auth._get_installation_cache_key())  # type: ignore[attr-defined]
        for key in keys:
            # The cache has no delete; githubkit's auth flow reads an empty value as a miss.
            cache.set(key, "", timedelta(0))

    def _attempt(self, method: str, url: str, params: Any, json: Any) -> httpx.Response:
        try:
            return self.github.request(method, url, params=params, json=json).raw_response
        except RequestFailed as exc:
            return exc.response.raw_response
        except RequestError as exc:
            inner = exc.exc
            if isinstance(inner, RequestFailed):  # the token exchange inside the auth flow failed
                return inner.response.raw_response
            if isinstance(inner, httpx.TransportError):
                raise _Retry(f"network error: {type(inner).__name__}", None) from None
            raise PermanentError(
                f"GitHub {_current_operation.get()}: could not authenticate as the GitHub App "
                f"({type(inner).__name__}): "
                "check APP_ID and PRIVATE_KEY"
            ) from None

    def send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        expect: Sequence[int] = (),
        what: str = "",
    ) -> httpx.Response:
        """Send one request under the retry policy; statuses in `expect` are returned, not raised."""
        with self.operation(operation):
            return self.retrying(
                operation, what, lambda: self._checked(operation, what, method, url, params, json, expect)
            )

    def _checked(
        self,
        operation: str,
        what: str,
        method: str,
        url: str,
        params: Any,
        json: Any,
        expect: Sequence[int],
    ) -> httpx.Response:
        response = self._attempt(method, url, params, json)
        status = response.status_code
        if status < 400 or status in expect:
            return response
        raise_for_status(operation, what, response)
        return response  # unreachable: raise_for_status always raises for >= 400

    def retrying(self, operation: str, what: str, attempt: Callable[[], T]) -> T:
        app = self._app
        refreshed = False
        retries = 0
        while True:
            try:
                return attempt()
            except _Unauthorized as exc:
                if refreshed:
                    if exc.token_exchange or self.as_app:
                        raise GitHubAPIError(
                            f"GitHub {operation}{what}: GitHub rejected the App's credentials "
                            f"(401 {exc.detail}); check APP_ID and PRIVATE_KEY",
                            operation=operation, status=401, detail=exc.detail,
                        ) from None
                    raise GitHubAPIError(
                        f"GitHub {operation}{what}: the installation token was rejected twice "
                        f"(401 {exc.detail}); the app may have been uninstalled or suspended",
                        operation=operation, status=401, detail=exc.detail,
                    ) from None
                log.info("GitHub %s: 401, fetching a new token and retrying once", operation)
                refreshed = True
                self._forget_credentials()
            except _Retry as exc:
                delay = exc.delay if exc.delay is not None else min(2.0**retries, app._max_sleep)
                if retries >= app._max_retries or delay > app._max_sleep:
                    raise TransientError(
                        f"GitHub {operation}{what}: {exc.reason} (gave up after {retries + 1} attempts)",
                        retry_after=exc.delay,
                    ) from None
                retries += 1
                log.warning(
                    "GitHub %s: %s; retry %d/%d in %.1fs",
                    operation, exc.reason, retries, app._max_retries, delay,
                )
                app._sleep(delay)


def raise_for_status(operation: str, what: str, response: httpx.Response) -> None:
    """Turn an error response into the error type the worker acts on (never returns for >= 400)."""
    status = response.status_code
    detail = _message(response)
    token_exchange = response.request.url.path.endswith("/access_tokens")
    if status == 401:
        raise _Unauthorized(detail, token_exchange)
    if status >= 500:
        raise _Retry(f"{status} {detail}".strip(), _retry_after(response))
    if _is_secondary_limit(response):
        # Without retry-after, GitHub asks for at least a minute before the next try.
        delay = _retry_after(response)
        raise _Retry(
            f"secondary rate limit ({status} {detail})",
            SECONDARY_LIMIT_WAIT if delay is None else delay,
        )
    reset_at = _primary_reset(response)
    if reset_at is not None:
        raise RateLimited(
            f"GitHub {operation}{what}: API rate limit exhausted until {reset_at.isoformat()}",
            reset_at=reset_at,
        )
    if status == 429:
        raise _Retry(f"429 {detail}".strip(), _retry_after(response))
    if token_exchange:
        raise GitHubAPIError(
            f"GitHub {operation}{what}: could not get an installation token ({status} {detail}); "
            "the app may have been uninstalled",
            operation=operation, status=status, detail=detail,
        )
    raise GitHubAPIError(
        f"GitHub {operation}{what} failed: {status} {detail}".rstrip(),
        operation=operation, status=status, detail=detail,
    )


def _q(value: str) -> str:
    """Quote one path segment (a branch may hold slashes, which stay as separators)."""
    return quote(value, safe="/")


def _repo_path(repo: str) -> str:
    owner, sep, name = repo.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise PermanentError(f"not a repository name (owner/name): {repo!r}")
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


def _pull(data: Mapping[str, Any]) -> PullRequest:
    head = data.get("head") or {}
    base = data.get("base") or {}
    user = data.get("user") or {}
    return PullRequest(
        number=int(data["number"]),
        title=str(data.get("title") or ""),
        body=str(data.get("body") or ""),
        html_url=str(data.get("html_url") or ""),
        state=str(data.get("state") or ""),
        draft=bool(data.get("draft")),
        merged=bool(data.get("merged")) or data.get("merged_at") is not None,
        head_ref=str(head.get("ref") or ""),
        head_sha=str(head.get("sha") or ""),
        base_ref=str(base.get("ref") or ""),
        author=user.get("login"),
        head_label=str(head.get("label") or ""),
    )


class Installation:
    """API operations as one installation of the App. Each method takes the repository first.

    Use as a context manager to reuse one HTTP connection for all calls of a run; without it every
    call opens its own connection (correct, just slower).
    """

    def __init__(self, app: GitHubApp, installation_id: int) -> None:
        self.installation_id = installation_id
        self._app = app
        auth = app._strategy.as_installation(installation_id)
        self._api = _Client(app, app._make_github(auth, follow_redirects=True))
        # The tarball endpoint answers 302 to a signed URL; following it with the token attached
        # (which httpx would do for a same-origin GHES redirect) leaks the token, so no following.
        self._raw = _Client(app, app._make_github(auth, follow_redirects=False))
        self._repos: dict[str, Repository] = {}

    def __enter__(self) -> Installation:
        self._api.github.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._api.github.__exit__(*exc)  # type: ignore[arg-type]

    # -- repository and contents ---------------------------------------------------------------

    def get_repository(self, repo: str) -> Repository:
        data = self._api.send("get_repository", "GET", _repo_path(repo), what=f" ({repo})").json()
        info = Repository(
            full_name=str(data["full_name"]),
            default_branch=str(data["default_branch"]),
            html_url=str(data["html_url"]),
            private=bool(data.get("private")),
        )
        self._repos[repo] = info
        return info

    def get_file_text(self, repo: str, path: str, ref: str) -> str | None:
        """The UTF-8 text of one file at `ref`, or None when the file does not exist."""
        what = f" ({repo}: {path}@{ref})"
        response = self._api.send(
            "get_file_text", "GET", f"{_repo_path(repo)}/contents/{_q(path)}",
            params={"ref": ref}, expect=(404,), what=what,
        )
        if response.status_code == 404:
            return None
        data = response.json()
        if not isinstance(data, dict) or data.get("type") != "file":
            raise PermanentError(f"GitHub get_file_text{what}: not a file")
        if data.get("encoding") == "base64" and data.get("content"):
            raw = base64.b64decode(data["content"])
        elif int(data.get("size") or 0) == 0:
            raw = b""
        else:  # files over 1 MB come without inline content
            raw = self._blob(repo, str(data["sha"]), what)
        return _text(raw, f"{repo}: {path}")

    def _blob(self, repo: str, sha: str, what: str) -> bytes:
        data = self._api.send(
            "get_blob", "GET", f"{_repo_path(repo)}/git/blobs/{_q(sha)}", what=what
        ).json()
        if data.get("encoding") == "base64":
            return base64.b64decode(data.get("content") or "")
        return str(data.get("content") or "").encode("utf-8")

    def list_files(
        self,
        repo: str,
        directory: str,
        ref: str,
        *,
        max_files: int = DEFAULT_MAX_PERSONA_FILES,
        suffix: str = ".md",
    ) -> dict[str, str]:
        """{path relative to `directory`: text} of the `suffix` files under it (recursively)."""
        return self.list_files_in(repo, [directory], ref, max_files=max_files, suffix=suffix)[directory]

    def list_files_in(
        self,
        repo: str,
        directories: Sequence[str],
        ref: str,
        *,
        max_files: int = DEFAULT_MAX_PERSONA_FILES,
        suffix: str = ".md",
    ) -> dict[str, dict[str, str]]:
        """For each directory, {path relative to it: text} of the `suffix` files under it.

        One recursive tree listing for all of them (a personas folder and the blocks beside it
        cost one request, not two), then one blob per matching file. A missing directory gives {};
        more than `max_files` matching files in one directory is an error rather than a silent cut.
        """
        what = f" ({repo}: {', '.join(directories)}@{ref})"
        response = self._api.send(
            "list_files", "GET", f"{_repo_path(repo)}/git/trees/{_q(ref)}",
            params={"recursive": "1"}, expect=(404, 409), what=what,
        )
        if response.status_code in (404, 409):  # 409: an empty repository has no tree at all
            return {directory: {} for directory in directories}
        data = response.json()
        result: dict[str, dict[str, str]] = {}
        for directory in directories:
            clean = directory.strip("/")
            if data.get("truncated"):
                paths = self._walk_contents(repo, clean, ref, what, max_files, suffix)
            else:
                prefix = clean + "/"
                paths = [
                    (str(item["path"]), str(item["sha"]))
                    for item in data.get("tree", [])
                    if item.get("type") == "blob"
                    and str(item.get("path", "")).startswith(prefix)
                    and str(item["path"]).endswith(suffix)
                ]
            if len(paths) > max_files:
                raise PermanentError(
                    f"{repo}: {clean} holds {len(paths)} {suffix} files at {ref}; "
                    f"at most {max_files} are read"
                )
            files: dict[str, str] = {}
            for path, sha in sorted(paths):
                relative = str(PurePosixPath(path).relative_to(clean))
                files[relative] = _text(self._blob(repo, sha, what), f"{repo}: {path}")
            result[directory] = files
        return result

    def _walk_contents(
        self, repo: str, directory: str, ref: str, what: str, max_files: int, suffix: str
    ) -> list[tuple[str, str]]:
        """Fallback for trees too large to list at once: walk the directory with the contents API."""
        found: list[tuple[str, str]] = []
        pending = [directory]
        while pending and len(found) <= max_files:
            current = pending.pop()
            response = self._api.send(
                "list_files", "GET", f"{_repo_path(repo)}/contents/{_q(current)}",
                params={"ref": ref}, expect=(404,), what=what,
            )
            if response.status_code == 404:
                continue
            items = response.json()
            if not isinstance(items, list):
                continue
            for item in items:
                if item.get("type") == "dir":
                    pending.append(str(item["path"]))
                elif item.get("type") == "file" and str(item["path"]).endswith(suffix):
                    found.append((str(item["path"]), str(item["sha"])))
        return found

    # -- refs ------------------------------------------------------------------------------------

    def get_branch_sha(self, repo: str, branch: str) -> str | None:
        response = self._api.send(
            "get_branch_sha", "GET", f"{_repo_path(repo)}/git/ref/heads/{_q(branch)}",
            expect=(404,), what=f" ({repo}: {branch})",
        )
        if response.status_code == 404:
            return None
        return str(response.json()["object"]["sha"])

    def get_branch_head(self, repo: str, branch: str) -> BranchHead | None:
        """The branch's head commit and that commit's tree in one request (None: no such branch).

        A new commit needs both: the commit as its parent and the tree as `base_tree`.
        """
        response = self._api.send(
            "get_branch_head", "GET", f"{_repo_path(repo)}/branches/{_q(branch)}",
            expect=(404,), what=f" ({repo}: {branch})",
        )
        if response.status_code == 404:
            return None
        commit = response.json()["commit"]
        return BranchHead(sha=str(commit["sha"]), tree=str(commit["commit"]["tree"]["sha"]))

    def delete_ref(self, repo: str, branch: str) -> None:
        """Delete a branch whose work is already merged, so the next PR can start from the base."""
        # 404/422: already gone, which is as good as deleted.
        self._api.send(
            "delete_ref", "DELETE", f"{_repo_path(repo)}/git/refs/heads/{_q(branch)}",
            expect=(404, 422), what=f" ({repo}: {branch})",
        )

    def ref_exists(self, repo: str, branch: str) -> bool:
        return self.get_branch_sha(repo, branch) is not None

    def create_ref(self, repo: str, branch: str, sha: str) -> None:
        self._api.send(
            "create_ref", "POST", f"{_repo_path(repo)}/git/refs",
            json={"ref": f"refs/heads/{branch}", "sha": sha}, what=f" ({repo}: {branch})",
        )

    def update_ref(self, repo: str, branch: str, sha: str) -> None:
        """Fast-forward `branch` to `sha`. Never forced: a 422 means someone else moved the branch."""
        self._api.send(
            "update_ref", "PATCH", f"{_repo_path(repo)}/git/refs/heads/{_q(branch)}",
            json={"sha": sha, "force": False}, what=f" ({repo}: {branch})",
        )

    # -- tarball ---------------------------------------------------------------------------------

    def download_tarball(
        self, repo: str, ref: str, dest: Path, *, max_bytes: int = DEFAULT_TARBALL_MAX_BYTES
    ) -> int:
        """Stream the repository at `ref` as a .tar.gz to `dest`; returns the number of bytes.

        The API answers 302 to a short-lived signed URL that is fetched without our token.
        """
        what = f" ({repo}@{ref})"
        operation = "download_tarball"

        def attempt() -> int:
            response = self._raw._checked(
                operation, what, "GET", f"{_repo_path(repo)}/tarball/{_q(ref)}", None, None, ()
            )
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    raise PermanentError(f"GitHub {operation}{what}: redirect without a location")
                return self._fetch_unauthenticated(operation, what, location, dest, max_bytes)
            # Some servers answer with the archive directly.
            body = response.content
            if len(body) > max_bytes:
                raise PermanentError(f"GitHub {operation}{what}: archive over {max_bytes} bytes")
            dest.write_bytes(body)
            return len(body)

        with self._raw.operation(operation):
            return self._raw.retrying(operation, what, attempt)

    def _fetch_unauthenticated(
        self, operation: str, what: str, url: str, dest: Path, max_bytes: int
    ) -> int:
        hooks = {"response": [self._app._hook]}
        written = 0
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=True, event_hooks=hooks) as client:
                with client.stream("GET", url, headers={"User-Agent": f"personabot/{__version__}"}) as r:
                    if r.status_code >= 500:
                        raise _Retry(f"archive download: {r.status_code}", _retry_after(r))
                    if r.status_code >= 400:
                        raise PermanentError(f"GitHub {operation}{what}: archive download {r.status_code}")
                    declared = int(r.headers.get("content-length") or 0)
                    if declared > max_bytes:
                        raise PermanentError(
                            f"GitHub {operation}{what}: archive of {declared} bytes is over the "
                            f"{max_bytes}-byte limit"
                        )
                    with open(dest, "wb") as out:
                        for chunk in r.iter_bytes(1024 * 1024):
                            written += len(chunk)
                            if written > max_bytes:
                                raise PermanentError(
                                    f"GitHub {operation}{what}: archive over the {max_bytes}-byte limit"
                                )
                            out.write(chunk)
        except httpx.TransportError as exc:
            _unlink(dest)
            raise _Retry(f"archive download: network error {type(exc).__name__}", None) from None
        except BaseException:
            _unlink(dest)
            raise
        return written

    # -- git data --------------------------------------------------------------------------------

    def create_blob(self, repo: str, content: bytes) -> str:
        data = self._api.send(
            "create_blob", "POST", f"{_repo_path(repo)}/git/blobs",
            json={"content": base64.b64encode(content).decode("ascii"), "encoding": "base64"},
            what=f" ({repo})",
        ).json()
        return str(data["sha"])

    def create_tree(self, repo: str, base_tree: str, entries: Sequence[TreeEntry]) -> str:
        data = self._api.send(
            "create_tree", "POST", f"{_repo_path(repo)}/git/trees",
            json={"base_tree": base_tree, "tree": [entry.to_json() for entry in entries]},
            what=f" ({repo})",
        ).json()
        return str(data["sha"])

    def create_commit(self, repo: str, message: str, tree: str, parents: Sequence[str]) -> str:
        # No author or committer: GitHub then signs the commit as the App and shows it "Verified".
        data = self._api.send(
            "create_commit", "POST", f"{_repo_path(repo)}/git/commits",
            json={"message": message, "tree": tree, "parents": list(parents)},
            what=f" ({repo})",
        ).json()
        return str(data["sha"])

    # -- pull requests ---------------------------------------------------------------------------

    def _head(self, repo: str, branch: str) -> str:
        return f"{repo.split('/', 1)[0]}:{branch}"

    def find_open_pr(self, repo: str, branch: str) -> PullRequest | None:
        """The open PR whose head is `branch` of this repository (GitHub needs `owner:branch`)."""
        data = self._api.send(
            "find_open_pr", "GET", f"{_repo_path(repo)}/pulls",
            params={"head": self._head(repo, branch), "state": "open", "per_page": 10},
            what=f" ({repo}: {branch})",
        ).json()
        return _pull(data[0]) if data else None

    def list_open_prs(self, repo: str) -> list[PullRequest]:
        """All open PRs of the repository (up to 1000), newest first."""
        pulls: list[PullRequest] = []
        url: str | None = f"{_repo_path(repo)}/pulls"
        params: dict[str, Any] | None = {"state": "open", "per_page": 100}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self._api.send("list_open_prs", "GET", url, params=params, what=f" ({repo})")
            pulls.extend(_pull(item) for item in response.json())
            url = self._next_page(response)
            params = None  # the next link carries the query
        return pulls

    def _next_page(self, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        # Follow only links on the API host: the token must not travel anywhere else.
        if httpx.URL(link).host != httpx.URL(self._app._base_url).host:
            return None
        return link

    def list_closed_prs(self, repo: str, branch: str) -> PullRequest | None:
        """The most recently closed PR with head `branch` (merged or not), or None."""
        data = self._api.send(
            "list_closed_prs", "GET", f"{_repo_path(repo)}/pulls",
            params={
                "head": self._head(repo, branch), "state": "closed",
                "sort": "updated", "direction": "desc", "per_page": 1,
            },
            what=f" ({repo}: {branch})",
        ).json()
        return _pull(data[0]) if data else None

    def create_pr(
        self, repo: str, *, title: str, body: str, head: str, base: str, draft: bool = False
    ) -> PullRequest:
        data = self._api.send(
            "create_pr", "POST", f"{_repo_path(repo)}/pulls",
            json={"title": title, "body": body, "head": head, "base": base, "draft": draft},
            what=f" ({repo}: {head} -> {base})",
        ).json()
        return _pull(data)

    def update_pr(
        self, repo: str, number: int, *, title: str | None = None, body: str | None = None
    ) -> PullRequest | None:
        """Edit only the fields given; with neither, nothing is sent (and None returned)."""
        fields = {k: v for k, v in (("title", title), ("body", body)) if v is not None}
        if not fields:
            return None
        data = self._api.send(
            "update_pr", "PATCH", f"{_repo_path(repo)}/pulls/{number}",
            json=fields, what=f" ({repo}#{number})",
        ).json()
        return _pull(data)

    def update_branch(self, repo: str, number: int, expected_head_sha: str) -> UpdateBranchResult:
        """Merge the base into the PR's head on GitHub's side.

        "updated" means GitHub accepted the job (202): the new head appears shortly after, so read
        the PR's head again before building on it.
        """
        what = f" ({repo}#{number})"
        response = self._api.send(
            "update_branch", "PUT", f"{_repo_path(repo)}/pulls/{number}/update-branch",
            json={"expected_head_sha": expected_head_sha}, expect=(422,), what=what,
        )
        if response.status_code != 422:
            return "updated"
        detail = _message(response)
        lowered = detail.lower()
        if "no new commits" in lowered or "up to date" in lowered or "up-to-date" in lowered:
            return "up_to_date"
        if "conflict" in lowered:
            return "conflict"
        if "expected head sha" in lowered:
            raise TransientError(f"GitHub update_branch{what}: the branch moved meanwhile ({detail})")
        raise GitHubAPIError(
            f"GitHub update_branch{what} failed: 422 {detail}",
            operation="update_branch", status=422, detail=detail,
        )

    # -- issues, comments, reactions -------------------------------------------------------------

    def create_comment(self, repo: str, issue: int, body: str) -> int:
        data = self._api.send(
            "create_comment", "POST", f"{_repo_path(repo)}/issues/{issue}/comments",
            json={"body": body}, what=f" ({repo}#{issue})",
        ).json()
        return int(data["id"])

    def find_comment(self, repo: str, issue: int, marker: str) -> int | None:
        """The id of the issue's first comment containing `marker` (the app's own hidden marker)."""
        url: str | None = f"{_repo_path(repo)}/issues/{issue}/comments"
        params: dict[str, Any] | None = {"per_page": 100}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self._api.send("find_comment", "GET", url, params=params, what=f" ({repo}#{issue})")
            for item in response.json():
                if marker in str(item.get("body") or ""):
                    return int(item["id"])
            url = self._next_page(response)
            params = None  # the next link carries the query
        return None

    def update_comment(self, repo: str, comment_id: int, body: str) -> None:
        self._api.send(
            "update_comment", "PATCH", f"{_repo_path(repo)}/issues/comments/{comment_id}",
            json={"body": body}, what=f" ({repo} comment {comment_id})",
        )

    def add_reaction(
        self,
        repo: str,
        *,
        issue: int | None = None,
        comment_id: int | None = None,
        content: str = "eyes",
    ) -> None:
        """React to an issue (or PR) or to an issue comment; exactly one of the two is given."""
        if (issue is None) == (comment_id is None):
            raise ValueError("add_reaction needs exactly one of issue or comment_id")
        if issue is not None:
            url, what = f"{_repo_path(repo)}/issues/{issue}/reactions", f" ({repo}#{issue})"
        else:
            url = f"{_repo_path(repo)}/issues/comments/{comment_id}/reactions"
            what = f" ({repo} comment {comment_id})"
        self._api.send("add_reaction", "POST", url, json={"content": content}, what=what)

    def collaborator_permission(self, repo: str, user: str) -> Permission:
        """The user's role on the repository; "none" for strangers."""
        response = self._api.send(
            "collaborator_permission", "GET",
            f"{_repo_path(repo)}/collaborators/{quote(user, safe='')}/permission",
            expect=(404,), what=f" ({repo}: {user})",
        )
        if response.status_code == 404:
            return "none"
        data = response.json()
        # role_name distinguishes maintain and triage (permission folds them into write and read);
        # custom roles fall back to their base permission.
        for value in (data.get("role_name"), data.get("permission")):
            if value in ("admin", "maintain", "write", "triage", "read", "none"):
                return value  # type: ignore[no-any-return]
        return "none"

    def compare_url(self, repo: str, base: str, head: str) -> str:
        """The web page comparing `head` to `base` (for MANUAL mode's status comment)."""
        info = self._repos.get(repo) or self.get_repository(repo)
        return f"{info.html_url}/compare/{_q(base)}...{_q(head)}"


def _text(raw: bytes, label: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PermanentError(f"{label}: not UTF-8 text (byte {exc.start})") from None


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
