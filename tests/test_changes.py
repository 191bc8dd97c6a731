"""The agent's changes: the diff of two snapshots, the diff-stat, and every guardrail."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from personabot.changes import (
    ALL_FILES,
    ChangeSet,
    Entry,
    FileChange,
    Refusal,
    Verdict,
    check,
    diff,
)
from personabot.repoconfig import Limits, parse_repo_config

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BUILDER = (SHARED / "seed" / "builder.md").read_bytes()  # a real persona file: UTF-8 text with emoji
DEFAULTS = Limits()


def entry(content: bytes, mode: str = "100644") -> Entry:
    return Entry(mode=mode, digest=hashlib.sha256(content).hexdigest(), size=len(content))  # type: ignore[arg-type]


def added(path: str, content: bytes, mode: str = "100644") -> FileChange:
    return FileChange(path=path, status="added", mode=mode, content=content)  # type: ignore[arg-type]


def link(path: str, target: str) -> FileChange:
    return added(path, target.encode(), "120000")


def refusals(*files: FileChange, allow_workflows: bool = False, limits: Limits = DEFAULTS) -> list[Refusal]:
    return list(check(ChangeSet(files), allow_workflows=allow_workflows, limits=limits).refusals)


# --- diff --------------------------------------------------------------------------------------


def test_diff_finds_added_modified_deleted_and_mode_changes() -> None:
    before = {
        "README.md": entry(BUILDER),
        "same.txt": entry(b"same"),
        "old.txt": entry(b"bye"),
        "run.sh": entry(b"#!/bin/sh\n"),
        "link": entry(b"README.md", "120000"),
    }
    after = {
        "README.md": entry(BUILDER + b"\nOne more line.\n"),
        "same.txt": entry(b"same"),
        "run.sh": entry(b"#!/bin/sh\n", "100755"),  # chmod +x only
        "link": entry(b"README.md", "100644"),  # symlink replaced by a file with the same bytes
        "new/dir/file.py": entry(b"print(1)\n"),
    }
    assert diff(before, after) == [
        ("README.md", "modified"),
        ("link", "modified"),
        ("new/dir/file.py", "added"),
        ("old.txt", "deleted"),
        ("run.sh", "modified"),
    ]


def test_diff_of_identical_snapshots_is_empty() -> None:
    snapshot = {"a": entry(b"a"), "b/c": entry(b"c", "100755")}
    assert diff(snapshot, dict(snapshot)) == []
    assert diff({}, {}) == []


# --- ChangeSet ---------------------------------------------------------------------------------


def sample() -> ChangeSet:
    return ChangeSet(
        (
            added("docs/new.md", b"x" * 123),
            FileChange("personas/builder.md", "modified", "100644", BUILDER),
            FileChange("tools/run.sh", "modified", "100755", b"#!/bin/sh\n"),
            link("latest", "docs/new.md"),
            FileChange("old.txt", "deleted", None, None),
        )
    )


def test_changeset_groups_and_sizes() -> None:
    changes = sample()
    assert [c.path for c in changes.added] == ["docs/new.md", "latest"]
    assert [c.path for c in changes.modified] == ["personas/builder.md", "tools/run.sh"]
    assert [c.path for c in changes.deleted] == ["old.txt"]
    assert changes.total_bytes == 123 + len(BUILDER) + 10 + len(b"docs/new.md")
    assert not changes.is_empty
    assert ChangeSet(()).is_empty


def test_stat_summarises_like_git() -> None:
    assert sample().stat().splitlines() == [
        "5 files changed: 2 added, 2 modified, 1 deleted",
        "A docs/new.md (123 bytes)",
        f"M personas/builder.md ({len(BUILDER)} bytes)",
        "M tools/run.sh (10 bytes, executable)",
        "A latest -> docs/new.md (symlink)",
        "D old.txt",
    ]
    one = ChangeSet((added("a.txt", b"1"), FileChange("b", "deleted", None, None), added("c", b"")))
    assert one.stat().splitlines()[0] == "3 files changed: 2 added, 1 deleted"
    assert ChangeSet((added("a.txt", b"1"),)).stat() == "1 file changed: 1 added\nA a.txt (1 byte)"
    assert ChangeSet(()).stat() == "no changes"


@pytest.mark.parametrize(
    ("content", "binary"),
    [
        (BUILDER, False),
        ("naïve café 👀\n".encode(), False),
        (b"", False),
        (b"PNG\x00\x01\x02", True),
        (b"x" * 9000 + b"\x00", False),  # NUL after the sniffed 8 KiB, valid UTF-8: text
        ("é".encode("latin-1") + b" not utf-8", True),
        (b"\x89PNG\r\n\x1a\n", True),
    ],
)
def test_binary_detection(content: bytes, binary: bool) -> None:
    assert added("f", content).is_binary is binary


# --- guardrails --------------------------------------------------------------------------------


def test_ordinary_changes_are_allowed() -> None:
    verdict = check(sample(), allow_workflows=False, limits=DEFAULTS)
    assert verdict == Verdict(())
    assert verdict.allowed
    assert verdict.message() == "The changes are within personabot's guardrails."


@pytest.mark.parametrize(
    "path",
    [".git/hooks/pre-commit", ".git/config", "sub/.git/config", "vendor/lib/.git/HEAD", ".GIT/config", "a/.Git/x"],
)
@pytest.mark.parametrize("status", ["added", "modified", "deleted"])
def test_anything_inside_a_git_folder_is_refused(path: str, status: str) -> None:
    change = FileChange(path, status, None if status == "deleted" else "100644", None if status == "deleted" else b"x")  # type: ignore[arg-type]
    [refusal] = refusals(change)
    assert refusal.path == path
    assert "changes inside a .git folder are never allowed" in refusal.reason


@pytest.mark.parametrize("path", [".gitignore", ".github/CODEOWNERS", "docs/.git-notes", "my.git/x"])
def test_git_lookalike_names_are_fine(path: str) -> None:
    assert refusals(added(path, b"x")) == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "a/../../b", "a//b", "./a", ""])
def test_paths_that_are_not_plain_relative_paths_are_refused(path: str) -> None:
    [refusal] = refusals(added(path, b"x"))
    assert refusal.reason == "not a plain relative path inside the repository"


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("docs/latest", "v2/index.md"),
        ("docs/api/link", "../README.md"),  # one level up from docs/api stays in docs
        ("a/b/c/link", "../../../README.md"),  # up to the root exactly
        ("a/link", ".."),  # the repository root itself
        ("link", "./README.md"),
        ("link", "missing/but/inside"),  # dangling is fine: it cannot reach outside
        ("a/link", "b/../../c"),
    ],
)
def test_symlinks_that_stay_inside_are_allowed(path: str, target: str) -> None:
    assert refusals(link(path, target)) == []


@pytest.mark.parametrize(
    ("path", "target", "reason"),
    [
        ("link", "/etc/passwd", "symlink to an absolute path (/etc/passwd) leaves the repository"),
        ("docs/link", "../../x", "symlink to ../../x leaves the repository"),
        ("link", "..", "symlink to .. leaves the repository"),
        ("a/b/link", "../../../etc/passwd", "symlink to ../../../etc/passwd leaves the repository"),
        ("a/link", "b/../../../x", "symlink to b/../../../x leaves the repository"),
        ("link", "C:/Windows", "symlink to an absolute path (C:/Windows) leaves the repository"),
        ("link", "..\\..\\x", "symlink target ..\\..\\x contains a backslash"),
        ("link", ".git/config", "symlink to .git/config points into .git"),
        ("sub/link", "../.git", "symlink to ../.git points into .git"),
        ("link", "", "symlink has an empty or invalid target"),
    ],
)
def test_symlinks_that_leave_the_repository_are_refused(path: str, target: str, reason: str) -> None:
    assert refusals(link(path, target)) == [Refusal(path, reason)]


def test_symlink_with_non_utf8_target_is_refused() -> None:
    assert refusals(added("link", b"\xff\xfe", "120000")) == [Refusal("link", "symlink target is not valid UTF-8")]


def test_deleting_a_symlink_is_fine() -> None:
    assert refusals(FileChange("old-link", "deleted", None, None)) == []


@pytest.mark.parametrize(
    "change",
    [
        added(".github/workflows/ci.yml", b"on: push\n"),
        FileChange(".github/workflows/release.yml", "modified", "100644", b"name: release\n"),
        FileChange(".github/workflows/old.yml", "deleted", None, None),
        added(".github/workflows/nested/x.yml", b"x"),
        link(".github/workflows", "../somewhere"),
        link(".github", "config"),
    ],
)
def test_workflow_changes_need_allow_workflows(change: FileChange) -> None:
    [refusal] = refusals(change)
    assert refusal == Refusal(
        change.path, "workflow files may change only with `allow_workflows: true` in .github/personabot.yml"
    )
    assert refusals(change, allow_workflows=True) == []


def test_other_github_files_are_not_workflows() -> None:
    assert refusals(added(".github/dependabot.yml", b"version: 2\n"), added(".github/workflows.md", b"x")) == []


def test_text_and_binary_file_size_limits() -> None:
    limits = Limits(max_text_file_bytes=100, max_binary_file_bytes=200)
    text_ok, text_big = added("ok.txt", b"a" * 100), added("big.txt", b"a" * 101)
    bin_ok, bin_big = added("ok.bin", b"\0" * 200), added("big.bin", b"\0" * 201)
    # Large binary content stays under the binary limit even though it is over the text limit.
    assert refusals(text_ok, bin_ok, limits=limits) == []
    assert refusals(text_big, bin_big, limits=limits) == [
        Refusal("big.txt", "text file of 101 bytes is over the limit of 100 (limits.max_text_file_bytes)"),
        Refusal("big.bin", "binary file of 201 bytes is over the limit of 200 (limits.max_binary_file_bytes)"),
    ]


def test_default_text_limit_is_one_mib() -> None:
    assert refusals(added("a.txt", b"a" * 1024 * 1024)) == []
    [refusal] = refusals(added("a.txt", b"a" * (1024 * 1024 + 1)))
    assert refusal.reason == "text file of 1,048,577 bytes is over the limit of 1,048,576 (limits.max_text_file_bytes)"


def test_file_count_limit_counts_every_changed_file() -> None:
    limits = Limits(max_files=3)
    three = [added("a", b"1"), added("b", b"2"), FileChange("c", "deleted", None, None)]
    assert refusals(*three, limits=limits) == []
    assert refusals(*three, added("d", b"4"), limits=limits) == [
        Refusal(ALL_FILES, "4 files changed, over the limit of 3 (limits.max_files)")
    ]


def test_total_size_limit_ignores_deletions() -> None:
    limits = Limits(max_total_bytes=10)
    assert refusals(added("a", b"12345"), added("b", b"12345"), FileChange("c", "deleted", None, None), limits=limits) == []
    assert refusals(added("a", b"12345"), added("b", b"123456"), limits=limits) == [
        Refusal(ALL_FILES, "11 bytes in total, over the limit of 10 (limits.max_total_bytes)")
    ]


def test_default_file_count_limit_is_200() -> None:
    files = [added(f"f{n}.txt", b"x") for n in range(201)]
    assert refusals(*files[:200]) == []
    assert refusals(*files) == [Refusal(ALL_FILES, "201 files changed, over the limit of 200 (limits.max_files)")]


def test_limits_come_from_the_repository_config() -> None:
    config = parse_repo_config(
        "allow_workflows: true\n"
        "limits:\n"
        "  max_files: 2\n"
        "  max_total_bytes: 50\n"
        "  max_text_file_bytes: 40\n"
        "  max_binary_file_bytes: 5\n"
    )
    files = (
        added(".github/workflows/ci.yml", b"on: push\n"),
        added("notes.txt", b"n" * 41),
        added("logo.png", b"\x89PNG\x00\x00"),
    )
    verdict = check(ChangeSet(files), allow_workflows=config.allow_workflows, limits=config.limits)
    assert verdict.refusals == (
        Refusal("notes.txt", "text file of 41 bytes is over the limit of 40 (limits.max_text_file_bytes)"),
        Refusal("logo.png", "binary file of 6 bytes is over the limit of 5 (limits.max_binary_file_bytes)"),
        Refusal(ALL_FILES, "3 files changed, over the limit of 2 (limits.max_files)"),
        Refusal(ALL_FILES, "56 bytes in total, over the limit of 50 (limits.max_total_bytes)"),
    )


def test_verdict_message_lists_every_refused_path() -> None:
    files = (
        added(".git/hooks/post-checkout", b"#!/bin/sh\ncurl evil\n", "100755"),
        link("escape", "../../home"),
        added(".github/workflows/ci.yml", b"on: push\n"),
        added("fine.txt", b"ok"),
    )
    verdict = check(ChangeSet(files), allow_workflows=False, limits=Limits(max_files=3))
    assert not verdict.allowed
    assert verdict.message().splitlines() == [
        "personabot refused the agent's changes (4 problems); nothing was pushed:",
        "- `.git/hooks/post-checkout`: changes inside a .git folder are never allowed (hooks and config there run code)",
        "- `escape`: symlink to ../../home leaves the repository",
        "- `.github/workflows/ci.yml`: workflow files may change only with `allow_workflows: true` in .github/personabot.yml",
        "- all changes together: 4 files changed, over the limit of 3 (limits.max_files)",
    ]
    assert "fine.txt" not in verdict.message()
