"""Fast tier: hooks/migrate.py, the migration steps Copier runs inside a project it updates.

Each test sets up the state Copier leaves at the `after` stage of an update: the user's last
commit in git, and in the working tree the new template version's files (a moved file already
deleted at its old path and rendered fresh at its new one).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.rendering import REPO_ROOT

OLD = "tests/functional/test_cli.py"
NEW = "tests/functional/test_command_line.py"
USER_CONTENT = b"template line\nthe user's own line\n"
TEMPLATE_CONTENT = b"template line\n"


def load_migrate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migrate", REPO_ROOT / "hooks" / "migrate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


migrate = load_migrate()


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout


def write(project: Path, relative: str, content: bytes) -> None:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def committed_project(root: Path, files: dict[str, bytes]) -> Path:
    """A git repository whose last commit holds exactly these files."""
    project = root / "project"
    project.mkdir()
    git(project, "init", "--quiet")
    for relative, content in files.items():
        write(project, relative, content)
    git(project, "add", "--all")
    git(
        project,
        "-c",
        "user.name=Tests",
        "-c",
        "user.email=tests@example.com",
        "commit",
        "--quiet",
        "--allow-empty",
        "-m",
        "user's last commit",
    )
    return project


def tree(project: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.relative_to(project).as_posix(): (path.read_bytes(), path.stat().st_mode)
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def after_update_state(project: Path) -> None:
    """What Copier leaves before the `after` stage: old path removed, new one fresh."""
    (project / OLD).unlink()
    write(project, NEW, TEMPLATE_CONTENT)


def test_move_carries_the_committed_user_file_to_the_new_path(tmp_path: Path) -> None:
    project = committed_project(tmp_path, {OLD: USER_CONTENT})
    after_update_state(project)

    line = migrate.move(project, OLD, NEW)

    assert line == f"moved your {OLD} to {NEW} (its content as in your last commit)"
    assert (project / NEW).read_bytes() == USER_CONTENT
    assert not (project / OLD).exists()


def test_move_a_second_time_changes_nothing(tmp_path: Path) -> None:
    project = committed_project(tmp_path, {OLD: USER_CONTENT})
    after_update_state(project)
    migrate.move(project, OLD, NEW)
    before = tree(project)

    line = migrate.move(project, OLD, NEW)

    assert line == f"{OLD} is already at {NEW}: nothing to do"
    assert tree(project) == before


def test_move_keeps_the_executable_bit(tmp_path: Path) -> None:
    project = committed_project(tmp_path, {})
    write(project, OLD, USER_CONTENT)
    (project / OLD).chmod(0o755)
    git(project, "add", OLD)
    git(project, "-c", "user.name=T", "-c", "user.email=t@e.com", "commit", "-qm", "exe")
    after_update_state(project)

    migrate.move(project, OLD, NEW)

    assert (project / NEW).stat().st_mode & 0o777 == 0o755


def test_move_removes_the_old_file_only_when_it_is_what_was_carried_over(
    tmp_path: Path,
) -> None:
    project = committed_project(tmp_path, {OLD: USER_CONTENT})
    write(project, NEW, TEMPLATE_CONTENT)  # the old path is still there, unchanged

    migrate.move(project, OLD, NEW)

    assert not (project / OLD).exists()
    assert (project / NEW).read_bytes() == USER_CONTENT


def test_move_leaves_an_old_file_with_uncommitted_changes(tmp_path: Path) -> None:
    project = committed_project(tmp_path, {OLD: USER_CONTENT})
    write(project, OLD, b"edited after the last commit\n")
    write(project, NEW, TEMPLATE_CONTENT)

    migrate.move(project, OLD, NEW)

    assert (project / OLD).read_bytes() == b"edited after the last commit\n"
    assert (project / NEW).read_bytes() == USER_CONTENT


def test_move_tolerates_a_file_the_user_deleted(tmp_path: Path) -> None:
    project = committed_project(tmp_path, {"README.md": b"readme\n"})
    write(project, NEW, TEMPLATE_CONTENT)
    before = tree(project)

    line = migrate.move(project, OLD, NEW)

    assert line == f"nothing to move: {OLD} is not in the project (deleted, or never created)"
    assert tree(project) == before


def test_move_never_overwrites_a_file_the_user_already_had_at_the_new_path(
    tmp_path: Path,
) -> None:
    project = committed_project(tmp_path, {OLD: USER_CONTENT, NEW: b"the user's own file\n"})
    (project / OLD).unlink()  # Copier deleted the old path: the template no longer has it

    line = migrate.move(project, OLD, NEW)

    assert line == (
        f"{NEW} was already in your project, so it was kept and {OLD} was restored: "
        "merge the two by hand"
    )
    assert (project / NEW).read_bytes() == b"the user's own file\n"
    assert (project / OLD).read_bytes() == USER_CONTENT
    assert migrate.move(project, OLD, NEW) == (
        f"{NEW} was already in your project: left {OLD} and {NEW} as they were"
    )


def test_move_outside_git_renames_the_file_once(tmp_path: Path) -> None:
    project = tmp_path / "not-a-repository"
    write(project, OLD, USER_CONTENT)

    first = migrate.move(project, OLD, NEW)
    second = migrate.move(project, OLD, NEW)

    assert first == f"moved {OLD} to {NEW}"
    assert second.startswith("nothing to move")
    assert tree(project) == {NEW: (USER_CONTENT, (project / NEW).stat().st_mode)}


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../outside.py", "docs/"])
def test_move_refuses_paths_outside_the_project(tmp_path: Path, path: str) -> None:
    with pytest.raises(migrate.MigrationError, match="is not a file path relative"):
        migrate.move(tmp_path, path, NEW)


def test_run_refuses_a_step_wired_in_the_wrong_stage(tmp_path: Path) -> None:
    with pytest.raises(migrate.MigrationError) as raised:
        migrate.run(["move", OLD, NEW], tmp_path, {"STAGE": "before"})

    assert str(raised.value) == (
        "the move step runs in the 'after' stage, not 'before': "
        "wire it in copier.yml with when: \"{{ _stage == 'after' }}\""
    )


@pytest.mark.parametrize("arguments", [[], ["copy", OLD, NEW], ["move", OLD]])
def test_run_refuses_unknown_steps_and_missing_arguments(
    tmp_path: Path, arguments: list[str]
) -> None:
    with pytest.raises(migrate.MigrationError, match=r"^usage: migrate.py move OLD NEW"):
        migrate.run(arguments, tmp_path, {})


def run_script(project: Path, *arguments: str, stage: str) -> subprocess.CompletedProcess[str]:
    """The script as Copier runs it: the project as cwd, Copier's variables in the env."""
    env = {**os.environ, "STAGE": stage, "VERSION_PEP440_CURRENT": "0.2.0"}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "hooks" / "migrate.py"), *arguments],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_script_prints_one_line_naming_the_version(tmp_path: Path) -> None:
    project = committed_project(tmp_path, {OLD: USER_CONTENT})
    after_update_state(project)

    result = run_script(project, "move", OLD, NEW, stage="after")

    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == f"migration 0.2.0: moved your {OLD} to {NEW} (its content as in your last commit)\n"
    )


def test_script_misuse_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    result = run_script(tmp_path, "move", OLD, NEW, stage="before")

    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("migration 0.2.0: error: the move step runs in the 'after'")


def test_generated_makefile_runs_at_least_the_copier_the_template_requires() -> None:
    minimum = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())["_min_copier_version"]
    makefile = (REPO_ROOT / "template" / "Makefile.jinja").read_text()

    assert f'COPIER ?= $(UV) tool run --from "copier>={minimum}" copier\n' in makefile
