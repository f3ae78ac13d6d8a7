"""Fast tier: the template repository keeps its own promises."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from tests.rendering import REPO_ROOT

RUFF = str(Path(sys.executable).parent / "ruff")


def test_own_python_is_linted_and_formatted() -> None:
    for command in ([RUFF, "check", "."], [RUFF, "format", "--check", "."]):
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_runtime_is_linted_and_formatted_with_its_own_configuration() -> None:
    runtime = REPO_ROOT / "template" / "runtime"
    for command in ([RUFF, "check", "."], [RUFF, "format", "--check", "."]):
        result = subprocess.run(command, cwd=runtime, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_runtime_complexity_gate_names_a_function_past_it(tmp_path: Path) -> None:
    """ruff's C901 with the runtime's own limit (15): one branch too many fails, naming it."""
    shutil.copy(REPO_ROOT / "template" / "runtime" / "pyproject.toml", tmp_path)
    branches = "".join(f"    if value == {n}:\n        return {n}\n" for n in range(15))
    source = f"def tangle(value: int) -> int:\n{branches}    return -1\n"
    (tmp_path / "tangle.py").write_text(source)

    result = subprocess.run(
        [RUFF, "check", "--select", "C901", "tangle.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "C901 `tangle` is too complex (16 > 15)" in result.stdout


def test_readme_documents_every_question() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())

    for question in (key for key in config if not key.startswith("_")):
        assert f"| `{question}` |" in readme, f"README's question table misses {question}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci/run").read_text()

    assert re.search(r"^make test\b", readme, flags=re.MULTILINE)
    assert re.search(r"^exec make test$", ci, flags=re.MULTILINE)


def test_changelog_follows_keep_a_changelog() -> None:
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()

    assert changelog.startswith("# Changelog\n")
    assert "## [Unreleased]" in changelog
    versions = re.findall(r"^## (.*)$", changelog, flags=re.MULTILINE)
    released = re.compile(r"^\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}$")
    assert versions[0] == "[Unreleased]"
    assert all(released.match(version) for version in versions[1:]), versions
    headings = re.findall(r"^### (\w+)$", changelog, flags=re.MULTILINE)
    kinds = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security", "Upgrading"}
    assert set(headings) <= kinds


def test_hooks_use_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    for hook in [*(REPO_ROOT / "hooks").glob("*.py"), REPO_ROOT / "template/scripts/init_git.py"]:
        imported = re.findall(r"^(?:from|import) (\w+)", hook.read_text(), flags=re.MULTILINE)
        assert set(imported) <= allowed, f"{hook.name} imports {set(imported) - allowed}"


def test_the_runtime_is_versioned_with_the_template() -> None:
    """A project's runtime/ is the runtime of the template version it records."""
    template = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    runtime = REPO_ROOT / "template" / "runtime"
    distribution = tomllib.loads((runtime / "pyproject.toml").read_text())["project"]["version"]
    api = re.search(
        r'^__version__ = "(.+)"$',
        (runtime / "src" / "airuntime" / "__init__.py").read_text(),
        flags=re.MULTILINE,
    )

    assert api is not None
    assert template == distribution == api.group(1)
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert f"## [{template}] - " in changelog, f"CHANGELOG.md has no section for {template}"
