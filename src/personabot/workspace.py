"""The agent's workspace: a repository tarball extracted safely, made a local git repository.

The archive comes from GitHub but its contents are the repository's, which anyone with push access
controls, and the tree is hostile again after the agent ran. So extraction refuses anything that
could write outside the workspace, and the snapshot never follows a symlink.

The local git repository exists so that the agent sees a clean `git status` and can diff its own
work; personabot itself compares snapshots, not git state. It has no remote and holds no token.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from personabot.changes import ChangeSet, Entry, FileChange, FileMode, diff
from personabot.errors import PermanentError

DEFAULT_MAX_BYTES = 1024 * 1024 * 1024  # extracted size
DEFAULT_MAX_FILES = 100_000

# A fixed identity and no user or system config: the commit is local only and must not depend on,
# or be signed with, whatever the host has configured.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "personabot",
    "GIT_AUTHOR_EMAIL": "personabot@localhost",
    "GIT_COMMITTER_NAME": "personabot",
    "GIT_COMMITTER_EMAIL": "personabot@localhost",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


# ----------------------------------------------------------------------------------------------
# Snapshot


def _digest_file(path: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(path: Path, info: os.stat_result) -> Entry | None:
    if stat.S_ISLNK(info.st_mode):
        target = os.fsencode(os.readlink(path))
        return Entry("120000", hashlib.sha256(target).hexdigest(), len(target))
    if stat.S_ISREG(info.st_mode):
        mode: FileMode = "100755" if info.st_mode & 0o111 else "100644"
        return Entry(mode, _digest_file(path), info.st_size)
    return None  # fifos, sockets, devices: git cannot hold them


def snapshot(root: Path) -> dict[str, Entry]:
    """{posix path relative to root: Entry} for every file and symlink, except the top `.git/`.

    Symlinks are recorded as links (mode 120000, digest of the target text), never followed, so a
    link to /etc/passwd is the text "/etc/passwd" here.
    """
    root = Path(root)
    result: dict[str, Entry] = {}
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(current)
        if here == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in [*dirnames, *filenames]:
            path = here / name
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                continue
            entry = _entry(path, info)
            if entry is not None:
                result[path.relative_to(root).as_posix()] = entry
        if here == root and ".git" in filenames:
            # a top-level `.git` file (worktree pointer) is git's, not the repository's
            result.pop(".git", None)
    return result


# ----------------------------------------------------------------------------------------------
# Tarball extraction


def _strip_top(name: str) -> str | None:
    """The member's path without the archive's top folder; None for the top folder itself."""
    parts = PurePosixPath(name).parts
    return "/".join(parts[1:]) or None


def extract_tarball(
    archive_path: Path,
    dest: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> int:
    """Extract GitHub's repository archive into `dest` without its one top folder.

    Refused with PermanentError (nothing is kept half-extracted is the caller's job: the workspace
    is thrown away): absolute paths, `..`, devices and fifos, links leaving `dest`, more than
    `max_files` members or `max_bytes` of content. Returns the number of files extracted.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive_path, "r:*") as archive:
            members = archive.getmembers()
            _validate(members, max_bytes=max_bytes, max_files=max_files)
            count = 0

            def strip_then_check(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
                nonlocal count
                name = _strip_top(member.name)
                if name is None:
                    return None
                changes: dict[str, Any] = {"name": name}
                if member.islnk():  # hard link targets are archive paths, so they lose the top too
                    changes["linkname"] = _strip_top(member.linkname) or ""
                checked = tarfile.data_filter(member.replace(**changes, deep=False), path)
                if checked is not None and not checked.isdir():
                    count += 1
                return checked

            archive.extractall(dest, filter=strip_then_check)
    except tarfile.FilterError as exc:
        raise PermanentError(f"repository archive refused: {exc}") from None
    except tarfile.TarError as exc:
        raise PermanentError(f"repository archive unreadable: {exc}") from None
    return count


def _validate(members: list[tarfile.TarInfo], *, max_bytes: int, max_files: int) -> None:
    tops: set[str] = set()
    total = 0
    files = 0
    for member in members:
        name = member.name
        pure = PurePosixPath(name)
        if name.startswith("/") or pure.is_absolute():
            raise PermanentError(f"repository archive refused: absolute path {name!r}")
        if ".." in pure.parts:
            raise PermanentError(f"repository archive refused: {name!r} climbs out with '..'")
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            raise PermanentError(f"repository archive refused: {name!r} is a device or fifo")
        tops.add(pure.parts[0] if pure.parts else "")
        if not member.isdir():
            files += 1
            total += member.size
    if len(tops) > 1:
        raise PermanentError(
            f"repository archive refused: expected one top folder, found {len(tops)}"
        )
    if files > max_files:
        raise PermanentError(
            f"repository archive refused: {files} files, over the limit of {max_files}"
        )
    if total > max_bytes:
        raise PermanentError(
            f"repository archive refused: {total} bytes of files, over the limit of {max_bytes}"
        )


# ----------------------------------------------------------------------------------------------
# Local git


def _git(root: Path, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **GIT_ENV}
    result = subprocess.run(
        [
            "git", "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null",
            "-c", "core.fsmonitor=false", *args,
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PermanentError(f"git {args[0]} failed in the workspace: {result.stderr.strip()[-500:]}")
    return result.stdout


def init_git(root: Path, *, message: str = "personabot: base") -> None:
    """`git init` and one commit of everything, so the agent starts from a clean status."""
    _git(root, "init", "--quiet", "--initial-branch=main")
    # --force: files the repository commits despite its .gitignore are part of the base too.
    _git(root, "add", "--all", "--force")
    _git(root, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message)


def ignored_untracked(git_dir: Path, root: Path) -> set[str]:
    """Files in `root` that are new and that the repository's .gitignore files ignore.

    Build output and caches an agent leaves behind (`__pycache__/`, `node_modules/`) are not part
    of its change. Asked of a copy of our own git folder kept outside the workspace: the agent may
    have rewritten `root/.git` (its config could run commands), but not that copy.
    """
    listing = _git(
        root, f"--git-dir={git_dir}", f"--work-tree={root}",
        "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
    )
    return {path for path in listing.split("\0") if path}


# ----------------------------------------------------------------------------------------------
# Changes


def _read(path: Path, entry: Entry) -> bytes:
    if entry.mode == "120000":
        return os.fsencode(os.readlink(path))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def changeset(root: Path, before: Mapping[str, Entry], after: Mapping[str, Entry] | None = None) -> ChangeSet:
    """The files that differ between two snapshots; contents are read only for those files."""
    after = snapshot(root) if after is None else after
    files: list[FileChange] = []
    for path, status in diff(before, after):
        if status == "deleted":
            files.append(FileChange(path, "deleted", None, None))
        else:
            entry = after[path]
            files.append(FileChange(path, status, entry.mode, _read(Path(root) / path, entry)))
    return ChangeSet(tuple(files))


def commit_base(root: Path, git_copy: Path, *, message: str = "personabot: base") -> dict[str, Entry]:
    """Commit `root` locally for the agent, keep a copy of that git folder at `git_copy` (outside
    `root`, where the agent cannot reach it), and return the base snapshot."""
    init_git(root, message=message)
    shutil.copytree(root / ".git", git_copy, symlinks=True)
    return snapshot(root)


def agent_changes(
    root: Path, base: Mapping[str, Entry], git_copy: Path, *, max_bytes: int | None = None
) -> ChangeSet:
    """What the agent changed since `commit_base`, leaving out new files .gitignore ignores.

    With `max_bytes`, changes larger than that in total are refused from their sizes alone,
    before any content is read: an agent that wrote gigabytes must not take the worker's memory.
    """
    ignored = ignored_untracked(git_copy, root)
    after = {path: entry for path, entry in snapshot(root).items() if path in base or path not in ignored}
    if max_bytes is not None:
        grown = sorted(
            ((after[path].size, path) for path, status in diff(base, after) if status != "deleted"), reverse=True
        )
        total = sum(size for size, _ in grown)
        if total > max_bytes:
            largest = ", ".join(f"`{path}` ({size} bytes)" for size, path in grown[:3])
            raise PermanentError(
                f"the changes were refused, nothing was pushed: they hold {total} bytes, over "
                f"limits.max_total_bytes ({max_bytes}); largest: {largest}"
            )
    return changeset(root, base, after)


def _force_remove(function, path, _exc) -> None:  # type: ignore[no-untyped-def]
    # The agent may leave read-only folders behind; make them writable and try once more.
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
    except OSError:
        pass
    try:
        function(path)
    except FileNotFoundError:
        pass


class Workspace:
    """A temporary folder holding the repository (`root`) and, beside it, the downloaded archive.

    Removed on exit, success or error. The archive sits outside `root` so the agent never sees it.
    """

    def __init__(self, parent: Path | None = None) -> None:
        self._parent = parent
        self._dir: Path | None = None
        self.base: dict[str, Entry] = {}

    def __enter__(self) -> Workspace:
        self._dir = Path(tempfile.mkdtemp(prefix="personabot-", dir=self._parent))
        (self._dir / "repo").mkdir()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, onerror=_force_remove)
            self._dir = None

    @property
    def path(self) -> Path:
        if self._dir is None:
            raise RuntimeError("Workspace used outside its `with` block")
        return self._dir

    @property
    def root(self) -> Path:
        """The repository folder the agent works in."""
        return self.path / "repo"

    @property
    def archive_path(self) -> Path:
        """Where to download the tarball: inside the workspace, outside the repository."""
        return self.path / "repo.tar.gz"

    def prepare(
        self,
        archive: Path | bytes | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
    ) -> dict[str, Entry]:
        """Extract the archive (default: `archive_path`), commit it locally, record the base."""
        if isinstance(archive, bytes):
            self.archive_path.write_bytes(archive)
            archive = self.archive_path
        archive = archive or self.archive_path
        extract_tarball(archive, self.root, max_bytes=max_bytes, max_files=max_files)
        if archive == self.archive_path:
            self.archive_path.unlink(missing_ok=True)
        self.base = commit_base(self.root, self.git_copy)
        return self.base

    @property
    def git_copy(self) -> Path:
        """Our git folder as `prepare` made it, beside the repository where the agent cannot reach."""
        return self.path / "git"

    def changeset(self, base: Mapping[str, Entry] | None = None, *, max_bytes: int | None = None) -> ChangeSet:
        """What the agent changed, leaving out new files the repository's .gitignore ignores."""
        return agent_changes(self.root, self.base if base is None else base, self.git_copy, max_bytes=max_bytes)
