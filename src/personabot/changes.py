"""What the agent changed, and whether it may be pushed.

After the agent ran, the workspace is hostile input: it may contain hooks under `.git/`, symlinks to
files outside the repository, edited CI workflows (which would run with the repository's secrets), or
gigabytes of output. `check` decides from the changes alone, before anything reaches GitHub, and says
which paths were refused and why. Pure: snapshots and bytes in, verdicts out.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from personabot.repoconfig import CONFIG_PATH, Limits

FileMode = Literal["100644", "100755", "120000"]
Status = Literal["added", "modified", "deleted"]

SYMLINK: FileMode = "120000"
EXECUTABLE: FileMode = "100755"
# Git's own heuristic looks for NUL in the first 8000 bytes; we use 8 KiB plus a UTF-8 check, because
# the Git Data API takes inline tree content as UTF-8 text only.
BINARY_SNIFF_BYTES = 8 * 1024
WORKFLOWS_DIR = ".github/workflows/"
# `Refusal.path` for limits on the change as a whole rather than one file.
ALL_FILES = "*"


@dataclass(frozen=True)
class Entry:
    """One file of a snapshot of the workspace (symlinks: digest of the target)."""

    mode: FileMode
    digest: str
    size: int


def diff(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> list[tuple[str, Status]]:
    """Paths that differ between two snapshots, sorted; a mode change alone (chmod +x, file to
    symlink) counts as modified because the commit must carry it."""
    changes: list[tuple[str, Status]] = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old is None:
            changes.append((path, "added"))
        elif new is None:
            changes.append((path, "deleted"))
        elif (old.mode, old.digest) != (new.mode, new.digest):
            changes.append((path, "modified"))
    return changes


def _is_binary(content: bytes) -> bool:
    if b"\0" in content[:BINARY_SNIFF_BYTES]:
        return True
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass(frozen=True)
class FileChange:
    """One changed path; deleted files have neither mode nor content, symlinks hold their target."""

    path: str
    status: Status
    mode: FileMode | None
    content: bytes | None

    @property
    def size(self) -> int:
        return len(self.content) if self.content is not None else 0

    @property
    def is_symlink(self) -> bool:
        return self.mode == SYMLINK

    @property
    def is_binary(self) -> bool:
        return self.content is not None and _is_binary(self.content)


@dataclass(frozen=True)
class ChangeSet:
    files: tuple[FileChange, ...]

    def _with(self, status: Status) -> tuple[FileChange, ...]:
        return tuple(change for change in self.files if change.status == status)

    @property
    def added(self) -> tuple[FileChange, ...]:
        return self._with("added")

    @property
    def modified(self) -> tuple[FileChange, ...]:
        return self._with("modified")

    @property
    def deleted(self) -> tuple[FileChange, ...]:
        return self._with("deleted")

    @property
    def is_empty(self) -> bool:
        return not self.files

    @property
    def total_bytes(self) -> int:
        """Bytes the commit would upload (deletions cost nothing)."""
        return sum(change.size for change in self.files if change.status != "deleted")

    def stat(self) -> str:
        """A short summary for logs, PR bodies and status comments, like `git diff --stat`."""
        if not self.files:
            return "no changes"
        count = len(self.files)
        groups = (("added", self.added), ("modified", self.modified), ("deleted", self.deleted))
        parts = [f"{len(group)} {label}" for label, group in groups if group]
        lines = [f"{count} file{'s' if count != 1 else ''} changed: {', '.join(parts)}"]
        for change in self.files:
            letter = {"added": "A", "modified": "M", "deleted": "D"}[change.status]
            if change.status == "deleted":
                lines.append(f"D {change.path}")
            elif change.is_symlink:
                target = (change.content or b"").decode("utf-8", "replace")
                lines.append(f"{letter} {change.path} -> {target} (symlink)")
            else:
                extra = ", executable" if change.mode == EXECUTABLE else ""
                lines.append(f"{letter} {change.path} ({_bytes(change.size)}{extra})")
        return "\n".join(lines)


def _bytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


@dataclass(frozen=True)
class Refusal:
    path: str  # ALL_FILES for limits on the whole change
    reason: str


@dataclass(frozen=True)
class Verdict:
    refusals: tuple[Refusal, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.refusals

    def message(self) -> str:
        """Text for the person who reads the status comment: every refused path and why."""
        if self.allowed:
            return "The changes are within personabot's guardrails."
        count = len(self.refusals)
        lines = [
            f"personabot refused the agent's changes ({count} problem{'s' if count != 1 else ''}); "
            "nothing was pushed:"
        ]
        for refusal in self.refusals:
            where = "all changes together" if refusal.path == ALL_FILES else f"`{refusal.path}`"
            lines.append(f"- {where}: {refusal.reason}")
        return "\n".join(lines)


_DRIVE = re.compile(r"^[A-Za-z]:")


def _is_git_name(part: str) -> bool:
    # Case-insensitive: on macOS and Windows checkouts `.GIT` is the same folder as `.git`.
    return part.casefold() == ".git"


def _path_problem(path: str) -> str | None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return "not a plain relative path inside the repository"
    if any(_is_git_name(part) for part in parts):
        return "changes inside a .git folder are never allowed (hooks and config there run code)"
    return None


def _symlink_problem(path: str, target_bytes: bytes) -> str | None:
    try:
        target = target_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return "symlink target is not valid UTF-8"
    if not target or "\0" in target:
        return "symlink has an empty or invalid target"
    if target.startswith(("/", "\\")) or _DRIVE.match(target):
        return f"symlink to an absolute path ({target}) leaves the repository"
    if "\\" in target:
        # Harmless on Linux, but a Windows checkout reads it as a separator: `..\..\x` would escape.
        return f"symlink target {target} contains a backslash"
    # Resolved against the link's own folder, as the filesystem does.
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        return f"symlink to {target} leaves the repository"
    if any(_is_git_name(part) for part in resolved.split("/")):
        return f"symlink to {target} points into .git"
    return None


def _touches_workflows(path: str) -> bool:
    # Replacing `.github` or `.github/workflows` itself (say, by a symlink) is a workflow change too.
    return path in (".github", WORKFLOWS_DIR.rstrip("/")) or path.startswith(WORKFLOWS_DIR)


def check(changes: ChangeSet, *, allow_workflows: bool, limits: Limits) -> Verdict:
    """Every reason these changes may not be pushed; an empty verdict means they may."""
    refusals: list[Refusal] = []
    for change in changes.files:
        path = change.path
        problem = _path_problem(path)
        if problem:
            refusals.append(Refusal(path, problem))
            continue
        if _touches_workflows(path) and not allow_workflows:
            # Deleting a workflow counts too: GitHub's API refuses any change there without the
            # `workflows` permission, and removing a required check is as much a change to CI.
            refusals.append(
                Refusal(path, f"workflow files may change only with `allow_workflows: true` in {CONFIG_PATH}")
            )
        if change.status == "deleted":
            continue
        if change.is_symlink:
            problem = _symlink_problem(path, change.content or b"")
            if problem:
                refusals.append(Refusal(path, problem))
            continue
        content = change.content or b""
        if _is_binary(content):
            if len(content) > limits.max_binary_file_bytes:
                refusals.append(
                    Refusal(
                        path,
                        f"binary file of {len(content):,} bytes is over the limit of "
                        f"{limits.max_binary_file_bytes:,} (limits.max_binary_file_bytes)",
                    )
                )
        elif len(content) > limits.max_text_file_bytes:
            refusals.append(
                Refusal(
                    path,
                    f"text file of {len(content):,} bytes is over the limit of "
                    f"{limits.max_text_file_bytes:,} (limits.max_text_file_bytes)",
                )
            )
    if len(changes.files) > limits.max_files:
        refusals.append(
            Refusal(
                ALL_FILES,
                f"{len(changes.files):,} files changed, over the limit of {limits.max_files:,} (limits.max_files)",
            )
        )
    if changes.total_bytes > limits.max_total_bytes:
        refusals.append(
            Refusal(
                ALL_FILES,
                f"{changes.total_bytes:,} bytes in total, over the limit of {limits.max_total_bytes:,} "
                "(limits.max_total_bytes)",
            )
        )
    return Verdict(tuple(refusals))
