"""Workspace: safe extraction of real tarballs, local git, snapshots and change sets."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from personabot.errors import PermanentError
from personabot.workspace import Workspace, extract_tarball, init_git, snapshot

TOP = "octo-widgets-abc1234"


def add_file(tar: tarfile.TarFile, name: str, data: bytes = b"", mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def github_like_archive(path: Path, extra=None) -> Path:
    """Like GitHub's: a pax global header with the commit id and one top folder."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "abc1234def"}) as tar:
        add_dir(tar, f"{TOP}/")
        add_file(tar, f"{TOP}/README.md", b"# Widgets\n")
        add_dir(tar, f"{TOP}/src")
        add_file(tar, f"{TOP}/src/app.py", b"print('hi')\n")
        add_file(tar, f"{TOP}/bin/run", b"#!/bin/sh\necho run\n", mode=0o755)
        add_symlink(tar, f"{TOP}/docs", "src")
        add_file(tar, f"{TOP}/.gitignore", b"*.log\n")
        add_file(tar, f"{TOP}/kept.log", b"committed despite the ignore\n")
        if extra:
            extra(tar)
    return path


def test_extract_strips_the_top_folder_and_keeps_modes(tmp_path: Path) -> None:
    archive = github_like_archive(tmp_path / "a.tgz")
    dest = tmp_path / "out"
    count = extract_tarball(archive, dest)
    assert count == 6  # files and links; folders are not counted
    assert (dest / "README.md").read_text() == "# Widgets\n"
    assert (dest / "src/app.py").exists() and not (dest / TOP).exists()
    assert os.access(dest / "bin/run", os.X_OK)
    assert not os.access(dest / "README.md", os.X_OK)
    assert os.readlink(dest / "docs") == "src"


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda tar: add_file(tar, f"{TOP}/../evil", b"x"), "'..'"),
        (lambda tar: add_file(tar, "/etc/evil", b"x"), "absolute path"),
        (lambda tar: add_symlink(tar, f"{TOP}/passwd", "/etc/passwd"), "link to an absolute path"),
        (lambda tar: add_symlink(tar, f"{TOP}/up", "../../outside"), "outside the destination"),
        (lambda tar: add_file(tar, "other-top/x", b"x"), "one top folder"),
    ],
    ids=["dotdot", "absolute", "symlink-absolute", "symlink-escapes", "two-tops"],
)
def test_malicious_members_are_refused(tmp_path: Path, build, reason: str) -> None:
    archive = github_like_archive(tmp_path / "bad.tgz", extra=build)
    dest = tmp_path / "out"
    with pytest.raises(PermanentError, match=reason):
        extract_tarball(archive, dest)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "outside").exists()


def test_device_member_is_refused(tmp_path: Path) -> None:
    def device(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(f"{TOP}/null")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tar.addfile(info)

    with pytest.raises(PermanentError, match="device"):
        extract_tarball(github_like_archive(tmp_path / "dev.tgz", extra=device), tmp_path / "out")


def test_size_and_count_caps(tmp_path: Path) -> None:
    big = github_like_archive(
        tmp_path / "big.tgz", extra=lambda tar: add_file(tar, f"{TOP}/blob.bin", b"\0" * 200_000)
    )
    with pytest.raises(PermanentError, match="over the limit of 100000"):
        extract_tarball(big, tmp_path / "o1", max_bytes=100_000)
    with pytest.raises(PermanentError, match="7 files, over the limit of 5"):
        extract_tarball(big, tmp_path / "o2", max_files=5)
    assert not (tmp_path / "o1" / "blob.bin").exists()


def test_garbage_archive_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"this is not a tarball")
    with pytest.raises(PermanentError, match="unreadable"):
        extract_tarball(junk, tmp_path / "out")


def test_snapshot_records_modes_symlinks_and_skips_git(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: x")
    (tmp_path / "sub" / ".git").mkdir(parents=True)  # only the top-level .git is git's
    (tmp_path / "sub" / ".git" / "config").write_text("c")
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o755)
    os.symlink("/etc/passwd", tmp_path / "pw")
    os.symlink("sub", tmp_path / "linkdir")
    os.mkfifo(tmp_path / "pipe")

    snap = snapshot(tmp_path)
    assert set(snap) == {"a.txt", "run.sh", "pw", "linkdir", "sub/.git/config"}
    assert snap["a.txt"].mode == "100644" and snap["a.txt"].size == 5
    assert snap["run.sh"].mode == "100755"
    assert snap["pw"].mode == "120000" and snap["pw"].size == len("/etc/passwd")
    assert snap["linkdir"].mode == "120000"
    assert snap["a.txt"].digest != snapshot_of_text(tmp_path, "hellO")


def snapshot_of_text(tmp_path: Path, text: str) -> str:
    other = tmp_path.parent / (tmp_path.name + "-other")
    other.mkdir()
    (other / "a.txt").write_text(text)
    return snapshot(other)["a.txt"].digest


def test_init_git_commits_everything_without_global_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    extract_tarball(github_like_archive(tmp_path / "a.tgz"), tmp_path / "repo")
    init_git(tmp_path / "repo")
    run = lambda *a: subprocess.run(  # noqa: E731
        ["git", *a], cwd=tmp_path / "repo", capture_output=True, text=True, check=True
    ).stdout
    assert run("status", "--porcelain") == ""
    tracked = run("ls-files").split()
    assert "kept.log" in tracked and "bin/run" in tracked  # ignored-but-committed files too
    assert run("log", "--format=%an <%ae>") == "personabot <personabot@localhost>\n"
    assert run("remote") == ""


def test_workspace_changeset_and_cleanup(tmp_path: Path) -> None:
    archive = github_like_archive(tmp_path / "a.tgz")
    with Workspace(parent=tmp_path) as ws:
        ws.prepare(archive)
        root = ws.root
        assert ws.changeset().is_empty
        assert not ws.archive_path.is_relative_to(root)
        (root / "README.md").write_text("# Widgets v2\n")
        (root / "src/new.py").write_bytes(b"\x00\x01binary")
        (root / "src/app.py").unlink()
        (root / "README.md").chmod(0o644)
        (root / "bin/run").chmod(0o644)  # lost its executable bit: a modification
        os.symlink("/etc/passwd", root / "pw")
        (root / ".git" / "config").write_text("[core]\n")  # git's own folder is not content
        changes = ws.changeset()
        folder = ws.path
    by_path = {c.path: c for c in changes.files}
    assert set(by_path) == {"README.md", "src/new.py", "src/app.py", "bin/run", "pw"}
    assert by_path["README.md"].status == "modified"
    assert by_path["README.md"].content == b"# Widgets v2\n"
    assert by_path["src/new.py"].status == "added" and by_path["src/new.py"].is_binary
    assert by_path["src/app.py"].status == "deleted" and by_path["src/app.py"].content is None
    assert by_path["bin/run"].mode == "100644"
    assert by_path["pw"].mode == "120000" and by_path["pw"].content == b"/etc/passwd"
    assert not folder.exists()


def test_workspace_is_removed_on_error_even_with_read_only_folders(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="agent crashed"):
        with Workspace(parent=tmp_path) as ws:
            ws.prepare(github_like_archive(tmp_path / "a.tgz"))
            locked = ws.root / "locked"
            locked.mkdir()
            (locked / "f").write_text("x")
            locked.chmod(0o500)
            folder = ws.path
            raise RuntimeError("agent crashed")
    assert not folder.exists()


def test_prepare_accepts_bytes(tmp_path: Path) -> None:
    data = github_like_archive(tmp_path / "a.tgz").read_bytes()
    with Workspace(parent=tmp_path) as ws:
        base = ws.prepare(data)
        assert "src/app.py" in base and base["docs"].mode == "120000"
        assert not ws.archive_path.exists()


def test_new_files_the_repository_ignores_are_not_changes(tmp_path: Path) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in {"top/.gitignore": b"__pycache__/\nnode_modules/\n*.log\n", "top/app.py": b"x = 1\n",
                           "top/committed.log": b"kept although ignored\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with Workspace(parent=tmp_path) as ws:
        ws.prepare(buffer.getvalue())
        root = ws.root
        (root / "__pycache__").mkdir()
        (root / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0junk")
        (root / "node_modules" / "x").mkdir(parents=True)
        (root / "node_modules" / "x" / "i.js").write_text("module.exports = 1\n")
        (root / "debug.log").write_text("noise\n")
        (root / "committed.log").write_text("changed on purpose\n")
        (root / "app.py").write_text("x = 2\n")
        (root / "new.py").write_text("y = 1\n")
        # an agent rewriting our git folder cannot change what counts as ignored
        (root / ".git" / "info").mkdir(exist_ok=True)
        (root / ".git" / "info" / "exclude").write_text("new.py\n")
        changes = ws.changeset()
    assert {(c.path, c.status) for c in changes.files} == {
        ("app.py", "modified"), ("new.py", "added"), ("committed.log", "modified"),
    }
