"""`make quality`: where a project's own code is complex and where its tests are thin.

Prompt handlers and response parsers grow into the most complex, least tested code of an AI
system, so the report puts the AI integration layer first: the project's features and prompt
code, then the rest. It lists the most complex functions (name, file:line, McCabe complexity,
as ruff's C901 rule counts it) and the least covered modules (from the last coverage run's data
file, `.coverage`), in a terminal table and in `reports/quality.md` (and `quality.json`).

No network and no new tool: complexity comes from ruff with the limit set to 0, so it reports
every function, and coverage from coverage.py's own data file. Run as
`python -m airuntime.cli.quality src/<package>`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

# Where prompts are handled and model output is parsed: listed first.
FOCUS_PARTS = ("features", "prompts", "prompt")
_COMPLEXITY = re.compile(r"^`(?P<name>.+)` is too complex \((?P<value>\d+) > \d+\)$")
DEFAULT_TOP = 15


class QualityError(Exception):
    """The report cannot be made; the message says what to do."""


@dataclass(frozen=True, slots=True)
class FunctionComplexity:
    name: str
    path: str
    line: int
    complexity: int
    focus: bool


@dataclass(frozen=True, slots=True)
class ModuleCoverage:
    path: str
    statements: int
    missing: int
    focus: bool

    @property
    def percent(self) -> float:
        return 100.0 if self.statements == 0 else 100.0 * (1 - self.missing / self.statements)


def in_focus(path: str) -> bool:
    """Part of the AI integration layer: a features or prompts module or directory."""
    parts = Path(path).with_suffix("").parts
    return any(part in FOCUS_PARTS for part in parts)


def ruff_command() -> list[str]:
    found = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(found).exists():
        raise QualityError("ruff is not installed here: run `uv sync` (it is a dev dependency).")
    return [found]


def complexities(source: Path, root: Path) -> list[FunctionComplexity]:
    """Every function's McCabe complexity, as ruff counts it (C901 with the limit at 0)."""
    result = subprocess.run(  # noqa: S603 - ruff, with fixed arguments
        [
            *ruff_command(),
            "check",
            "--select",
            "C901",
            "--config",
            "lint.mccabe.max-complexity = 0",
            "--output-format",
            "json",
            "--exit-zero",
            "--no-cache",
            str(source),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise QualityError(f"ruff could not read {source}: {result.stderr.strip()}")
    found = []
    for entry in json.loads(result.stdout or "[]"):
        match = _COMPLEXITY.match(entry["message"])
        if match is None:
            continue
        path = relative(Path(entry["filename"]), root)
        found.append(
            FunctionComplexity(
                name=match["name"],
                path=path,
                line=int(entry["location"]["row"]),
                complexity=int(match["value"]),
                focus=in_focus(path),
            )
        )
    return sorted(found, key=lambda item: (not item.focus, -item.complexity, item.path, item.line))


def coverages(data_file: Path, source: Path, root: Path) -> list[ModuleCoverage] | None:
    """Line coverage of every measured module under `source`, least covered first; None when
    there is no coverage data yet."""
    if not data_file.is_file():
        return None
    import coverage  # a dev dependency, needed only here

    measured = coverage.Coverage(data_file=str(data_file))
    measured.load()
    modules = []
    source = source.resolve()
    for name in measured.get_data().measured_files():
        path = Path(name).resolve()
        if not path.is_relative_to(source) or path.suffix != ".py":
            continue
        try:
            _, statements, _, missing, _ = measured.analysis2(str(path))
        except coverage.CoverageException:
            continue  # a file measured by an older run that no longer exists
        shown = relative(path, root)
        modules.append(ModuleCoverage(shown, len(statements), len(missing), in_focus(shown)))
    return sorted(modules, key=lambda item: (not item.focus, item.percent, item.path))


def relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def complexity_limit(root: Path) -> int | None:
    """The project's gate: `[tool.ruff.lint.mccabe] max-complexity` in pyproject.toml."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    limit = config.get("tool", {}).get("ruff", {}).get("lint", {}).get("mccabe", {})
    value = limit.get("max-complexity")
    return value if isinstance(value, int) else None


def markdown(
    functions: Sequence[FunctionComplexity],
    modules: Sequence[ModuleCoverage] | None,
    *,
    limit: int | None,
    top: int,
) -> str:
    lines = ["# Code quality: complexity and coverage", ""]
    lines.append(
        "The AI integration layer (features and prompt code) comes first in each table. "
        + (f"The gate (`make lint`) refuses a function above {limit}." if limit else "")
    )
    lines += ["", "## Most complex functions", ""]
    lines += ["| function | where | complexity | layer |", "| --- | --- | ---: | --- |"]
    for item in functions[:top]:
        over = " (over the gate)" if limit is not None and item.complexity > limit else ""
        layer = "AI integration" if item.focus else "other"
        lines.append(
            f"| `{item.name}` | `{item.path}:{item.line}` | {item.complexity}{over} | {layer} |"
        )
    lines += ["", "## Least covered modules", ""]
    if modules is None:
        lines.append("No coverage data yet: run `make coverage` (or `make validate-branch`).")
    else:
        lines += ["| module | statements | missed | covered | layer |"]
        lines += ["| --- | ---: | ---: | ---: | --- |"]
        for module in modules[:top]:
            layer = "AI integration" if module.focus else "other"
            lines.append(
                f"| `{module.path}` | {module.statements} | {module.missing} | "
                f"{module.percent:.1f}% | {layer} |"
            )
    return "\n".join(lines) + "\n"


def print_tables(
    functions: Sequence[FunctionComplexity],
    modules: Sequence[ModuleCoverage] | None,
    *,
    limit: int | None,
    top: int,
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Most complex functions (AI integration layer first)")
    for column in ("function", "where", "complexity", "layer"):
        table.add_column(
            column, justify="right" if column == "complexity" else "left", overflow="fold"
        )
    for item in functions[:top]:
        over = limit is not None and item.complexity > limit
        table.add_row(
            item.name,
            f"{item.path}:{item.line}",
            f"[bold red]{item.complexity}[/]" if over else str(item.complexity),
            "AI integration" if item.focus else "other",
        )
    console.print(table)
    if modules is None:
        console.print("No coverage data yet: run `make coverage` (or `make validate-branch`).")
        return
    covered = Table(title="Least covered modules (AI integration layer first)")
    for column in ("module", "layer"):
        covered.add_column(column, overflow="fold")
    for column in ("statements", "missed", "covered"):
        covered.add_column(column, justify="right")
    for module in modules[:top]:
        covered.add_row(
            module.path,
            "AI integration" if module.focus else "other",
            str(module.statements),
            str(module.missing),
            f"{module.percent:.1f}%",
        )
    console.print(covered)


def run(
    source: Path, *, root: Path, reports: Path, data_file: Path, top: int = DEFAULT_TOP
) -> tuple[list[FunctionComplexity], list[ModuleCoverage] | None]:
    """Make the report: both tables printed, `quality.md` and `quality.json` written."""
    if not source.is_dir():
        raise QualityError(f"{source} is not a directory: give the package's source directory.")
    functions = complexities(source, root)
    modules = coverages(data_file, source, root)
    limit = complexity_limit(root)
    print_tables(functions, modules, limit=limit, top=top)
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "quality.md").write_text(
        markdown(functions, modules, limit=limit, top=top), encoding="utf-8"
    )
    data = {
        "complexity_limit": limit,
        "functions": [asdict(item) for item in functions],
        "modules": None if modules is None else [asdict(item) for item in modules],
    }
    (reports / "quality.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return functions, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airuntime.cli.quality", description=__doc__)
    parser.add_argument("source", type=Path, help="the package's source directory, e.g. src/app")
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--coverage-file", type=Path, default=Path(".coverage"))
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, help="rows per table")
    args = parser.parse_args(argv)
    try:
        run(
            args.source,
            root=Path.cwd(),
            reports=args.reports,
            data_file=args.coverage_file,
            top=args.top,
        )
    except QualityError as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201 - a command-line tool
        return 2
    print(f"quality: wrote {args.reports / 'quality.md'} and quality.json")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
