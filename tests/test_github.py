"""The GitHub client against a respx-mocked API: request shapes, auth, retries, errors."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit.cache import MemCacheStrategy

from personabot.errors import PermanentError, RateLimited, TransientError
from personabot.github import GitHubAPIError, GitHubApp, TreeEntry
from personabot.settings import Settings

API = "https://api.github.com"
GHE = "https://ghe.example/api/v3"
REPO = "octo/widgets"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(rsa_key: rsa.RSAPrivateKey) -> str:
    return rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


class Harness:
    def __init__(self, pem: str, base: str = API) -> None:
        self.sleeps: list[float] = []
        self.counted: list[tuple[str, int]] = []
        self.base = base
        self.settings = Settings(APP_ID=123, PRIVATE_KEY=pem, GITHUB_API_URL=base)
        self.app = GitHubApp(
            self.settings,
            cache_strategy=MemCacheStrategy(),
            sleep=self.sleeps.append,
            on_response=lambda op, status: self.counted.append((op, status)),
        )
        self.tokens = 0

    def token_route(self, router: respx.MockRouter, *tokens: str) -> respx.Route:
        responses = [
            httpx.Response(201, json={"token": t, "expires_at": "2099-01-01T00:00:00Z"})
            for t in (tokens or ("ghs_first",))
        ]
        return router.post(f"{self.base}/app/installations/42/access_tokens").mock(
            side_effect=responses
        )

    def inst(self):
        return self.app.installation(42)


@pytest.fixture
def h(pem: str) -> Harness:
    return Harness(pem)


def body(route: respx.Route, index: int = -1) -> dict:
    return json.loads(route.calls[index].request.content)


# -- authentication ------------------------------------------------------------------------------


def test_token_exchange_signs_a_jwt_and_the_token_is_reused(h: Harness, rsa_key) -> None:
    with respx.mock(assert_all_called=True) as router:
        tokens = h.token_route(router, "ghs_first")
        repo = router.get(f"{API}/repos/{REPO}").mock(
            return_value=httpx.Response(
                200,
                json={"full_name": REPO, "default_branch": "trunk",
                      "html_url": f"https://github.com/{REPO}", "private": True},
            )
        )
        inst = h.inst()
        info = inst.get_repository(REPO)
        inst.get_repository(REPO)

    assert info.default_branch == "trunk" and info.private and info.owner == "octo"
    assert tokens.call_count == 1  # the token is cached between calls
    auth = tokens.calls[0].request.headers["Authorization"]
    assert auth.startswith("Bearer ")
    claims = jwt.decode(auth.removeprefix("Bearer "), rsa_key.public_key(), algorithms=["RS256"])
    assert claims["iss"] == "123"
    assert repo.calls[0].request.headers["Authorization"] == "token ghs_first"


def test_slug_is_fetched_once_with_the_app_jwt(h: Harness) -> None:
    with respx.mock() as router:
        route = router.get(f"{API}/app").mock(
            return_value=httpx.Response(200, json={"slug": "personabot-dev", "id": 123})
        )
        assert h.app.slug() == "personabot-dev"
        assert h.app.slug() == "personabot-dev"
    assert route.call_count == 1
    assert route.calls[0].request.headers["Authorization"].startswith("Bearer ")


def test_app_info_is_not_cached_and_reports_the_id(h: Harness) -> None:
    with respx.mock() as router:
        route = router.get(f"{API}/app").mock(
            return_value=httpx.Response(
                200, json={"slug": "personabot-dev", "id": 123, "name": "Personabot Dev"}
            )
        )
        info = h.app.app_info()
        h.app.app_info()
    assert (info.id, info.slug, info.name) == (123, "personabot-dev", "Personabot Dev")
    assert route.call_count == 2


def test_app_jwt_rejected_on_get_app_blames_the_credentials(h: Harness) -> None:
    # GET /app is signed with the App's JWT: a 401 is a wrong key or APP_ID, not an uninstall.
    with respx.mock() as router:
        route = router.get(f"{API}/app").mock(
            return_value=httpx.Response(401, json={"message": "A JSON web token could not be decoded"})
        )
        with pytest.raises(GitHubAPIError) as caught:
            h.app.app_info()
    assert route.call_count == 2  # one retry with a fresh JWT
    assert caught.value.status == 401
    assert "rejected the App's credentials" in str(caught.value)
    assert "uninstalled" not in str(caught.value)


def test_expired_token_is_refreshed_once(h: Harness, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with respx.mock() as router:
        tokens = h.token_route(router, "ghs_old", "ghs_new")
        route = router.get(f"{API}/repos/{REPO}/git/ref/heads/main").mock(
            side_effect=lambda request: (
                httpx.Response(401, json={"message": "Bad credentials"})
                if request.headers["Authorization"] == "token ghs_old"
                else httpx.Response(200, json={"object": {"sha": "abc"}})
            )
        )
        assert h.inst().get_branch_sha(REPO, "main") == "abc"
    assert tokens.call_count == 2
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "token ghs_old", "token ghs_new",
    ]
    assert "ghs_" not in caplog.text


def test_token_rejected_twice_fails_permanently(h: Harness) -> None:
    with respx.mock() as router:
        tokens = h.token_route(router, "ghs_a", "ghs_b", "ghs_c")
        router.get(f"{API}/repos/{REPO}/git/ref/heads/main").mock(
            return_value=httpx.Response(401, json={"message": "Bad credentials"})
        )
        with pytest.raises(PermanentError) as caught:
            h.inst().get_branch_sha(REPO, "main")
    assert tokens.call_count == 2
    message = str(caught.value)
    assert "get_branch_sha" in message and "rejected twice" in message
    assert "ghs_" not in message


def test_rejected_app_jwt_fails_permanently_after_one_retry(h: Harness) -> None:
    with respx.mock() as router:
        tokens = router.post(f"{API}/app/installations/42/access_tokens").mock(
            return_value=httpx.Response(401, json={"message": "'Expiration time' claim is too far"})
        )
        with pytest.raises(PermanentError, match="rejected the App's credentials.*APP_ID"):
            h.inst().get_repository(REPO)
    assert tokens.call_count == 2


def test_missing_credentials_are_a_clear_error() -> None:
    with pytest.raises(PermanentError, match="APP_ID and PRIVATE_KEY"):
        GitHubApp(Settings(APP_ID=None, PRIVATE_KEY=None, PRIVATE_KEY_PATH=None))


def test_enterprise_base_url_is_used_for_every_call(pem: str) -> None:
    h = Harness(pem, base=GHE)
    with respx.mock(assert_all_called=True) as router:
        tokens = h.token_route(router)
        ref = router.get(f"{GHE}/repos/{REPO}/git/ref/heads/main").mock(
            return_value=httpx.Response(200, json={"object": {"sha": "f00"}})
        )
        assert h.inst().get_branch_sha(REPO, "main") == "f00"
    assert tokens.calls[0].request.url.host == "ghe.example"
    assert ref.calls[0].request.url.path == "/api/v3/repos/octo/widgets/git/ref/heads/main"


# -- retries and errors --------------------------------------------------------------------------


def test_5xx_is_retried_with_backoff_then_succeeds(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        route = router.get(f"{API}/repos/{REPO}/git/ref/heads/main").mock(
            side_effect=[
                httpx.Response(502, json={"message": "Bad gateway"}),
                httpx.Response(503),
                httpx.Response(200, json={"object": {"sha": "abc"}}),
            ]
        )
        assert h.inst().get_branch_sha(REPO, "main") == "abc"
    assert route.call_count == 3
    assert h.sleeps == [1.0, 2.0]
    assert ("get_branch_sha", 502) in h.counted and ("get_branch_sha", 200) in h.counted


def test_5xx_that_persists_becomes_transient(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        route = router.get(f"{API}/repos/{REPO}").mock(return_value=httpx.Response(500))
        with pytest.raises(TransientError) as caught:
            h.inst().get_repository(REPO)
    assert route.call_count == 4  # first try + 3 retries
    assert not isinstance(caught.value, RateLimited)
    assert "get_repository" in str(caught.value)


def test_network_error_is_retried(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        route = router.get(f"{API}/repos/{REPO}/git/ref/heads/main").mock(
            side_effect=[httpx.ConnectError("boom"), httpx.Response(200, json={"object": {"sha": "1"}})]
        )
        assert h.inst().get_branch_sha(REPO, "main") == "1"
    assert route.call_count == 2 and h.sleeps == [1.0]


def test_secondary_rate_limit_honours_retry_after(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        route = router.post(f"{API}/repos/{REPO}/issues/5/comments").mock(
            side_effect=[
                httpx.Response(403, headers={"retry-after": "7"},
                               json={"message": "You have exceeded a secondary rate limit."}),
                httpx.Response(201, json={"id": 99}),
            ]
        )
        assert h.inst().create_comment(REPO, 5, "hello") == 99
    assert route.call_count == 2
    assert h.sleeps == [7.0]


def test_secondary_rate_limit_by_message_only(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        router.post(f"{API}/repos/{REPO}/issues/5/comments").mock(
            side_effect=[
                httpx.Response(403, json={"message": "You have exceeded a secondary rate limit"}),
                httpx.Response(201, json={"id": 1}),
            ]
        )
        assert h.inst().create_comment(REPO, 5, "x") == 1
    assert h.sleeps == [60.0]  # GitHub: wait at least a minute when no retry-after is given


def test_long_retry_after_is_handed_to_the_worker(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        router.get(f"{API}/repos/{REPO}").mock(
            return_value=httpx.Response(429, headers={"retry-after": "600"}, json={"message": "slow"})
        )
        with pytest.raises(TransientError) as caught:
            h.inst().get_repository(REPO)
    assert caught.value.retry_after == 600.0
    assert h.sleeps == []  # not slept in-process


def test_primary_rate_limit_defers_until_reset(h: Harness) -> None:
    reset = 4102444800  # 2100-01-01
    with respx.mock() as router:
        h.token_route(router)
        route = router.get(f"{API}/repos/{REPO}").mock(
            return_value=httpx.Response(
                403,
                headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
                json={"message": "API rate limit exceeded"},
            )
        )
        with pytest.raises(RateLimited) as caught:
            h.inst().get_repository(REPO)
    assert route.call_count == 1 and h.sleeps == []
    assert caught.value.reset_at == datetime.fromtimestamp(reset, tz=UTC)


def test_client_errors_name_the_operation(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        router.post(f"{API}/repos/{REPO}/pulls").mock(
            return_value=httpx.Response(
                422, json={"message": "Validation Failed",
                           "errors": [{"message": "A pull request already exists for octo:x."}]}
            )
        )
        with pytest.raises(PermanentError) as caught:
            h.inst().create_pr(REPO, title="t", body="b", head="x", base="main")
    message = str(caught.value)
    assert "create_pr" in message and REPO in message and "already exists" in message
    assert h.sleeps == []


def test_uninstalled_app_token_exchange_404_is_permanent(h: Harness) -> None:
    with respx.mock() as router:
        router.post(f"{API}/app/installations/42/access_tokens").mock(
            return_value=httpx.Response(404, json={"message": "Not Found"})
        )
        with pytest.raises(PermanentError, match="installation token"):
            h.inst().get_repository(REPO)


# -- contents ------------------------------------------------------------------------------------


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def test_get_file_text_decodes_and_404_is_none(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        route = router.get(f"{API}/repos/{REPO}/contents/.github/personabot.yml").mock(
            return_value=httpx.Response(
                200, json={"type": "file", "encoding": "base64", "size": 9,
                           "content": b64("draft: ü\n"), "sha": "s"}
            )
        )
        router.get(f"{API}/repos/{REPO}/contents/missing.yml").mock(
            return_value=httpx.Response(404, json={"message": "Not Found"})
        )
        inst = h.inst()
        assert inst.get_file_text(REPO, ".github/personabot.yml", "main") == "draft: ü\n"
        assert inst.get_file_text(REPO, "missing.yml", "main") is None
    assert route.calls[0].request.url.params["ref"] == "main"


def test_list_files_reads_only_markdown_under_the_directory(h: Harness) -> None:
    tree = [
        {"path": ".jules/personas", "type": "tree", "sha": "t1"},
        {"path": ".jules/personas/builder.md", "type": "blob", "sha": "b1"},
        {"path": ".jules/personas/scout/prompt.md", "type": "blob", "sha": "b2"},
        {"path": ".jules/personas/notes.txt", "type": "blob", "sha": "b3"},
        {"path": ".jules/personas-old/x.md", "type": "blob", "sha": "b4"},
        {"path": "README.md", "type": "blob", "sha": "b5"},
    ]
    with respx.mock() as router:
        h.token_route(router)
        tree_route = router.get(f"{API}/repos/{REPO}/git/trees/abc123").mock(
            return_value=httpx.Response(200, json={"sha": "abc123", "tree": tree, "truncated": False})
        )
        blobs = router.get(url__regex=rf"{API}/repos/{REPO}/git/blobs/(?P<sha>\w+)").mock(
            side_effect=lambda request, sha: httpx.Response(
                200, json={"encoding": "base64", "content": b64(f"content of {sha}")}
            )
        )
        files = h.inst().list_files(REPO, ".jules/personas", "abc123")
    assert files == {"builder.md": "content of b1", "scout/prompt.md": "content of b2"}
    assert tree_route.calls[0].request.url.params["recursive"] == "1"
    assert blobs.call_count == 2


def test_list_files_refuses_too_many_files(h: Harness) -> None:
    tree = [{"path": f"p/{i}.md", "type": "blob", "sha": f"s{i}"} for i in range(5)]
    with respx.mock() as router:
        h.token_route(router)
        router.get(f"{API}/repos/{REPO}/git/trees/main").mock(
            return_value=httpx.Response(200, json={"tree": tree, "truncated": False})
        )
        with pytest.raises(PermanentError, match="5 .md files"):
            h.inst().list_files(REPO, "p", "main", max_files=4)


def test_list_files_walks_the_directory_when_the_tree_is_truncated(h: Harness) -> None:
    def listing(path: str, items: list[tuple[str, str]]) -> httpx.Response:
        return httpx.Response(200, json=[
            {"path": f"{path}/{name}", "type": kind, "sha": f"sha-{name}"} for name, kind in items
        ])

    with respx.mock() as router:
        h.token_route(router)
        router.get(f"{API}/repos/{REPO}/git/trees/main").mock(
            return_value=httpx.Response(200, json={"tree": [], "truncated": True})
        )
        router.get(f"{API}/repos/{REPO}/contents/personas").mock(
            return_value=listing("personas", [("a.md", "file"), ("x.png", "file"), ("partials", "dir")])
        )
        router.get(f"{API}/repos/{REPO}/contents/personas/partials").mock(
            return_value=listing("personas/partials", [("p.md", "file")])
        )
        router.get(url__regex=rf"{API}/repos/{REPO}/git/blobs/(?P<sha>[\w.-]+)").mock(
            side_effect=lambda request, sha: httpx.Response(
                200, json={"encoding": "base64", "content": b64(sha)}
            )
        )
        files = h.inst().list_files(REPO, "personas", "main")
    assert files == {"a.md": "sha-a.md", "partials/p.md": "sha-p.md"}


def test_large_file_text_comes_from_its_blob(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        router.get(f"{API}/repos/{REPO}/contents/big.md").mock(
            return_value=httpx.Response(
                200, json={"type": "file", "encoding": "none", "content": "", "size": 2_000_000,
                           "sha": "bigsha"}
            )
        )
        router.get(f"{API}/repos/{REPO}/git/blobs/bigsha").mock(
            return_value=httpx.Response(200, json={"encoding": "base64", "content": b64("big " * 10)})
        )
        assert h.inst().get_file_text(REPO, "big.md", "main") == "big " * 10


def test_branch_sha_with_slashes_and_missing_branch(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        found = router.get(f"{API}/repos/{REPO}/git/ref/heads/personabot/builder/issue-3").mock(
            return_value=httpx.Response(200, json={"object": {"sha": "cafe"}})
        )
        router.get(f"{API}/repos/{REPO}/git/ref/heads/gone").mock(
            return_value=httpx.Response(404, json={"message": "Not Found"})
        )
        inst = h.inst()
        assert inst.get_branch_sha(REPO, "personabot/builder/issue-3") == "cafe"
        assert inst.ref_exists(REPO, "personabot/builder/issue-3")
        assert not inst.ref_exists(REPO, "gone")
    assert found.call_count == 2


# -- git data ------------------------------------------------------------------------------------


def test_commit_sequence_request_shapes(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        blob = router.post(f"{API}/repos/{REPO}/git/blobs").mock(
            return_value=httpx.Response(201, json={"sha": "blob1"})
        )
        tree = router.post(f"{API}/repos/{REPO}/git/trees").mock(
            return_value=httpx.Response(201, json={"sha": "tree1"})
        )
        commit = router.post(f"{API}/repos/{REPO}/git/commits").mock(
            return_value=httpx.Response(201, json={"sha": "commit1"})
        )
        create = router.post(f"{API}/repos/{REPO}/git/refs").mock(
            return_value=httpx.Response(201, json={})
        )
        update = router.patch(f"{API}/repos/{REPO}/git/refs/heads/personabot/builder").mock(
            return_value=httpx.Response(200, json={})
        )
        inst = h.inst()
        assert inst.create_blob(REPO, b"\x89PNG\x00") == "blob1"
        entries = [
            TreeEntry("docs/a.md", "100644", content="hello\n"),
            TreeEntry("bin/run", "100755", content="#!/bin/sh\n"),
            TreeEntry("logo.png", "100644", sha="blob1"),
            TreeEntry("old.txt", "100644"),
        ]
        assert inst.create_tree(REPO, "base", entries) == "tree1"
        assert inst.create_commit(REPO, "builder: add docs", "tree1", ["parent1"]) == "commit1"
        inst.create_ref(REPO, "personabot/builder", "commit1")
        inst.update_ref(REPO, "personabot/builder", "commit2")

    assert body(blob) == {"content": b64(b"\x89PNG\x00"), "encoding": "base64"}
    assert body(tree) == {
        "base_tree": "base",
        "tree": [
            {"path": "docs/a.md", "mode": "100644", "type": "blob", "content": "hello\n"},
            {"path": "bin/run", "mode": "100755", "type": "blob", "content": "#!/bin/sh\n"},
            {"path": "logo.png", "mode": "100644", "type": "blob", "sha": "blob1"},
            {"path": "old.txt", "mode": "100644", "type": "blob", "sha": None},
        ],
    }
    # No author/committer: GitHub signs the commit.
    assert body(commit) == {"message": "builder: add docs", "tree": "tree1", "parents": ["parent1"]}
    assert body(create) == {"ref": "refs/heads/personabot/builder", "sha": "commit1"}
    assert body(update) == {"sha": "commit2", "force": False}


def test_update_ref_that_is_not_a_fast_forward_fails(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        router.patch(f"{API}/repos/{REPO}/git/refs/heads/b").mock(
            return_value=httpx.Response(422, json={"message": "Update is not a fast forward"})
        )
        with pytest.raises(PermanentError, match="update_ref.*not a fast forward"):
            h.inst().update_ref(REPO, "b", "x")


# -- tarball -------------------------------------------------------------------------------------


def test_tarball_redirect_is_fetched_without_authorization(h: Harness, tmp_path: Path) -> None:
    archive = b"\x1f\x8b" + b"x" * 5000
    signed = "https://codeload.github.com/octo/widgets/legacy.tar.gz/refs/heads/main?token=SIGNED"
    with respx.mock() as router:
        h.token_route(router)
        api = router.get(f"{API}/repos/{REPO}/tarball/abc").mock(
            return_value=httpx.Response(302, headers={"location": signed})
        )
        download = router.get(signed).mock(return_value=httpx.Response(200, content=archive))
        dest = tmp_path / "repo.tar.gz"
        assert h.inst().download_tarball(REPO, "abc", dest) == len(archive)
    assert dest.read_bytes() == archive
    assert api.calls[0].request.headers["Authorization"] == "token ghs_first"
    assert "Authorization" not in download.calls[0].request.headers
    assert ("download_tarball", 302) in h.counted and ("download_tarball", 200) in h.counted


def test_tarball_same_host_redirect_also_drops_authorization(pem: str, tmp_path: Path) -> None:
    h = Harness(pem, base=GHE)
    signed = "https://ghe.example/_codeload/octo/widgets/legacy.tar.gz/main?token=T"
    with respx.mock() as router:
        h.token_route(router)
        router.get(f"{GHE}/repos/{REPO}/tarball/main").mock(
            return_value=httpx.Response(302, headers={"location": signed})
        )
        download = router.get(signed).mock(return_value=httpx.Response(200, content=b"tgz"))
        h.inst().download_tarball(REPO, "main", tmp_path / "a.tgz")
    assert "Authorization" not in download.calls[0].request.headers


def test_tarball_over_the_cap_is_refused_and_removed(h: Harness, tmp_path: Path) -> None:
    signed = "https://codeload.github.com/x.tar.gz"
    with respx.mock() as router:
        h.token_route(router)
        router.get(f"{API}/repos/{REPO}/tarball/main").mock(
            return_value=httpx.Response(302, headers={"location": signed})
        )
        router.get(signed).mock(return_value=httpx.Response(200, content=b"y" * 2048))
        dest = tmp_path / "big.tgz"
        with pytest.raises(PermanentError, match="1000-byte limit"):
            h.inst().download_tarball(REPO, "main", dest, max_bytes=1000)
    assert not dest.exists()


def test_tarball_download_5xx_is_retried_from_the_api(h: Harness, tmp_path: Path) -> None:
    signed = "https://codeload.github.com/y.tar.gz"
    with respx.mock() as router:
        h.token_route(router)
        api = router.get(f"{API}/repos/{REPO}/tarball/main").mock(
            return_value=httpx.Response(302, headers={"location": signed})
        )
        router.get(signed).mock(side_effect=[httpx.Response(503), httpx.Response(200, content=b"ok")])
        assert h.inst().download_tarball(REPO, "main", tmp_path / "t.tgz") == 2
    assert api.call_count == 2  # a fresh signed URL for the retry


# -- pull requests -------------------------------------------------------------------------------


def pr_json(number: int, *, merged_at: str | None = None, head: str = "personabot/builder") -> dict:
    return {
        "number": number, "title": f"PR {number}", "body": "b", "state": "open", "draft": False,
        "html_url": f"https://github.com/{REPO}/pull/{number}", "merged_at": merged_at,
        "head": {"ref": head, "sha": f"h{number}"}, "base": {"ref": "main"},
        "user": {"login": "personabot[bot]"},
    }


def test_find_open_pr_queries_owner_colon_branch(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        route = router.get(f"{API}/repos/{REPO}/pulls").mock(
            side_effect=[httpx.Response(200, json=[pr_json(7)]), httpx.Response(200, json=[])]
        )
        inst = h.inst()
        pr = inst.find_open_pr(REPO, "personabot/builder")
        assert inst.find_open_pr(REPO, "personabot/other") is None
    assert pr is not None and pr.number == 7 and pr.head_sha == "h7"
    params = route.calls[0].request.url.params
    assert params["head"] == "octo:personabot/builder" and params["state"] == "open"


def test_list_closed_prs_reports_the_latest_and_whether_merged(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        route = router.get(f"{API}/repos/{REPO}/pulls").mock(
            side_effect=[
                httpx.Response(200, json=[pr_json(3, merged_at=None) | {"state": "closed"}]),
                httpx.Response(200, json=[pr_json(4, merged_at="2026-01-01T00:00:00Z")]),
            ]
        )
        inst = h.inst()
        closed = inst.list_closed_prs(REPO, "personabot/builder")
        merged = inst.list_closed_prs(REPO, "personabot/builder")
    assert closed is not None and not closed.merged and closed.state == "closed"
    assert merged is not None and merged.merged
    params = route.calls[0].request.url.params
    assert params["state"] == "closed" and params["head"] == "octo:personabot/builder"
    assert params["sort"] == "updated" and params["direction"] == "desc"


def test_list_open_prs_follows_pagination_on_the_api_host(h: Harness) -> None:
    page2 = f"{API}/repositories/1/pulls?state=open&per_page=100&page=2"
    with respx.mock() as router:
        h.token_route(router)
        router.get(f"{API}/repos/{REPO}/pulls").mock(
            return_value=httpx.Response(
                200, json=[pr_json(1), pr_json(2)], headers={"link": f'<{page2}>; rel="next"'}
            )
        )
        second = router.get(f"{API}/repositories/1/pulls").mock(
            return_value=httpx.Response(200, json=[pr_json(3)])
        )
        prs = h.inst().list_open_prs(REPO)
    assert [p.number for p in prs] == [1, 2, 3]
    assert second.calls[0].request.url.params["page"] == "2"


def test_create_and_update_pr_bodies(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        create = router.post(f"{API}/repos/{REPO}/pulls").mock(
            return_value=httpx.Response(201, json=pr_json(9))
        )
        update = router.patch(f"{API}/repos/{REPO}/pulls/9").mock(
            return_value=httpx.Response(200, json=pr_json(9))
        )
        inst = h.inst()
        pr = inst.create_pr(REPO, title="T", body="B", head="personabot/builder", base="main", draft=True)
        inst.update_pr(REPO, 9, body="new body")
        assert inst.update_pr(REPO, 9) is None  # nothing to change, nothing sent
    assert pr.number == 9 and pr.html_url.endswith("/pull/9")
    assert body(create) == {"title": "T", "body": "B", "head": "personabot/builder",
                            "base": "main", "draft": True}
    assert update.call_count == 1 and body(update) == {"body": "new body"}


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (202, "Updating pull request branch.", "updated"),
        (422, "There are no new commits on the base branch.", "up_to_date"),
        (422, "merge conflict between base and head", "conflict"),
    ],
)
def test_update_branch_outcomes(h: Harness, status: int, message: str, expected: str) -> None:
    with respx.mock() as router:
        h.token_route(router)
        route = router.put(f"{API}/repos/{REPO}/pulls/9/update-branch").mock(
            return_value=httpx.Response(status, json={"message": message})
        )
        assert h.inst().update_branch(REPO, 9, "headsha") == expected
    assert body(route) == {"expected_head_sha": "headsha"}


# -- issues --------------------------------------------------------------------------------------


def test_comments_and_reactions(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        create = router.post(f"{API}/repos/{REPO}/issues/12/comments").mock(
            return_value=httpx.Response(201, json={"id": 555})
        )
        edit = router.patch(f"{API}/repos/{REPO}/issues/comments/555").mock(
            return_value=httpx.Response(200, json={"id": 555})
        )
        on_issue = router.post(f"{API}/repos/{REPO}/issues/12/reactions").mock(
            return_value=httpx.Response(201, json={})
        )
        on_comment = router.post(f"{API}/repos/{REPO}/issues/comments/777/reactions").mock(
            return_value=httpx.Response(200, json={})
        )
        inst = h.inst()
        assert inst.create_comment(REPO, 12, "working") == 555
        inst.update_comment(REPO, 555, "done")
        inst.add_reaction(REPO, issue=12)
        inst.add_reaction(REPO, comment_id=777)
    assert body(create) == {"body": "working"} and body(edit) == {"body": "done"}
    assert body(on_issue) == {"content": "eyes"} and body(on_comment) == {"content": "eyes"}


def test_collaborator_permission_uses_the_role(h: Harness) -> None:
    with respx.mock() as router:
        h.token_route(router)
        router.get(f"{API}/repos/{REPO}/collaborators/maya/permission").mock(
            return_value=httpx.Response(200, json={"permission": "write", "role_name": "maintain"})
        )
        router.get(f"{API}/repos/{REPO}/collaborators/ci-custom/permission").mock(
            return_value=httpx.Response(200, json={"permission": "read", "role_name": "auditor"})
        )
        router.get(f"{API}/repos/{REPO}/collaborators/stranger/permission").mock(
            return_value=httpx.Response(404, json={"message": "Not Found"})
        )
        inst = h.inst()
        assert inst.collaborator_permission(REPO, "maya") == "maintain"
        assert inst.collaborator_permission(REPO, "ci-custom") == "read"
        assert inst.collaborator_permission(REPO, "stranger") == "none"


def test_compare_url_uses_the_repository_html_url(pem: str) -> None:
    h = Harness(pem, base=GHE)
    with respx.mock() as router:
        h.token_route(router)
        repo = router.get(f"{GHE}/repos/{REPO}").mock(
            return_value=httpx.Response(
                200, json={"full_name": REPO, "default_branch": "main",
                           "html_url": f"https://ghe.example/{REPO}"}
            )
        )
        inst = h.inst()
        url = inst.compare_url(REPO, "main", "personabot/builder")
        inst.compare_url(REPO, "main", "personabot/scout")
    assert url == f"https://ghe.example/{REPO}/compare/main...personabot/builder"
    assert repo.call_count == 1


def test_unusable_private_key_is_a_clear_error() -> None:
    app = GitHubApp(Settings(APP_ID=1, PRIVATE_KEY="not a key"), cache_strategy=MemCacheStrategy())
    with respx.mock():
        with pytest.raises(PermanentError, match="get_repository: could not authenticate.*PRIVATE_KEY"):
            app.installation(3).get_repository(REPO)
