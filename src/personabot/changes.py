"""Workspace changes as data (pure).

MINIMAL STAND-IN written on the `github` branch so that workspace.py can be built and tested: only
the types of CONTRACTS.md (FileMode, Entry, FileChange, ChangeSet). The full module (diff, check,
Verdict, Refusal) comes from the changes branch and replaces this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FileMode = Literal["100644", "100755", "120000"]
ChangeStatus = Literal["added", "modified", "deleted"]


@dataclass(frozen=True)
class Entry:
    """One file of a snapshot: enough to tell whether it changed without keeping its content."""

    mode: FileMode
    digest: str
    size: int


@dataclass(frozen=True)
class FileChange:
    path: str
    status: ChangeStatus
    mode: FileMode | None  # None for deletions
    content: bytes | None  # None for deletions; a symlink's content is its target

    @property
    def is_binary(self) -> bool:
        if self.content is None:
            return False
        if b"\x00" in self.content:
            return True
        try:
            self.content.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False


@dataclass(frozen=True)
class ChangeSet:
    files: tuple[FileChange, ...]

    def _with(self, status: ChangeStatus) -> tuple[FileChange, ...]:
        return tuple(f for f in self.files if f.status == status)

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
        return sum(len(f.content or b"") for f in self.files)

    def stat(self) -> str:
        marks = {"added": "A", "modified": "M", "deleted": "D"}
        lines = [f"{marks[f.status]} {f.path}" for f in self.files]
        lines.append(
            f"{len(self.files)} files changed: {len(self.added)} added, "
            f"{len(self.modified)} modified, {len(self.deleted)} deleted"
        )
        return "\n".join(lines)
