"""Shared fixtures for the template's own tests.

Renders come from a snapshot of the template's files (tracked and new, as git sees them), so
tests see uncommitted work and no render pays for a git clone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.rendering import REPO_ROOT, snapshot_template


@pytest.fixture(scope="session")
def template_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain-directory copy of the template as it is in the working tree."""
    return snapshot_template(tmp_path_factory.mktemp("template") / "src")


@pytest.fixture(scope="session")
def tool_env() -> dict[str, str]:
    """Environment for make/uv/git in generated projects: never download a Python, and let uv
    see every Python that pyenv has installed."""
    env = dict(os.environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.pop("VIRTUAL_ENV", None)  # the template's own venv must not leak into a project
    env.setdefault("GIT_AUTHOR_NAME", "Template Tests")
    env.setdefault("GIT_AUTHOR_EMAIL", "template-tests@example.com")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    if "PYENV_VERSION" not in env and shutil.which("pyenv"):
        versions = subprocess.run(
            ["pyenv", "versions", "--bare", "--skip-aliases"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        wanted = [v for v in versions if v.startswith("3.") and v.count(".") == 2]
        current = subprocess.run(
            ["pyenv", "version-name"], capture_output=True, text=True, check=False
        ).stdout.strip()
        ordered = [current, *[v for v in wanted if v != current]] if current in wanted else wanted
        if ordered:
            env["PYENV_VERSION"] = ":".join(ordered)
    return env


__all__ = ["REPO_ROOT"]
