"""`personabot db|runs|deliveries|worker`, run as a user would (settings from the environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from store_support import add_delivery, database_url, make_spec  # noqa: F401

from personabot.cli import main
from personabot.store import Store


@pytest.fixture
def env_db(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def test_db_upgrade_current_and_downgrade(env_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current"]) == 0
    assert "current: none" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert f"database at revision {Store.head_revision()}" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "downgrade", "0001"]) == 0
    assert "revision 0001" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert "needs `personabot db upgrade`" in capsys.readouterr().out
    assert main(["db", "downgrade", "base"]) == 0
    assert "base (empty)" in capsys.readouterr().out


def test_runs_and_deliveries_listings(env_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(env_db) as store:
        store.upgrade()
        store.record_delivery("gh-1", "star", "created", 1, "octo/repo", {}, "ignored", "not acted on")
        run_id, _ = store.enqueue(add_delivery(store, "gh-2"), make_spec("octo/repo#3:builder"))
        store.enqueue(add_delivery(store, "gh-3"), make_spec("octo/repo#3:builder"))

    assert main(["runs", "--json"]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["id"], run["status"], run["concurrency_key"], run["triggers_coalesced"]) == (
        run_id,
        "queued",
        "octo/repo#3:builder",
        1,
    )
    assert main(["runs"]) == 0
    table = capsys.readouterr().out
    assert "octo/repo#3:builder" in table and "push (+1)" in table
    assert main(["runs", "--status", "failed"]) == 0
    assert capsys.readouterr().out.strip() == "no runs"

    assert main(["deliveries", "--json"]) == 0
    listed = {d["id"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed["gh-1"]["status"] == "ignored" and listed["gh-1"]["reason"] == "not acted on"
    assert set(listed) == {"gh-1", "gh-2", "gh-3"}
    assert main(["deliveries"]) == 0
    assert "star.created" in capsys.readouterr().out


def test_bad_input_is_a_clear_error(env_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["runs", "--status", "done"]) == 2
    assert "--status 'done'" in capsys.readouterr().err
    assert main(["worker"]) == 2
    assert "GitHub App credentials missing: set APP_ID and PRIVATE_KEY" in capsys.readouterr().err


def test_an_unsupported_database_url_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/pb")
    assert main(["runs"]) == 2
    assert "DATABASE_URL: unsupported database 'mysql'" in capsys.readouterr().err


def test_the_command_runs_as_a_process(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "personabot.cli", "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli.db").exists()
