"""Fast tier: copying needs no `--trust` and runs nothing; `make init`'s git step
(scripts/init_git.py, which it runs after `uv sync`) puts the copy under git, lock included.

The slow tier runs the real `make init` (tests/test_generated_project.py) and the update tier
updates without `--trust` (tests/test_update.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rendering import REPO_ROOT, copier_cli, project_files


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
    src: Path, dst: Path, data: dict[str, Any], env: dict[str, str], *flags: str
) -> subprocess.CompletedProcess[str]:
    result = copier_cli(src, dst, data, env, flags=flags)
    assert result.returncode == 0, result.stderr
    return result


def init_git(project: Path, env: dict[str, str]) -> str:
    """`make init`'s git step, with the interpreter make finds as python3."""
    return subprocess.run(
        [sys.executable, "scripts/init_git.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


LOCK = 'version = 1\nrequires-python = ">=3.12"\n'  # what `uv sync` wrote before the git step


def test_copy_without_trust_runs_nothing_and_skip_tasks_changes_nothing(
    template_src: Path, tmp_path: Path, no_git_identity: dict[str, str]
) -> None:
    plain, skipped = tmp_path / "plain", tmp_path / "skipped"

    copier_copy(template_src, plain, {}, no_git_identity)  # no --trust: Copier would refuse
    copier_copy(template_src, skipped, {}, no_git_identity, "--skip-tasks")

    assert not (plain / ".git").exists()  # nothing ran: git is make init's
    files = project_files(plain)
    assert files == project_files(skipped)
    assert all((plain / name).read_bytes() == (skipped / name).read_bytes() for name in files)


def test_the_git_step_commits_everything_with_the_lock_as_the_author(
    template_src: Path, tmp_path: Path, no_git_identity: dict[str, str]
) -> None:
    project = tmp_path / "project"
    answers = {"author_name": "Ada Lovelace", "author_email": "ada@example.com"}
    copier_copy(template_src, project, answers, no_git_identity)
    (project / "uv.lock").write_text(LOCK, encoding="utf-8")

    said = init_git(project, no_git_identity)

    assert said == "git: initialised a git repository with the first commit.\n"
    assert git("log", "--format=%an <%ae>|%s", cwd=project) == (
        "Ada Lovelace <ada@example.com>|Initial commit from copier-ai-system"
    )
    assert "uv.lock" in git("show", "--name-only", "--format=", "HEAD", cwd=project).splitlines()
    assert git("status", "--porcelain", "--ignored", cwd=project) == ""
    assert git("branch", "--show-current", cwd=project) == "main"


def test_the_git_step_inside_an_existing_repository_leaves_git_alone(
    template_src: Path, tmp_path: Path, no_git_identity: dict[str, str]
) -> None:
    git("init", "--quiet", cwd=tmp_path)
    project = tmp_path / "services" / "project"
    copier_copy(template_src, project, {}, no_git_identity)

    said = init_git(project, no_git_identity)

    assert said == "git: already inside a git repository: left git as it is.\n"
    assert not (project / ".git").exists()
    assert git("rev-list", "--all", cwd=tmp_path) == ""


def test_only_updates_across_a_migration_need_trust_and_the_readme_names_them() -> None:
    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text(encoding="utf-8"))
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

    assert "_tasks" not in config  # a task would make every copy and update ask for --trust
    versions = [migration["version"] for migration in config.get("_migrations", [])]
    assert versions == ["0.2.0"]
    (paragraph,) = [part for part in readme.split("\n\n") if part.startswith("Updates need no")]
    for version in versions:
        assert re.search(rf"\*\*{re.escape(version)}\*\*", paragraph), version
    assert "make update-template TRUST=1" in paragraph
