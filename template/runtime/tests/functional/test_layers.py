"""The runtime's layering (DESIGN.md section 2, [tool.importlinter] in pyproject.toml) holds:
import-linter checks every contract, and a contract that is broken is reported."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import airuntime

RUNTIME = Path(airuntime.__file__).parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_every_layering_contract_is_kept() -> None:
    result = lint_imports(RUNTIME)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_import_against_the_layers_breaks_the_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "runtime"
    shutil.copytree(RUNTIME / "src", copy / "src")
    shutil.copy(RUNTIME / "pyproject.toml", copy / "pyproject.toml")
    types_module = copy / "src" / "airuntime" / "types.py"
    types_module.write_text(
        types_module.read_text(encoding="utf-8")
        + "\n\ndef _broken() -> None:\n    from airuntime.resilience import client  # noqa\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", str(copy / "src"))

    result = lint_imports(copy)

    assert result.returncode == 1
    assert "airuntime.types -> airuntime.resilience.client" in result.stdout
