"""A run from spec to pull request, against the stateful fake GitHub and a real agent process.

Each test plans a real fixture delivery, runs the real runner with `tests/agent_script.py` as the
agent, and asserts what GitHub ends up holding: refs, commits, trees, PRs and comments.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from personabot.errors import TransientError
from personabot.triggers import RunSpec
from tests.conftest import load_fixture
from tests.fakegithub import FakeGitHub
from tests.harness import CONFIG_PUSH, Claimed, Harness


@pytest.fixture
def h(tmp_path: Path, pem: str) -> Iterator[Harness]:
    fake = FakeGitHub()
    fake.set_branch("master", {**fake.files("master"), ".github/personabot.yml": ("100644", CONFIG_PUSH.encode())})
    with respx.mock(assert_all_called=False) as router:
        fake.mock(router)
        yield Harness(tmp_path, pem, fake)


def builder_title() -> str:
    return "🏗️ feat/builder: architecture for Hello-World"


# --- new pull requests ----------------------------------------------------------------------------


def test_push_opens_a_pr_with_one_verified_commit(h: Harness) -> None:
    h.agent_does(
        write={"schema.sql": "CREATE TABLE t (id INTEGER NOT NULL);\n", "README.md": "# Hello-World\n\nNow with a schema.\n"},
        write_bytes={"logo.png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAfbLI3wAAAABJRU5ErkJggg=="},
        summary="Adds a schema with constraints.",
    )
    base = h.fake.refs["master"]
    outcome = h.run(h.push_spec())
    assert outcome.status == "succeeded", outcome.message
    assert outcome.branch == "personabot/builder" and outcome.pr_number is not None
    head = h.fake.refs["personabot/builder"]
    commit = h.fake.commits[head]
    assert commit.parents == [base] and commit.author is None  # GitHub signs commits made without author
    assert commit.message.startswith(builder_title() + "\n\nAdds a schema with constraints.")
    files = h.fake.files(head)
    assert files["schema.sql"] == ("100644", b"CREATE TABLE t (id INTEGER NOT NULL);\n")
    assert files["README.md"][1].endswith(b"Now with a schema.\n")
    assert files["logo.png"][1].startswith(b"\x89PNG")
    # text went inline in the tree, only the binary file became a blob
    [tree_call] = h.fake.calls("POST", r"/git/trees$")
    entries = {e["path"]: e for e in json.loads(tree_call.content)["tree"]}
    assert entries["schema.sql"]["content"].startswith("CREATE TABLE") and "sha" not in entries["schema.sql"]
    assert "sha" in entries["logo.png"] and len(h.fake.calls("POST", r"/git/blobs$")) == 1
    assert json.loads(tree_call.content)["base_tree"] == h.fake.commits[base].tree
    [pr] = h.fake.open_pulls()
    assert (pr.title, pr.head, pr.base, pr.draft) == (builder_title(), "personabot/builder", "master", False)
    assert pr.body.startswith("Adds a schema with constraints.")
    assert "<!-- personabot:persona=builder key=Codertocat/Hello-World:builder run=1 -->" in pr.body
    assert "Closes #" not in pr.body
    assert not h.fake.comments  # push runs have no issue to report on


def test_label_opens_a_pr_that_closes_the_issue_and_reports_on_it(h: Harness, tmp_path: Path) -> None:
    h.agent_does(write={"a.txt": "a\n"}, record_prompt=str(tmp_path / "prompt.txt"))
    outcome = h.run(h.label_spec(issue=1))
    assert outcome.status == "succeeded", outcome.message
    [pr] = h.fake.open_pulls()
    assert pr.head == "personabot/builder-issue-1" and "Closes #1" in pr.body
    assert ("issue", 1, "eyes") in h.fake.reactions
    [comment] = h.fake.comments.values()
    assert comment.issue == 1
    assert f"opened #{pr.number}: https://github.com/Codertocat/Hello-World/pull/{pr.number}" in comment.body
    assert "<!-- personabot:status persona=builder run=1 -->" in comment.body
    # the issue body reached the prompt without its hidden HTML comment
    prompt = (tmp_path / "prompt.txt").read_text()
    assert "You were asked to work on issue #1 of `Codertocat/Hello-World`" in prompt
    assert "Add CHECK constraints" in prompt and "secret instruction" not in prompt
    assert "PERSONABOT_SUMMARY_FILE" in prompt and "{{" not in prompt


def test_draft_prs_when_configured(h: Harness) -> None:
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", (CONFIG_PUSH + "draft: true\n").encode())})
    h.agent_does(write={"a.txt": "a\n"})
    assert h.run(h.push_spec()).status == "succeeded"
    assert h.fake.open_pulls()[0].draft is True


# --- updating the persona's open PR ---------------------------------------------------------------


def test_second_run_adds_a_commit_to_the_open_pr(h: Harness) -> None:
    h.agent_does(write={"a.txt": "one\n"}, summary="First pass.")
    first = h.run(h.push_spec())
    first_head = h.fake.refs["personabot/builder"]
    h.fake.set_branch("master", {**h.fake.files("master"), "other.txt": ("100644", b"x\n")})  # base moves on
    h.agent_does(write={"b.txt": "two\n"}, summary="Second pass.")
    second = h.run(h.push_spec())
    assert second.status == "succeeded" and second.pr_number == first.pr_number
    assert len(h.fake.pulls) == 1  # no duplicate PR
    head = h.fake.refs["personabot/builder"]
    # update-branch merged the base in first, then our commit fast-forwarded on top of that
    merge = h.fake.commits[h.fake.commits[head].parents[0]]
    assert merge.parents == [first_head, h.fake.refs["master"]]
    files = h.fake.files(head)
    assert {"a.txt", "b.txt", "other.txt"} <= set(files)
    assert not h.fake.calls("PATCH", r"/git/refs/heads/.*") or all(
        json.loads(c.content)["force"] is False for c in h.fake.calls("PATCH", r"/git/refs/heads/")
    )
    [edit] = h.fake.calls("PATCH", r"/pulls/\d+$")
    assert json.loads(edit.content) == {"body": h.fake.pulls[first.pr_number].body}  # title unchanged: not sent
    assert h.fake.pulls[first.pr_number].body.startswith("Second pass.")


def test_up_to_date_pr_is_not_a_failure(h: Harness) -> None:
    h.agent_does(write={"a.txt": "one\n"})
    first = h.run(h.push_spec())
    h.agent_does(write={"a.txt": "two\n"})
    second = h.run(h.push_spec())
    assert second.status == "succeeded" and second.pr_number == first.pr_number
    assert h.fake.text("personabot/builder", "a.txt") == "two\n"
    assert h.fake.commits[h.fake.refs["personabot/builder"]].parents != []


def test_conflicting_pr_is_worked_on_as_it_is(h: Harness) -> None:
    h.agent_does(write={"a.txt": "one\n"})
    first = h.run(h.push_spec())
    h.fake.set_branch("master", {**h.fake.files("master"), "z.txt": ("100644", b"z\n")})
    h.fake.conflicting_prs.add(first.pr_number)
    h.agent_does(write={"a.txt": "two\n"})
    assert h.run(h.push_spec()).status == "succeeded"
    assert "merge conflict" in h.fake.pulls[first.pr_number].body
    assert "z.txt" not in h.fake.files("personabot/builder")


def test_update_open_prs_false_skips(h: Harness) -> None:
    h.agent_does(write={"a.txt": "one\n"})
    h.run(h.push_spec())
    head = h.fake.refs["personabot/builder"]
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", (CONFIG_PUSH + "update_open_prs: false\n").encode())})
    outcome = h.run(h.push_spec())
    assert outcome.status == "skipped"
    assert "already has open PR #" in outcome.message and "update_open_prs is false" in outcome.message
    assert h.fake.refs["personabot/builder"] == head


# --- nothing to push ------------------------------------------------------------------------------


def test_no_changes_means_no_branch_and_no_pr(h: Harness) -> None:
    h.agent_does(say=["looked around, all good"])
    outcome = h.run(h.label_spec())
    assert outcome.status == "succeeded" and outcome.message.startswith("no changes")
    assert "personabot/builder-issue-1" not in h.fake.refs and not h.fake.pulls
    [comment] = h.fake.comments.values()
    assert "finished with no changes" in comment.body


@pytest.mark.parametrize(
    ("agent", "refused"),
    [
        ({"write": {".github/workflows/ci.yml": "on: push\n"}}, ".github/workflows/ci.yml"),
        ({"symlink": {"escape": "../../etc/passwd"}}, "escape"),
        ({"write": {"vendor/.git/config": "[core]\n"}}, "vendor/.git/config"),
        ({"write": {f"f{i}.txt": "x" for i in range(201)}}, "all changes together"),
        ({"write": {"big.txt": "x" * (1024 * 1024 + 1)}}, "big.txt"),
        # over limits.max_total_bytes: refused from the sizes, before any content is read
        ({"write": {"huge.txt": "x" * (6 * 1024 * 1024)}}, "over limits.max_total_bytes (5242880); largest: `huge.txt`"),
    ],
)
def test_guardrails_refuse_and_push_nothing(h: Harness, agent: dict[str, Any], refused: str) -> None:
    h.agent_does(**agent)
    refs_before = dict(h.fake.refs)
    outcome = h.run(h.label_spec())
    assert outcome.status == "failed"
    assert "refused" in outcome.message and refused in outcome.message
    assert h.fake.refs == refs_before and not h.fake.pulls
    assert not h.fake.calls("POST", r"/git/(trees|commits|blobs)$")
    [comment] = h.fake.comments.values()
    assert refused in comment.body and "nothing was pushed" in comment.body


def test_workflows_allowed_when_configured(h: Harness) -> None:
    config = CONFIG_PUSH + "allow_workflows: true\n"
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", config.encode())})
    h.agent_does(write={".github/workflows/ci.yml": "on: push\n"}, chmod_x=[])
    assert h.run(h.push_spec()).status == "succeeded"
    assert ".github/workflows/ci.yml" in h.fake.files("personabot/builder")


def test_modes_symlinks_and_deletions_reach_the_tree(h: Harness) -> None:
    h.agent_does(write={"run.sh": "#!/bin/sh\necho hi\n"}, chmod_x=["run.sh"], symlink={"docs": "README.md"}, delete=["README.md"])
    assert h.run(h.push_spec()).status == "succeeded"
    files = h.fake.files("personabot/builder")
    assert files["run.sh"][0] == "100755" and files["docs"] == ("120000", b"README.md")
    assert "README.md" not in files


# --- MANUAL mode, limits, closed PRs ---------------------------------------------------------------


def test_manual_persona_pushes_a_branch_and_links_the_compare_view(h: Harness, tmp_path: Path, monkeypatch) -> None:
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personas/scout.md": ("100644", b"---\nid: scout\nautomation_mode: MANUAL\n---\nLook.\n")})
    h.agent_does(write={"notes.md": "found things\n"})
    payload = load_fixture("issues/labeled.payload.json")
    payload["label"] = {**payload["label"], "name": "persona:scout"}
    [spec] = h.plan("issues", payload)
    outcome = h.run(spec)
    assert outcome.status == "succeeded" and outcome.pr_number is None
    assert "personabot/scout-issue-1" in h.fake.refs and not h.fake.pulls
    [comment] = h.fake.comments.values()
    assert "https://github.com/Codertocat/Hello-World/compare/master...personabot/scout-issue-1" in comment.body


def test_open_pr_limit_skips_new_prs_but_not_updates(h: Harness) -> None:
    config = CONFIG_PUSH + "limits:\n  open_prs: 1\n"
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", config.encode())})
    h.agent_does(write={"a.txt": "a\n"})
    assert h.run(h.push_spec()).status == "succeeded"
    outcome = h.run(h.label_spec())
    assert outcome.status == "skipped" and "limit is 1" in outcome.message
    assert "personabot/builder-issue-1" not in h.fake.refs
    h.agent_does(write={"a.txt": "b\n"})
    assert h.run(h.push_spec()).status == "succeeded"  # updating the open one is still allowed


def test_closed_unmerged_pr_blocks_push_triggers_until_the_branch_is_deleted(h: Harness) -> None:
    h.agent_does(write={"a.txt": "a\n"})
    first = h.run(h.push_spec())
    h.fake.pulls[first.pr_number].state = "closed"
    h.agent_does(write={"a.txt": "again\n"})
    outcome = h.run(h.push_spec())
    assert outcome.status == "skipped" and "closed without merging" in outcome.message
    assert len(h.fake.pulls) == 1
    del h.fake.refs["personabot/builder"]
    assert h.run(h.push_spec()).status == "succeeded"
    assert len(h.fake.open_pulls()) == 1


def test_merged_pr_branch_is_replaced_without_force(h: Harness) -> None:
    h.agent_does(write={"a.txt": "a\n"})
    first = h.run(h.push_spec())
    h.fake.pulls[first.pr_number].state, h.fake.pulls[first.pr_number].merged = "closed", True
    h.agent_does(write={"b.txt": "b\n"})
    assert h.run(h.push_spec()).status == "succeeded"
    head = h.fake.refs["personabot/builder"]
    assert h.fake.commits[head].parents == [h.fake.refs["master"]]
    assert len(h.fake.calls("DELETE", r"/git/refs/heads/personabot/builder$")) == 1


# --- comments and permissions ---------------------------------------------------------------------


def test_comment_from_a_writer_runs(h: Harness) -> None:
    h.fake.permissions["Codertocat"] = "write"
    h.agent_does(write={"a.txt": "a\n"})
    spec = h.comment_spec()
    outcome = h.run(spec)
    assert outcome.status == "succeeded"
    assert ("comment", spec.comment_id, "eyes") in h.fake.reactions


def test_comment_from_a_reader_gets_a_polite_reply_and_no_run(h: Harness) -> None:
    h.fake.permissions["stranger"] = "read"
    h.agent_does(write={"a.txt": "a\n"})
    outcome = h.run(h.comment_spec(user="stranger"))
    assert outcome.status == "skipped" and "needs write" in outcome.message
    [reply] = h.fake.comments.values()
    assert "@stranger" in reply.body and "write access" in reply.body
    assert not h.fake.pulls and not h.fake.calls("GET", r"/tarball/")


def test_invalid_config_fails_issue_runs_with_a_comment_quoting_the_error(h: Harness) -> None:
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", b"persnas: {}\n")})
    outcome = h.run(h.label_spec())
    assert outcome.status == "failed" and "persnas" in outcome.message
    [comment] = h.fake.comments.values()
    assert "`.github/personabot.yml` is invalid" in comment.body and "persnas" in comment.body


# --- the agent ------------------------------------------------------------------------------------


def test_agent_timeout_kills_the_process_group_and_says_so(h: Harness, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    h.timeout = 2
    h.agent_does(spawn_sleeper=str(pidfile), sleep=60, say=[f"line {i}" for i in range(30)])
    started = time.monotonic()
    outcome = h.run(h.label_spec())
    assert time.monotonic() - started < 20
    assert outcome.status == "failed" and "timed out after 2 s" in outcome.message
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the agent's grandchild survived the timeout")
    [comment] = h.fake.comments.values()
    assert "timed out" in comment.body and "line 29" in comment.body and "line 9\n" not in comment.body
    assert not h.fake.pulls


def test_failed_agent_reports_its_log_tail_redacted(h: Harness) -> None:
    h.agent_does(say=["working", "token ghs_abcdefghijklmnopqrstuvwxyz0123456789", "boom"], exit=3)
    outcome = h.run(h.label_spec())
    assert outcome.status == "failed" and "exit code 3" in outcome.message
    [comment] = h.fake.comments.values()
    assert "boom" in comment.body and "ghs_abcdefghijklmnopqrstuvwxyz0123456789" not in comment.body


def test_agent_environment_holds_no_secret(h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pem: str) -> None:
    monkeypatch.setenv("PRIVATE_KEY", pem)
    monkeypatch.setenv("WEBHOOK_SECRET", "whsec-very-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_leakedtokenleakedtokenleaked")
    monkeypatch.setenv("AGENT_API_KEY", "sk-allowed")
    dump = tmp_path / "env.json"
    tree = tmp_path / "tree.bin"
    h.agent_does(dump_env=str(dump), dump_tree=str(tree), write={"a.txt": "a\n"})
    assert h.run(h.push_spec()).status == "succeeded"
    env = json.loads(dump.read_text())
    assert env["AGENT_API_KEY"] == "sk-allowed"
    text = json.dumps(env)
    for secret in ("whsec-very-secret", "ghs_", "BEGIN RSA PRIVATE KEY", "ghs_faketoken"):
        assert secret not in text
    assert set(env) <= {"PATH", "LANG", "HOME", "PERSONABOT_PROMPT_FILE", "PERSONABOT_SUMMARY_FILE", "AGENT_API_KEY", "PWD", "LC_CTYPE"}
    workspace = tree.read_bytes()
    assert b"./.git/HEAD" in workspace  # the dump really covered the git folder
    assert h.fake.tokens_issued >= 1 and b"ghs_" not in workspace and b"PRIVATE KEY" not in workspace


# --- GitHub misbehaving ---------------------------------------------------------------------------


def test_expired_token_is_refreshed_once(h: Harness) -> None:
    h.agent_does(write={"a.txt": "a\n"})
    spec = h.push_spec()
    h.fake.revoked_tokens.add("ghs_faketoken0001xxxxxxxxxxxxxxxxxxxxxx")  # the planner's token expired
    assert h.run(spec).status == "succeeded"
    assert h.fake.tokens_issued == 2


def test_secondary_rate_limit_and_5xx_are_retried(h: Harness) -> None:
    h.agent_does(write={"a.txt": "a\n"})
    spec = h.push_spec()
    h.fake.fail_next(403, match="/git/trees", headers={"retry-after": "3"}, body={"message": "You have exceeded a secondary rate limit"})
    h.fake.fail_next(502, match="/pulls", times=2)
    assert h.run(spec).status == "succeeded"
    assert 3.0 in h.sleeps
    assert len(h.fake.open_pulls()) == 1


def test_moved_branch_is_a_transient_error_not_a_force_push(h: Harness) -> None:
    h.agent_does(write={"a.txt": "a\n"})
    h.run(h.push_spec())
    h.agent_does(write={"a.txt": "b\n"})
    theirs: list[str] = []

    def someone_pushes_first(request: httpx.Request) -> httpx.Response | None:
        # A maintainer pushes to the PR branch while the agent works; GitHub then refuses ours.
        if request.method == "PATCH" and "/git/refs/heads/personabot/builder" in str(request.url) and not theirs:
            files = {**h.fake.files("personabot/builder"), "theirs.txt": ("100644", b"mine\n")}
            theirs.append(h.fake.set_branch("personabot/builder", files, message="maintainer fix"))
            return httpx.Response(422, json={"message": "Update is not a fast forward"})
        return None

    h.fake.failures.append(someone_pushes_first)
    with pytest.raises(TransientError, match="moved during the run"):
        h.run(h.push_spec())
    assert h.fake.refs["personabot/builder"] == theirs[0]  # their commit stays; nothing forced
    assert len(h.fake.pulls) == 1


def test_a_refused_push_of_an_unmoved_branch_fails_clearly(h: Harness) -> None:
    h.agent_does(write={".github/workflows/ci.yml": "on: push\n"})
    config = CONFIG_PUSH + "allow_workflows: true\n"
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", config.encode())})
    message = "refusing to allow a GitHub App to create or update workflow `.github/workflows/ci.yml` without `workflows` permission"
    h.fake.fail_next(422, match="/git/refs", method="POST", body={"message": message})
    outcome = h.run(h.label_spec())
    assert outcome.status == "failed" and "GitHub refused to update `personabot/builder-issue-1`" in outcome.message
    assert "without `workflows` permission" in outcome.message
    [comment] = h.fake.comments.values()
    assert "without `workflows` permission" in comment.body


def test_push_and_issue_branches_of_one_persona_coexist(h: Harness) -> None:
    h.agent_does(write={"a.txt": "a\n"})
    assert h.run(h.push_spec()).status == "succeeded"
    labelled = h.run(h.label_spec())
    assert labelled.status == "succeeded", labelled.message
    assert {"personabot/builder", "personabot/builder-issue-1"} <= set(h.fake.refs)
    assert len(h.fake.open_pulls()) == 2


def test_the_last_failed_attempt_reports_on_the_issue(h: Harness) -> None:
    spec = h.label_spec()
    h.fake.fail_next(500, match="/tarball/", times=4)
    with pytest.raises(TransientError):
        h.runner()(Claimed(9, spec, 4))  # the fifth attempt
    [comment] = h.fake.comments.values()
    assert "failed: gave up after 5 attempts" in comment.body


def test_a_retried_run_keeps_one_status_comment(h: Harness) -> None:
    spec = h.label_spec()
    h.fake.fail_next(500, match="/tarball/", times=4)  # every in-process retry fails: the worker retries later
    with pytest.raises(TransientError):
        h.runner()(Claimed(7, spec, 0))
    [comment] = h.fake.comments.values()
    assert "is working on this (run 7)" in comment.body
    h.agent_does(write={"a.txt": "a\n"})
    outcome = h.runner()(Claimed(7, spec, 1))
    assert outcome.status == "succeeded"
    [comment] = h.fake.comments.values()  # the same comment, edited
    assert f"opened #{outcome.pr_number}" in comment.body
    assert len([r for r in h.fake.reactions if r[2] == "eyes"]) == 1


def test_dedupe_false_opens_a_new_branch_and_pr_every_run(h: Harness) -> None:
    persona = b"---\nid: scout\ndedupe: false\n---\nLook around.\n"
    config = CONFIG_PUSH + "  scout:\n    on: [push]\n"
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personas/scout.md": ("100644", persona),
                                 ".github/personabot.yml": ("100644", config.encode())})
    h.agent_does(write={"notes.txt": "n\n"})
    payload = load_fixture("push/payload.json", ref="refs/heads/master", after="1" * 40, deleted=False)
    specs = {spec.persona: spec for spec in h.plan("push", payload)}
    first, second = h.run(specs["scout"]), h.run(specs["scout"])
    assert first.branch == "personabot/scout/1" and second.branch == "personabot/scout/2"
    assert first.pr_number != second.pr_number and len(h.fake.open_pulls()) == 2


def test_a_label_still_runs_after_its_pr_was_closed_building_on_that_branch(h: Harness) -> None:
    h.agent_does(write={"a.txt": "a\n"})
    first = h.run(h.label_spec())
    old_head = h.fake.refs["personabot/builder-issue-1"]
    h.fake.pulls[first.pr_number].state = "closed"
    h.agent_does(write={"b.txt": "b\n"})
    again = h.run(h.label_spec())
    assert again.status == "succeeded" and again.pr_number != first.pr_number
    head = h.fake.refs["personabot/builder-issue-1"]
    assert h.fake.commits[head].parents == [old_head]  # a fast-forward on the closed PR's branch
    assert not h.fake.calls("DELETE", r"/git/refs/")


def test_a_retry_after_the_push_opens_the_pr_instead_of_losing_it(h: Harness) -> None:
    spec = h.push_spec()
    h.agent_does(write={"a.txt": "a\n"}, summary="Adds a.")
    h.fake.fail_next(502, match="/pulls", method="POST", times=4)  # in-process retries run out
    with pytest.raises(TransientError):
        h.runner()(Claimed(5, spec, 0))
    assert "personabot/builder" in h.fake.refs and not h.fake.pulls  # pushed, no PR yet
    pushed = h.fake.refs["personabot/builder"]
    outcome = h.runner()(Claimed(5, spec, 1))  # the agent changes the same thing again: no new diff
    assert outcome.status == "succeeded" and outcome.pr_number is not None
    [pr] = h.fake.open_pulls()
    assert pr.head == "personabot/builder" and h.fake.refs["personabot/builder"] == pushed


def test_a_pr_created_behind_a_lost_response_is_found_not_failed(h: Harness) -> None:
    h.agent_does(write={"a.txt": "a\n"})

    def created_but_lost(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path.endswith("/pulls") and not h.fake.pulls:
            h.fake.add_pull("personabot/builder", title="🏗️ feat/builder: architecture for Hello-World")
            return httpx.Response(422, json={"message": "A pull request already exists for Codertocat:personabot/builder."})
        return None

    h.fake.failures.append(created_but_lost)
    outcome = h.run(h.push_spec())
    assert outcome.status == "succeeded" and outcome.pr_number == next(iter(h.fake.pulls))
    assert len(h.fake.pulls) == 1


def test_draft_prs_fall_back_to_ready_where_drafts_are_unavailable(h: Harness) -> None:
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", (CONFIG_PUSH + "draft: true\n").encode())})
    h.fake.fail_next(422, match="/pulls", method="POST",
                     body={"message": "Draft pull requests are not supported in this repository."})
    h.agent_does(write={"a.txt": "a\n"})
    outcome = h.run(h.push_spec())
    assert outcome.status == "succeeded"
    [pr] = h.fake.open_pulls()
    assert pr.draft is False and pr.body.startswith("> `draft: true` is set")


def test_the_open_pr_limit_counts_only_personabot_prs_of_this_repository(h: Harness) -> None:
    config = CONFIG_PUSH + "limits:\n  open_prs: 1\n"
    h.fake.set_branch("master", {**h.fake.files("master"), ".github/personabot.yml": ("100644", config.encode())})
    h.fake.add_pull("personabot/onboarding")  # ours, but onboarding does not count
    h.fake.add_pull("personabot/builder-issue-9", user="someone", head_owner="someone")  # a fork's branch
    h.agent_does(write={"a.txt": "a\n"})
    assert h.run(h.push_spec()).status == "succeeded"


def test_the_prompt_carries_the_comment_the_journal_and_open_prs(h: Harness, tmp_path: Path) -> None:
    lister = b"---\nid: lister\n---\n{% for pr in open_prs %}open: #{{ pr.number }} {{ pr.headRefName }} by {{ pr.author.login }}\n{% endfor %}{{ journal_entries }}\n"
    h.fake.set_branch("master", {
        **h.fake.files("master"),
        ".personabot/journals/builder/2026-11-30-0900-indexes.md": ("100644", b"Observation: runs lacked an index.\n"),
        ".github/personas/lister.md": ("100644", lister),
    })
    h.fake.add_pull("feature/x", user="octocat")
    h.fake.permissions["Codertocat"] = "write"
    record = tmp_path / "prompt.txt"
    h.agent_does(record_prompt=str(record))
    payload = load_fixture("issue_comment/created.with-installation.payload.json")
    payload["comment"] = {**payload["comment"], "body": "/persona builder\nplease also add an index <!-- hidden -->"}
    [spec] = h.plan("issue_comment", payload)
    assert h.run(spec).status == "succeeded"
    prompt = record.read_text()
    assert "@Codertocat asked for this run in a comment" in prompt
    assert "please also add an index" in prompt and "hidden" not in prompt
    assert "Observation: runs lacked an index." in prompt  # the persona's journal, from the workspace
    labelled = load_fixture("issues/labeled.payload.json")
    labelled["label"] = {**labelled["label"], "name": "persona:lister"}
    [spec] = h.plan("issues", labelled)
    assert h.run(spec).status == "succeeded"
    assert "open: #1 feature/x by octocat" in record.read_text()  # the repository's open PRs


def comment_on_pull_request(h: Harness, number: int) -> RunSpec:
    payload = load_fixture("issue_comment/created.with-installation.payload.json")
    payload["issue"] = {**payload["issue"], "number": number, "pull_request": {"url": "..."}}
    payload["comment"] = {**payload["comment"], "body": "/persona builder\nrename the table to job_runs"}
    [spec] = h.plan("issue_comment", payload)
    return spec


def test_a_comment_on_the_personas_own_pr_adds_to_that_pr(h: Harness) -> None:
    h.fake.permissions["Codertocat"] = "write"
    h.agent_does(write={"a.txt": "a\n"}, summary="First version.")
    first = h.run(h.label_spec())
    body_before = h.fake.pulls[first.pr_number].body
    h.agent_does(write={"a.txt": "renamed\n"}, summary="Renamed.")
    outcome = h.run(comment_on_pull_request(h, first.pr_number))
    assert outcome.status == "succeeded" and outcome.pr_number == first.pr_number
    assert len(h.fake.pulls) == 1
    assert h.fake.text("personabot/builder-issue-1", "a.txt") == "renamed\n"
    assert h.fake.pulls[first.pr_number].body == body_before  # still closes issue 1


def test_a_comment_on_someone_elses_pr_is_skipped_with_the_reason(h: Harness) -> None:
    h.fake.permissions["Codertocat"] = "write"
    theirs = h.fake.add_pull("feature/x", user="octocat")
    h.agent_does(write={"a.txt": "a\n"})
    outcome = h.run(comment_on_pull_request(h, theirs.number))
    assert outcome.status == "skipped" and "is not an open pull request of the builder persona" in outcome.message
    assert set(h.fake.refs) == {"master"}
    [status] = [c for c in h.fake.comments.values() if "skipped" in c.body]
    assert "ask for new work on an issue" in status.body
