"""Slow tier: the runtime passes mypy --strict with its own configuration (src, tests and
benchmarks), as it must before it is copied into projects (their mypy follows calls into it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.rendering import REPO_ROOT

pytestmark = pytest.mark.slow
MYPY = str(Path(sys.executable).parent / "mypy")


def test_the_runtime_is_strictly_typed() -> None:
    result = subprocess.run(
        [MYPY], cwd=REPO_ROOT / "template" / "runtime", capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.stdout.startswith("Success: no issues found in ")
