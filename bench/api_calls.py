"""GitHub requests per run: one push-triggered run that changes 1, 10 and 100 text files.

Counts every request that reaches the (stateful, in-process) fake GitHub, from the installation
token to the pull request, with the real runner and a real agent process. Target: at most 12
requests whatever the number of files.

    .venv/bin/python bench/api_calls.py
"""

from __future__ import annotations

import collections
import sys
import tempfile
from pathlib import Path

import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit.cache import MemCacheStrategy

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from personabot.github import GitHubApp  # noqa: E402
from tests.conftest import load_fixture  # noqa: E402
from tests.fakegithub import CODELOAD, FakeGitHub  # noqa: E402
from tests.harness import CONFIG_PUSH, Harness  # noqa: E402


def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def one_run(files: int, pem: str, cold: bool) -> tuple[int, collections.Counter[str]]:
    fake = FakeGitHub()
    fake.set_branch("master", {**fake.files("master"), ".github/personabot.yml": ("100644", CONFIG_PUSH.encode())})
    with tempfile.TemporaryDirectory() as tmp, respx.mock(assert_all_called=False) as router:
        fake.mock(router)
        h = Harness(Path(tmp), pem, fake)
        payload = load_fixture("push/payload.json", ref="refs/heads/master", after="1" * 40, deleted=False)
        [spec] = h.plan("push", payload)
        h.agent_does(write={f"src/file_{i:03d}.py": f"VALUE = {i}\n" for i in range(files)})
        if cold:  # a worker that has not talked to this installation yet: the token is fetched too
            h.app = GitHubApp(h.settings, cache_strategy=MemCacheStrategy())
        planned = len(fake.requests)
        outcome = h.run(spec)
        assert outcome.status == "succeeded" and outcome.pr_number, outcome.message
        run_requests = fake.requests[planned:]
        kinds: collections.Counter[str] = collections.Counter()
        for request in run_requests:
            path = request.url.path.split("/repos/Codertocat/Hello-World")[-1].replace("/app/installations/4242", "")
            if str(request.url).startswith(CODELOAD):
                path = "codeload (tarball bytes)"
            kinds[f"{request.method} {path.split('?')[0]}"] += 1
        return len(run_requests), kinds


def main() -> None:
    pem = private_key()
    print("files changed | requests, token cached | requests, token fetched")
    print("------------- | ---------------------- | -----------------------")
    detail = None
    for files in (1, 10, 100):
        warm, _ = one_run(files, pem, cold=False)
        cold, kinds = one_run(files, pem, cold=True)
        print(f"{files:>13} | {warm:>22} | {cold:>23}")
        detail = detail or kinds
    print("\nrequests of the 1-file run with the token fetched (planning excluded):")
    for kind, count in sorted(detail.items()):
        print(f"  {count} x {kind}")


if __name__ == "__main__":
    main()
