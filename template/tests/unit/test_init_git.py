"""The pure part of scripts/init_git.py: reading the project's author for the first commit."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).parents[2] / "scripts" / "init_git.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("init_git", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_author_is_read_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nauthors = [{ name = "Ada Lovelace", email = "ada@example.com" }]\n'
    )

    assert load_script().project_author(tmp_path) == ("Ada Lovelace", "ada@example.com")


def test_author_falls_back_when_pyproject_has_none(tmp_path: Path) -> None:
    module = load_script()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')

    assert module.project_author(tmp_path) == module.FALLBACK_IDENTITY
    assert module.project_author(tmp_path / "missing") == module.FALLBACK_IDENTITY
