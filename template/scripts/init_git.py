"""Put a freshly generated project under git with a first commit.

Run by `make init` after `uv sync`, so the first commit holds uv.lock too: the tree is clean
and the first push is green in CI (which installs the lock with `uv sync --frozen`). The
template has no post-copy task, so `copier copy` needs no `--trust`. `copier update` needs the
copied state committed, which is why this makes a commit and not just `git init`.

Standard library only, no network, and Python 3.9+ compatible: it runs with the system's
python3, before anything else of the project's is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

INITIAL_COMMIT_MESSAGE = "Initial commit from copier-ai-system"
FALLBACK_IDENTITY = ("copier-ai-system", "copier-ai-system@localhost")


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed git arguments, no shell
        ["git", *args],  # noqa: S607 - git is looked up on PATH on purpose
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def _inside_git_repository(path: Path) -> bool:
    """Whether the project is part of an enclosing repository's work tree.

    A directory that repository ignores (a build/ or tmp/ folder) is not part of it: the project
    gets a repository of its own there, as it would anywhere else.
    """
    result = _git(["rev-parse", "--is-inside-work-tree"], path)
    if result.returncode != 0 or result.stdout.strip() != "true":
        return False
    if _git(["rev-parse", "--show-toplevel"], path).stdout.strip() == str(path):
        return True  # the project is the top of a repository already
    return _git(["check-ignore", "--quiet", "."], path).returncode != 0


def _configured(key: str, path: Path) -> bool:
    return bool(_git(["config", key], path).stdout.strip())


def project_author(project: Path) -> tuple[str, str]:
    """The first author in pyproject.toml, read without tomllib (absent before 3.11)."""
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return FALLBACK_IDENTITY
    match = re.search(
        r'authors\s*=\s*\[\s*\{\s*name\s*=\s*"([^"]*)"\s*,\s*email\s*=\s*"([^"]*)"',
        pyproject.read_text(encoding="utf-8"),
    )
    return (match.group(1), match.group(2)) if match else FALLBACK_IDENTITY


def initialise_repository(project: Path) -> str:
    """Create the repository and first commit; return one line saying what happened."""
    if shutil.which("git") is None:
        return "git is not installed: skipped `git init`; run `make init` once git is available."
    if _inside_git_repository(project):
        return "already inside a git repository: left git as it is."

    init = ["init", "--quiet"]
    if not _configured("init.defaultBranch", project):
        init.append("--initial-branch=main")
    for step in (init, ["add", "--all"]):
        result = _git(step, project)
        if result.returncode != 0:
            return f"git {step[0]} failed ({result.stderr.strip()}): fix it and run `make init`."

    # Commit as the configured user when there is one; otherwise as the project's author,
    # so a machine without a git identity (CI, containers) still gets its first commit.
    identity: list[str] = []
    if not (_configured("user.name", project) and _configured("user.email", project)):
        name, email = project_author(project)
        identity = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
    commit = _git(
        [*identity, "commit", "--quiet", "--no-verify", "--message", INITIAL_COMMIT_MESSAGE],
        project,
    )
    if commit.returncode != 0:
        return f"git commit failed ({commit.stderr.strip()}): commit the files yourself."
    return "initialised a git repository with the first commit."


def main() -> int:
    project = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    print(f"git: {initialise_repository(project.resolve())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
