"""`personabot serve` as a user runs it: a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("WEBHOOK_SECRET", "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH")}
    return subprocess.run(
        [sys.executable, "-m", "personabot.cli", "serve", *args],
        cwd=tmp_path,  # no .env here, so only the environment counts
        env=clean | env | {"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("secret", [None, ""])
def test_serve_without_webhook_secret_exits_2_and_says_so(tmp_path: Path, secret: str | None) -> None:
    env = {"APP_ID": "1", "PRIVATE_KEY": "unused"} | ({} if secret is None else {"WEBHOOK_SECRET": secret})
    result = run_serve(tmp_path, "--workers", "0", "--port", "0", **env)
    assert result.returncode == 2
    assert "WEBHOOK_SECRET" in result.stderr
    assert "settings.webhook_secret missing" in result.stderr
    assert not (tmp_path / "p.db").exists()  # refused before touching the database


def test_serve_rejects_negative_workers(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--workers", "-1", WEBHOOK_SECRET="s")
    assert result.returncode == 2
    assert "--workers" in result.stderr and "must be 0 or more" in result.stderr


def test_setup_mode_is_refused_in_production(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--port", "0", PERSONABOT_ENV="production")
    assert result.returncode == 2
    assert "setup mode is disabled in production" in result.stderr
    assert not (tmp_path / "p.db").exists()
