"""An in-process fake of the slice of GitHub's REST API that personabot uses.

It keeps real state (blobs, trees, commits, refs, pull requests, comments) so tests can assert what
a run left on "GitHub", not merely which URLs were called. It answers `httpx.Request`s: mount it with
respx (`FakeGitHub.mock()`), or serve it over HTTP with `FakeGitHub.asgi()` for tests whose server
runs in another process.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import re
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "https://api.github.com"
CODELOAD = "https://codeload.example.test"

File = tuple[str, bytes]  # (mode, content); mode 120000 content is the link target


def _sha(kind: str, payload: bytes) -> str:
    return hashlib.sha1(kind.encode() + b"\0" + payload).hexdigest()


@dataclass
class Commit:
    sha: str
    tree: str
    parents: list[str]
    message: str
    author: dict[str, Any] | None


@dataclass
class PullRequest:
    number: int
    title: str
    body: str
    head: str
    base: str
    draft: bool
    state: str = "open"
    merged: bool = False
    user: str = "personabot[bot]"
    updated_at: float = field(default_factory=time.time)
    head_owner: str | None = None  # a fork's owner; None: this repository


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    user: str = "personabot[bot]"


class FakeGitHub:
    """State plus a request handler. `api` is the REST base (GitHub Enterprise uses /api/v3)."""

    def __init__(
        self,
        owner: str = "Codertocat",
        repo: str = "Hello-World",
        api: str = API,
        slug: str = "personabot",
        default_branch: str = "master",
    ) -> None:
        self.owner, self.repo, self.api, self.slug = owner, repo, api.rstrip("/"), slug
        self.default_branch = default_branch
        self.app_id = 1234
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, dict[str, File]] = {}
        self.commits: dict[str, Commit] = {}
        self.refs: dict[str, str] = {}
        self.pulls: dict[int, PullRequest] = {}
        self.comments: dict[int, Comment] = {}
        self.reactions: list[tuple[str, int, str]] = []
        self.permissions: dict[str, str] = {}
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        self.revoked_tokens: set[str] = set()
        self.failures: list[Callable[[httpx.Request], httpx.Response | None]] = []
        self.conflicting_prs: set[int] = set()
        self._numbers = itertools.count(1)
        self._ids = itertools.count(9000)
        self._lock = threading.Lock()
        self.set_branch(default_branch, {"README.md": ("100644", b"# Hello-World\n")}, message="initial")

    # --- state helpers for tests -----------------------------------------------------------

    def make_tree(self, files: dict[str, File]) -> str:
        canonical = json.dumps(sorted((p, m, base64.b64encode(c).decode()) for p, (m, c) in files.items()))
        sha = _sha("tree", canonical.encode())
        self.trees[sha] = dict(files)
        return sha

    def make_commit(self, files: dict[str, File], parents: list[str], message: str = "commit") -> str:
        tree = self.make_tree(files)
        sha = _sha("commit", f"{tree}{parents}{message}{len(self.commits)}".encode())
        self.commits[sha] = Commit(sha, tree, parents, message, None)
        return sha

    def set_branch(self, branch: str, files: dict[str, File], message: str = "update") -> str:
        parents = [self.refs[branch]] if branch in self.refs else []
        sha = self.make_commit(files, parents, message)
        self.refs[branch] = sha
        return sha

    def files(self, ref: str) -> dict[str, File]:
        sha = self.refs.get(ref, ref)
        return self.trees[self.commits[sha].tree]

    def text(self, ref: str, path: str) -> str:
        return self.files(ref)[path][1].decode()

    def add_pull(self, head: str, base: str = "master", *, state: str = "open", merged: bool = False,
                 title: str = "t", body: str = "b", user: str = "personabot[bot]",
                 head_owner: str | None = None) -> PullRequest:
        pull = PullRequest(next(self._numbers), title, body, head, base, False, state, merged, user,
                           head_owner=head_owner)
        self.pulls[pull.number] = pull
        return pull

    def new_issue_number(self) -> int:
        return next(self._numbers)

    def open_pulls(self) -> list[PullRequest]:
        return [p for p in self.pulls.values() if p.state == "open"]

    def fail_next(self, status: int, *, match: str = "", method: str | None = None,
                  headers: dict[str, str] | None = None, body: dict[str, Any] | None = None,
                  times: int = 1) -> None:
        """Make the next `times` requests whose URL contains `match` (and method, if given) answer `status`."""
        remaining = [times]

        def failure(request: httpx.Request) -> httpx.Response | None:
            if remaining[0] and match in str(request.url) and method in (None, request.method):
                remaining[0] -= 1
                return httpx.Response(status, headers=headers or {}, json=body or {"message": f"fake {status}"})
            return None

        self.failures.append(failure)

    def calls(self, method: str, pattern: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.url.path)]

    # --- adapters ------------------------------------------------------------------------------

    def mock(self, router: Any) -> None:
        """Route every request of a respx router (or respx.mock) to this fake."""
        router.route().mock(side_effect=self.handle)

    def asgi(self) -> Callable[..., Any]:
        """An ASGI app serving the fake over real HTTP (its `api` must then point at that server)."""

        async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
            if scope["type"] != "http":
                return
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            host = dict(scope["headers"]).get(b"host", b"localhost").decode()
            raw_path = scope["path"] + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
            request = httpx.Request(
                scope["method"], f"http://{host}{raw_path}",
                headers=[(k.decode(), v.decode()) for k, v in scope["headers"]], content=body,
            )
            response = self.handle(request)
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()]})
            await send({"type": "http.response.body", "body": response.content})

        return app

    # --- the handler ---------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            for failure in self.failures:
                response = failure(request)
                if response is not None:
                    return response
            try:
                return self._dispatch(request)
            except _Answer as answer:
                return answer.response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.startswith(CODELOAD):
            return self._codeload(request)
        prefix = httpx.URL(self.api).path.rstrip("/")
        path = request.url.path
        if not path.startswith(prefix):
            raise _Answer(404, {"message": f"fake: not under {self.api}"})
        path = path[len(prefix):]
        method = request.method
        if path == "/app" and method == "GET":
            self._require_jwt(request)
            return _json({"id": self.app_id, "slug": self.slug, "name": self.slug})
        if re.fullmatch(r"/app/installations/(\d+)/access_tokens", path):
            self._require_jwt(request)
            self.tokens_issued += 1
            return _json({"token": f"ghs_faketoken{self.tokens_issued:04d}xxxxxxxxxxxxxxxxxxxxxx",
                          "expires_at": "2099-01-01T00:00:00Z"}, 201)
        repo_prefix = f"/repos/{self.owner}/{self.repo}"
        if not path.startswith(repo_prefix):
            raise _Answer(404, {"message": "Not Found"})
        self._require_token(request)
        rest = path[len(repo_prefix):]
        return self._repo(method, rest, request)

    def _require_jwt(self, request: httpx.Request) -> None:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or auth.count(".") != 2:
            raise _Answer(401, {"message": "A JSON web token could not be decoded"})

    def _require_token(self, request: httpx.Request) -> None:
        auth = request.headers.get("authorization", "")
        token = auth.split(" ", 1)[-1]
        if not token.startswith("ghs_faketoken") or token in self.revoked_tokens:
            raise _Answer(401, {"message": "Bad credentials"})

    def _repo(self, method: str, rest: str, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        body = json.loads(request.content or b"null") if request.content else None
        html = f"https://github.com/{self.owner}/{self.repo}"
        if rest == "" and method == "GET":
            return _json({"full_name": f"{self.owner}/{self.repo}", "default_branch": self.default_branch,
                          "html_url": html, "name": self.repo, "owner": {"login": self.owner}})
        if m := re.fullmatch(r"/contents/(.+)", rest):
            ref = params.get("ref", self.default_branch)
            files = self.files(ref)
            entry = files.get(m.group(1))
            if entry is None:
                raise _Answer(404, {"message": "Not Found"})
            return _json({"type": "file", "path": m.group(1), "encoding": "base64",
                          "content": base64.b64encode(entry[1]).decode(), "sha": _sha("blob", entry[1])})
        if m := re.fullmatch(r"/branches/(.+)", rest):
            branch = m.group(1)
            if branch not in self.refs:
                raise _Answer(404, {"message": "Branch not found"})
            commit = self.commits[self.refs[branch]]
            return _json({"name": branch, "commit": {"sha": commit.sha, "commit": {"tree": {"sha": commit.tree}}}})
        if m := re.fullmatch(r"/git/ref/heads/(.+)", rest):
            if m.group(1) not in self.refs:
                raise _Answer(404, {"message": "Not Found"})
            return _json({"ref": f"refs/heads/{m.group(1)}", "object": {"sha": self.refs[m.group(1)], "type": "commit"}})
        if m := re.fullmatch(r"/git/trees/(.+)", rest):
            return self._get_tree(m.group(1), params.get("recursive"))
        if (m := re.fullmatch(r"/git/blobs/([0-9a-f]+)", rest)) and method == "GET":
            content = self.blobs.get(m.group(1)) or self._blob_by_sha(m.group(1))
            return _json({"sha": m.group(1), "encoding": "base64", "content": base64.b64encode(content).decode()})
        if rest == "/git/blobs" and method == "POST":
            content = base64.b64decode(body["content"]) if body.get("encoding") == "base64" else body["content"].encode()
            sha = _sha("blob", content)
            self.blobs[sha] = content
            return _json({"sha": sha}, 201)
        if rest == "/git/trees" and method == "POST":
            return self._create_tree(body)
        if rest == "/git/commits" and method == "POST":
            for parent in body["parents"]:
                if parent not in self.commits:
                    raise _Answer(422, {"message": f"Parent SHA does not exist: {parent}"})
            if body["tree"] not in self.trees:
                raise _Answer(422, {"message": "Tree SHA does not exist"})
            sha = _sha("commit", json.dumps(body, sort_keys=True).encode() + str(len(self.commits)).encode())
            self.commits[sha] = Commit(sha, body["tree"], list(body["parents"]), body["message"],
                                       body.get("author"))
            return _json({"sha": sha, "verification": {"verified": "author" not in body and "committer" not in body}}, 201)
        if rest == "/git/refs" and method == "POST":
            branch = body["ref"].removeprefix("refs/heads/")
            if branch in self.refs:
                raise _Answer(422, {"message": "Reference already exists"})
            if any(other.startswith(branch + "/") or branch.startswith(other + "/") for other in self.refs):
                # Git stores refs as files: `a/b` cannot exist beside `a/b/c`.
                raise _Answer(422, {"message": "Reference update failed"})
            self.refs[branch] = body["sha"]
            return _json({"ref": body["ref"], "object": {"sha": body["sha"]}}, 201)
        if m := re.fullmatch(r"/git/refs/heads/(.+)", rest):
            branch = m.group(1)
            if method == "DELETE":
                self.refs.pop(branch, None)
                return httpx.Response(204)
            if method == "PATCH":
                if body.get("force"):
                    raise _Answer(500, {"message": "fake: personabot must never force-push"})
                if branch not in self.refs:
                    raise _Answer(422, {"message": "Reference does not exist"})
                if not self._is_ancestor(self.refs[branch], body["sha"]):
                    raise _Answer(422, {"message": "Update is not a fast forward"})
                self.refs[branch] = body["sha"]
                return _json({"ref": f"refs/heads/{branch}", "object": {"sha": body["sha"]}})
        if m := re.fullmatch(r"/tarball/(.+)", rest):
            ref = m.group(1)
            sha = self.refs.get(ref, ref)
            if sha not in self.commits:
                raise _Answer(404, {"message": "Not Found"})
            return httpx.Response(302, headers={"location": f"{CODELOAD}/{self.owner}/{self.repo}/legacy.tar.gz/{sha}?token=short"})
        if rest == "/pulls" and method == "GET":
            return self._list_pulls(params)
        if rest == "/pulls" and method == "POST":
            if body["head"] not in self.refs:
                raise _Answer(422, {"message": f"head {body['head']} does not exist"})
            pull = PullRequest(next(self._numbers), body["title"], body.get("body") or "", body["head"],
                               body["base"], bool(body.get("draft")))
            self.pulls[pull.number] = pull
            return _json(self._pull_json(pull), 201)
        if m := re.fullmatch(r"/pulls/(\d+)", rest):
            pull = self.pulls[int(m.group(1))]
            if method == "PATCH":
                pull.title = body.get("title", pull.title)
                pull.body = body.get("body", pull.body)
            return _json(self._pull_json(pull))
        if m := re.fullmatch(r"/pulls/(\d+)/update-branch", rest):
            return self._update_branch(self.pulls[int(m.group(1))])
        if m := re.fullmatch(r"/issues/(\d+)/comments", rest):
            issue = int(m.group(1))
            if method == "POST":
                comment = Comment(next(self._ids), issue, body["body"])
                self.comments[comment.id] = comment
                return _json(self._comment_json(comment), 201)
            return _json([self._comment_json(c) for c in self.comments.values() if c.issue == issue])
        if m := re.fullmatch(r"/issues/comments/(\d+)", rest):
            comment = self.comments[int(m.group(1))]
            if method == "PATCH":
                comment.body = body["body"]
            return _json(self._comment_json(comment))
        if m := re.fullmatch(r"/issues/(?:comments/)?(\d+)/reactions", rest):
            kind = "comment" if "/comments/" in rest else "issue"
            self.reactions.append((kind, int(m.group(1)), body["content"]))
            return _json({"id": next(self._ids), "content": body["content"]}, 201)
        if m := re.fullmatch(r"/collaborators/([^/]+)/permission", rest):
            permission = self.permissions.get(m.group(1), "read")
            return _json({"permission": permission, "role_name": permission, "user": {"login": m.group(1)}})
        if m := re.fullmatch(r"/compare/(.+)\.\.\.(.+)", rest):
            return _json({"html_url": f"{html}/compare/{m.group(1)}...{m.group(2)}", "status": "ahead"})
        raise _Answer(404, {"message": f"fake: no route for {method} {rest}"})

    # --- pieces ----------------------------------------------------------------------------------

    def _blob_by_sha(self, sha: str) -> bytes:
        for tree in self.trees.values():
            for _, content in tree.values():
                if _sha("blob", content) == sha:
                    return content
        raise _Answer(404, {"message": "Not Found"})

    def _get_tree(self, ref: str, recursive: str | None) -> httpx.Response:
        sha = self.refs.get(ref, ref)
        tree_sha = self.commits[sha].tree if sha in self.commits else sha
        if tree_sha not in self.trees:
            raise _Answer(404, {"message": "Not Found"})
        entries = [
            {"path": path, "mode": mode, "type": "blob", "sha": _sha("blob", content), "size": len(content)}
            for path, (mode, content) in sorted(self.trees[tree_sha].items())
        ]
        return _json({"sha": tree_sha, "tree": entries, "truncated": False})

    def _create_tree(self, body: dict[str, Any]) -> httpx.Response:
        files: dict[str, File] = {}
        if body.get("base_tree"):
            if body["base_tree"] not in self.trees:
                raise _Answer(422, {"message": "base_tree is not a valid tree"})
            files = dict(self.trees[body["base_tree"]])
        for entry in body["tree"]:
            if entry.get("mode") not in ("100644", "100755", "120000"):
                raise _Answer(422, {"message": f"bad mode {entry.get('mode')}"})
            if "sha" in entry and entry["sha"] is None:
                files.pop(entry["path"], None)
            elif "content" in entry:
                files[entry["path"]] = (entry["mode"], entry["content"].encode())
            else:
                content = self.blobs.get(entry["sha"])
                if content is None:
                    raise _Answer(422, {"message": "blob does not exist"})
                files[entry["path"]] = (entry["mode"], content)
        return _json({"sha": self.make_tree(files)}, 201)

    def _is_ancestor(self, old: str, new: str) -> bool:
        stack = [new]
        while stack:
            sha = stack.pop()
            if sha == old:
                return True
            stack.extend(self.commits[sha].parents if sha in self.commits else [])
        return False

    def _list_pulls(self, params: httpx.QueryParams) -> httpx.Response:
        state = params.get("state", "open")
        head = params.get("head")
        pulls = [p for p in self.pulls.values() if state == "all" or p.state == state]
        if head is not None:
            if ":" not in head:
                raise _Answer(500, {"message": "fake: head without owner: GitHub would ignore it"})
            owner, branch = head.split(":", 1)
            pulls = [p for p in pulls if owner == self.owner and p.head == branch]
        pulls.sort(key=lambda p: -p.number)
        return _json([self._pull_json(p) for p in pulls])

    def _update_branch(self, pull: PullRequest) -> httpx.Response:
        if pull.number in self.conflicting_prs:
            raise _Answer(422, {"message": "merge conflict between base and head"})
        head, base = self.refs[pull.head], self.refs[pull.base]
        if self._is_ancestor(base, head):
            raise _Answer(422, {"message": "There are no new commits on the base branch."})
        files = {**self.files(head)}
        for path, entry in self.files(base).items():
            files.setdefault(path, entry)
        merge = self.make_commit(files, [head, base], f"Merge branch '{pull.base}' into {pull.head}")
        self.refs[pull.head] = merge
        return _json({"message": "Updating pull request branch.", "url": "..."}, 202)

    def _codeload(self, request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers:
            return httpx.Response(400, json={"message": "fake codeload: Authorization header sent to a signed URL"})
        sha = request.url.path.rsplit("/", 1)[-1]
        buffer = io.BytesIO()
        top = f"{self.owner}-{self.repo}-{sha[:7]}"
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            directory = tarfile.TarInfo(top)
            directory.type = tarfile.DIRTYPE
            directory.mode = 0o755
            archive.addfile(directory)
            for path, (mode, content) in sorted(self.files(sha).items()):
                info = tarfile.TarInfo(f"{top}/{path}")
                if mode == "120000":
                    info.type = tarfile.SYMTYPE
                    info.linkname = content.decode()
                    archive.addfile(info)
                else:
                    info.size = len(content)
                    info.mode = 0o755 if mode == "100755" else 0o644
                    archive.addfile(info, io.BytesIO(content))
        return httpx.Response(200, content=buffer.getvalue(), headers={"content-type": "application/x-gzip"})

    def _pull_json(self, pull: PullRequest) -> dict[str, Any]:
        html = f"https://github.com/{self.owner}/{self.repo}/pull/{pull.number}"
        return {
            "number": pull.number, "title": pull.title, "body": pull.body, "state": pull.state,
            "draft": pull.draft, "merged": pull.merged, "merged_at": "2026-01-01T00:00:00Z" if pull.merged else None,
            "html_url": html, "user": {"login": pull.user, "type": "Bot" if pull.user.endswith("[bot]") else "User"},
            "head": {"ref": pull.head, "sha": self.refs.get(pull.head, ""),
                     "label": f"{pull.head_owner or self.owner}:{pull.head}"},
            "base": {"ref": pull.base, "sha": self.refs.get(pull.base, "")},
        }

    def _comment_json(self, comment: Comment) -> dict[str, Any]:
        return {"id": comment.id, "body": comment.body, "user": {"login": comment.user},
                "html_url": f"https://github.com/{self.owner}/{self.repo}/issues/{comment.issue}#issuecomment-{comment.id}"}


class _Answer(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.response = _json(body, status)


def _json(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)
