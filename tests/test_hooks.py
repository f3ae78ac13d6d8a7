"""Fast tier: the post-copy task, run by Copier exactly as a user's `copier copy --trust` does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.rendering import copier_cli


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def no_git_identity(tmp_path: Path) -> dict[str, str]:
    """The environment of a machine where git knows no user (CI runners, containers)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_AUTHOR", "GIT_COMMITTER"))}
    return {**env, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}


def copier_copy(
    src: Path, dst: Path, data: dict[str, Any], env: dict[str, str], *, trust: bool = True
) -> subprocess.CompletedProcess[str]:
    result = copier_cli(src, dst, data, env, trust=trust)
    assert result.returncode == 0, result.stderr
    return result


def test_copy_creates_a_repository_with_everything_committed_as_the_author(
    template_src: Path, tmp_path: Path, no_git_identity: dict[str, str]
) -> None:
    project = tmp_path / "project"

    copier_copy(
        template_src,
        project,
        {"author_name": "Ada Lovelace", "author_email": "ada@example.com"},
        no_git_identity,
    )

    assert git("log", "--format=%an <%ae>|%s", cwd=project) == (
        "Ada Lovelace <ada@example.com>|Initial commit from copier-ai-system"
    )
    assert git("status", "--porcelain", "--ignored", cwd=project) == ""
    assert git("branch", "--show-current", cwd=project) == "main"


def test_copy_into_an_existing_repository_leaves_git_alone(
    template_src: Path, tmp_path: Path, no_git_identity: dict[str, str]
) -> None:
    git("init", "--quiet", cwd=tmp_path)
    project = tmp_path / "services" / "project"

    result = copier_copy(template_src, project, {}, no_git_identity)

    assert "already inside a git repository: left git as it is." in result.stdout
    assert not (project / ".git").exists()
    assert git("rev-list", "--all", cwd=tmp_path) == ""


def test_skip_tasks_leaves_the_directory_without_git(
    template_src: Path, tmp_path: Path, no_git_identity: dict[str, str]
) -> None:
    project = tmp_path / "project"

    copier_copy(template_src, project, {}, no_git_identity, trust=False)

    assert not (project / ".git").exists()
