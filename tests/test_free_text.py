"""Fast tier: free-text answers (the project name and the description) are taken as typed and
read back exactly from every file they land in, each by its own format's parser: TOML
(pyproject.toml), YAML (the answers file), Python docstrings (the package and the command
line's help), Markdown (README.md, CHANGELOG.md) and the Makefile's comment.

The text holds what people write and what breaks naive templating: double quotes, apostrophes,
backslashes (one at the very end), `#` and Jinja-looking text (`{{ x }}`, `{% raw %}`)."""

from __future__ import annotations

import ast
import itertools
import json
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.rendering import (
    TRICKY_DESCRIPTION,
    TRICKY_NAME,
    answers_for,
    load_answers_file,
    project_files,
    render,
)

pytestmark = pytest.mark.xdist_group("render")

CASES = {
    "tricky": {"project_name": TRICKY_NAME, "description": TRICKY_DESCRIPTION},
    # One character of each kind alone, where a file format gives it a meaning at the start.
    "leading-hash": {
        "project_name": "#support Bot",
        "description": "# not a heading, \\ nor a list",
    },
    "leading-list-marker": {"project_name": "- Bot", "description": '1. "quoted" first'},
    "trailing-quote": {"project_name": 'The "Bot"', "description": 'Ends in a quote: "'},
}


@pytest.fixture(scope="module")
def projects(
    template_src: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, dict[str, Any]]]:
    rendered = {}
    for case, overrides in CASES.items():
        destination = tmp_path_factory.mktemp(case) / "project"
        rendered[case] = (destination, render(template_src, destination, overrides))
    return rendered


def words(text: str) -> str:
    """Text with its line wrapping undone (docstrings are wrapped to the line length)."""
    return " ".join(text.split())


def first_text(markdown: str, kind: str, *, until_link: bool = False) -> str:
    """The plain text of the first `kind` block (heading_open, paragraph_open), as rendered
    (`until_link`: up to the block's first link, which the template wrote)."""
    tokens = MarkdownIt("commonmark").enable("table").enable("strikethrough").parse(markdown)
    for opening, inline in itertools.pairwise(tokens):
        if opening.type == kind and inline.type == "inline":
            children = inline.children or []
            if until_link:
                ends = [i for i, child in enumerate(children) if child.type == "link_open"]
                children = children[: ends[0]] if ends else children
            return "".join(plain(child) for child in children)
    raise AssertionError(f"no {kind} block")


def plain(token: Token) -> str:
    if token.type in {"text", "code_inline"}:
        return token.content
    if token.type == "softbreak":
        return " "
    assert token.type not in {"html_inline", "link_open", "em_open", "strong_open", "s_open"}, (
        f"free text became markup: {token.type}"
    )
    return "".join(plain(child) for child in token.children or [])


@pytest.mark.parametrize("case", CASES)
def test_free_text_reads_back_exactly_from_every_file(
    projects: dict[str, tuple[Path, dict[str, Any]]], case: str
) -> None:
    root, answers = projects[case]
    name, description = CASES[case]["project_name"], CASES[case]["description"]
    package = root / "src" / answers["package_name"]

    # TOML and YAML hold the text itself.
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == description
    recorded = load_answers_file(root)
    assert (recorded["project_name"], recorded["description"]) == (name, description)

    # Python: the package docstring and the command line's (its --help), as Python reads them.
    module = ast.parse((package / "__init__.py").read_text(encoding="utf-8"))
    title, body = (ast.get_docstring(module) or "").split("\n\n", 1)
    assert (title, words(body)) == (f"{name}.", words(description))
    cli = ast.parse((package / "cli.py").read_text(encoding="utf-8"))
    (callback,) = [
        node
        for node in ast.walk(cli)
        if isinstance(node, ast.FunctionDef)
        and (ast.get_docstring(node) or "").startswith(f"{name}.")
    ]
    _, help_body = (ast.get_docstring(callback) or "").split("\n\n", 1)
    assert words(help_body) == words(description)

    # Markdown: what a reader sees once rendered, not markup.
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert first_text(readme, "heading_open") == name
    assert first_text(readme, "paragraph_open") == description
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    assert first_text(changelog, "paragraph_open", until_link=True).startswith(
        f"All notable changes to {name} are documented here."
    )

    # The Makefile's first line is a comment: the text as typed.
    first_line = (root / "Makefile").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == f"# {name}: every developer command. `make` or `make help` lists them."


@pytest.mark.parametrize("case", CASES)
def test_every_structured_file_still_parses(
    projects: dict[str, tuple[Path, dict[str, Any]]], case: str
) -> None:
    root, _ = projects[case]
    for relative in sorted(project_files(root)):
        path = root / relative
        text = path.read_text(encoding="utf-8")
        if path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".py":
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # an invalid escape sequence is a SyntaxWarning
                compile(text, relative, "exec")


def test_the_derived_names_drop_what_names_cannot_hold(
    projects: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    root, _ = projects["tricky"]

    recorded = load_answers_file(root)

    assert (recorded["project_slug"], recorded["package_name"]) == (
        "ada-s-support-triage-1-x-bot",
        "ada_s_support_triage_1_x_bot",
    )
    assert (root / "src" / "ada_s_support_triage_1_x_bot" / "__init__.py").is_file()
    # The helpers the other tests use derive the same names.
    assert answers_for(CASES["tricky"])["package_name"] == recorded["package_name"]
