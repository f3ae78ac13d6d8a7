"""`make quality`: the most complex functions and the least covered modules of a project's
own code, the AI integration layer (features, prompts) first, from real ruff and coverage runs."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import coverage
import pytest

from airuntime.cli import quality

HANDLER = """
def parse_answer(text, labels, strict):
    if not text:
        return None
    if strict and text not in labels:
        raise ValueError(text)
    for label in labels:
        if label == text:
            return label
        if label.lower() == text.lower():
            return label
    if text.startswith("{"):
        return text.strip("{}")
    return labels[0] if labels else None
"""
HELPERS = """
def shout(text):
    return text.upper()


def whisper(text):
    return text.lower()
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a complex response parser in features/ and two plain helpers, its tests
    having run the helpers only (so the parser's module is the least covered)."""
    package = tmp_path / "src" / "acme"
    (package / "features").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "features" / "__init__.py").write_text("")
    (package / "features" / "handler.py").write_text(HANDLER)
    (package / "helpers.py").write_text(HELPERS)
    (tmp_path / "pyproject.toml").write_text("[tool.ruff.lint.mccabe]\nmax-complexity = 5\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    measured = coverage.Coverage(data_file=str(tmp_path / ".coverage"), source=[str(package)])
    measured.start()
    helpers = importlib.import_module("acme.helpers")
    importlib.import_module("acme.features.handler")
    helpers.shout("a")
    helpers.whisper("b")
    measured.stop()
    measured.save()
    for name in ("acme.helpers", "acme.features.handler", "acme.features", "acme"):
        sys.modules.pop(name, None)
    return tmp_path


def test_the_report_lists_the_complex_parser_first_and_its_module_as_least_covered(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    functions, modules = quality.run(
        project / "src" / "acme",
        root=project,
        reports=project / "reports",
        data_file=project / ".coverage",
    )

    first = functions[0]
    assert (first.name, first.path, first.line, first.focus) == (
        "parse_answer",
        "src/acme/features/handler.py",
        2,
        True,
    )
    assert first.complexity == 7  # as ruff (mccabe) counts: a branch per if and for
    assert {item.name: item.complexity for item in functions[1:]} == {"shout": 1, "whisper": 1}
    assert modules is not None
    assert [(module.path, round(module.percent)) for module in modules[:2]] == [
        ("src/acme/features/handler.py", 8),  # 1 of its 13 statements (the def) ran
        ("src/acme/features/__init__.py", 100),
    ]
    report = (project / "reports" / "quality.md").read_text()
    assert "| `parse_answer` | `src/acme/features/handler.py:2` | 7 (over the gate) |" in report
    assert "The gate (`make lint`) refuses a function above 5." in report
    saved = json.loads((project / "reports" / "quality.json").read_text())
    assert saved["complexity_limit"] == 5
    assert saved["functions"][0]["name"] == "parse_answer"
    printed = capsys.readouterr().out
    assert printed.index("parse_answer") < printed.index("shout")


def test_without_coverage_data_the_report_says_how_to_get_it(project: Path) -> None:
    (project / ".coverage").unlink()

    functions, modules = quality.run(
        project / "src" / "acme",
        root=project,
        reports=project / "reports",
        data_file=project / ".coverage",
    )

    assert modules is None
    assert functions[0].name == "parse_answer"
    assert (
        "No coverage data yet: run `make coverage`"
        in (project / "reports" / "quality.md").read_text()
    )


def test_the_command_refuses_a_source_that_is_not_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    status = quality.main(["src/nowhere"])

    assert status == 2
    assert capsys.readouterr().err == (
        "error: src/nowhere is not a directory: give the package's source directory.\n"
    )


@pytest.mark.parametrize(
    ("path", "focus"),
    [
        ("src/app/features/summarize.py", True),
        ("src/app/prompts.py", True),
        ("src/app/prompt/render.py", True),
        ("src/app/wiring.py", False),
        ("src/app/featuresque.py", False),
    ],
)
def test_the_ai_integration_layer_is_features_and_prompt_code(path: str, focus: bool) -> None:
    assert quality.in_focus(path) is focus
