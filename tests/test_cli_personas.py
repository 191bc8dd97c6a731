"""`personabot personas list|check|render`, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from personabot.cli import main
from tests.conftest import FIXTURES, PROJECT

EGREGORA = FIXTURES / "egregora-personas" / "personas"


@pytest.fixture(autouse=True)
def no_operator_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PERSONABOT_PERSONAS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_list_shows_builtin_and_extra_folders(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["personas", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "EMOJI", "MODE", "DEDUPE", "PLAN", "APPROVAL", "ENABLED", "SOURCE"]
    assert out[1].split() == ["builder", "🏗️", "AUTO_CREATE_PR", "yes", "no", "yes", "builtin/builder.md"]
    assert main(["personas", "list", "--dir", str(EGREGORA)]) == 1  # weaver is broken
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 + 22
    assert f"{EGREGORA}/builder/prompt.md" in captured.out  # the repository's builder replaced ours
    assert "weaver/prompt.md:4: automation_mode: 'AUTO_COMMIT'" in captured.err


def test_check_reports_one_line_per_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["personas", "check"]) == 0
    assert "ok: 1 personas load and render" in capsys.readouterr().out
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "good.md").write_text("---\nid: good\n---\nfine\n")
    (folder / "typo.md").write_text("---\nid: typo\n---\n{{ repo_nmae }}\n")
    (folder / "bad.md").write_text("---\nid: bad\ndedupe: 'no'\n---\n")
    (folder / "broken.md").write_text("---\nid: broken\n---\n{% for %}\n")
    assert main(["personas", "check", "--dir", str(folder)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{folder}/bad.md:3: dedupe: must be true or false, not 'no'",
        f"{folder}/broken.md:4: template syntax error: Expected an expression, got 'end of statement block'"
        " (rendering for a label trigger)",
        f"{folder}/typo.md:4: undefined variable: 'repo_nmae' is undefined (rendering for a label trigger)",
    ]


def test_operator_folder_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "operator"
    folder.mkdir()
    (folder / "helper.md").write_text("---\nid: helper\nemoji: 🧰\nautomation_mode: MANUAL\n---\nHi\n")
    monkeypatch.setenv("PERSONABOT_PERSONAS_DIR", str(folder))
    assert main(["personas", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[2] == ["helper", "🧰", "MANUAL", "yes", "no", "yes", f"{folder}/helper.md"]


def test_render_prompt_title_and_workspace_journal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["personas", "render", "builder", "--repo", "OWNER/NAME", "--title"]) == 0
    assert capsys.readouterr().out == "🏗️ feat/builder: architecture for NAME\n"
    journal = tmp_path / "ws" / ".personabot" / "journals" / "builder"
    journal.mkdir(parents=True)
    (journal / "2026-12-01-1000-constraints.md").write_text("Added CHECK constraints to runs.\n")
    assert main(["personas", "render", "builder", "--workspace", str(tmp_path / "ws"), "--trigger", "push"]) == 0
    prompt = capsys.readouterr().out
    assert "Added CHECK constraints to runs." in prompt and "{{" not in prompt


def test_render_unknown_persona_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["personas", "render", "nobody"]) == 1
    assert capsys.readouterr().err == "error: no persona 'nobody'; known: builder\n"


def test_console_script_runs() -> None:
    script = Path(sys.executable).with_name("personabot")
    result = subprocess.run([str(script), "personas", "render", "builder", "--title", "--repo", "a/b"],
                            capture_output=True, text=True, check=True)
    assert result.stdout == "🏗️ feat/builder: architecture for b\n"


def test_builtin_personas_ship_inside_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(PROJECT)],
        check=True, capture_output=True,
    )
    [wheel] = tmp_path.glob("personabot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (PROJECT / "personas").rglob("*.md"):
        assert f"personabot/personas/{path.relative_to(PROJECT / 'personas').as_posix()}" in names
