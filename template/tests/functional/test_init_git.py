"""scripts/init_git.py against a real git: the state `make init` creates (after `uv sync`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "init_git.py"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def no_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine where git knows no user: a fresh HOME and no system config."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.delenv(f"GIT_{role}_NAME", raising=False)
        monkeypatch.delenv(f"GIT_{role}_EMAIL", raising=False)


def run_script(project: Path) -> str:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(project)], capture_output=True, text=True, check=True
    ).stdout


def test_creates_a_repository_with_everything_committed_as_the_author(
    tmp_path: Path, no_git_identity: None
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nauthors = [{ name = "Grace Hopper", email = "grace@example.com" }]\n'
    )
    (project / "README.md").write_text("hello\n")

    output = run_script(project)

    assert "first commit" in output
    assert git("log", "--format=%an <%ae>|%s", cwd=project) == (
        "Grace Hopper <grace@example.com>|Initial commit from copier-ai-system"
    )
    assert git("status", "--porcelain", cwd=project) == ""
    assert git("ls-files", cwd=project).split() == ["README.md", "pyproject.toml"]


def test_leaves_an_existing_repository_alone(tmp_path: Path, no_git_identity: None) -> None:
    git("init", "--quiet", cwd=tmp_path)
    project = tmp_path / "sub"
    project.mkdir()

    output = run_script(project)

    assert "already inside a git repository" in output
    assert not (project / ".git").exists()
    assert git("rev-list", "--all", cwd=tmp_path) == ""


def test_a_directory_the_enclosing_repository_ignores_gets_its_own(
    tmp_path: Path, no_git_identity: None
) -> None:
    git("init", "--quiet", cwd=tmp_path)
    (tmp_path / ".gitignore").write_text("build/\n")
    project = tmp_path / "build" / "project"
    project.mkdir(parents=True)
    (project / "README.md").write_text("hello\n")

    output = run_script(project)

    assert "first commit" in output
    assert git("rev-parse", "--show-toplevel", cwd=project) == str(project.resolve())
    assert git("ls-files", cwd=project) == "README.md"
