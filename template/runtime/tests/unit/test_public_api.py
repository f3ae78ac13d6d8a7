"""The one public API module: `airuntime` lists every name a project may import, each loads,
and importing it loads nothing else."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import airuntime

PACKAGE_DIR = Path(airuntime.__file__).parent
PYPROJECT = PACKAGE_DIR.parents[1] / "pyproject.toml"


def type_checking_imports() -> dict[str, set[str]]:
    """module -> names, from the `if TYPE_CHECKING:` block of airuntime/__init__.py."""
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If))
    found: dict[str, set[str]] = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom)
        assert statement.module is not None
        module = statement.module.removeprefix("airuntime.")
        found[module] = {alias.name for alias in statement.names}
    return found


def test_all_lists_exactly_the_names_of_the_table() -> None:
    table = {name for names in airuntime._MODULES.values() for name in names}

    assert set(airuntime.__all__) == table
    assert len(airuntime.__all__) == len(table), "a name is listed under two modules"


def test_the_type_checking_imports_match_the_table() -> None:
    table = {module: set(names) for module, names in airuntime._MODULES.items()}

    assert type_checking_imports() == table


# What the runtime's optional extras bring, by import name: a project installs only the extras
# its answers ask for (no service, no retrieval, no Redis...), so their modules cannot load there.
OPTIONAL_IMPORTS = frozenset(
    {"fastapi", "numpy", "pgvector", "prometheus_client", "psycopg", "psycopg_pool", "pypdf"}
    | {"redis", "uvicorn", "genai_prices"}
)


def test_every_public_name_loads_from_its_module() -> None:
    for module, names in airuntime._MODULES.items():
        try:
            loaded = importlib.import_module(f"airuntime.{module}")
        except ModuleNotFoundError as missing:
            if (missing.name or "").split(".")[0] in OPTIONAL_IMPORTS:
                continue  # its extra is not installed here
            raise
        for name in names:
            assert getattr(airuntime, name) is getattr(loaded, name), f"{module}.{name}"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'airuntime' has no attribute 'NoSuchThing'"):
        airuntime.NoSuchThing  # noqa: B018 - the attribute access is the test


def test_importing_the_api_loads_no_submodule() -> None:
    code = "import sys, airuntime; print(sorted(m for m in sys.modules if 'airuntime' in m))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "['airuntime']"


def test_no_runtime_module_imports_through_the_public_api() -> None:
    """Inside the runtime, modules import each other directly: going through `airuntime`
    would hide the layering (and import everything)."""
    offenders = []
    for path in PACKAGE_DIR.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE_DIR:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "airuntime":
                offenders.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno}")
            if isinstance(node, ast.Import) and any(a.name == "airuntime" for a in node.names):
                offenders.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno}")
    assert offenders == []


def test_the_version_is_the_distributions() -> None:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]

    assert airuntime.__version__ == project["version"]
