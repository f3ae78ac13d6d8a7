"""Fast tier: every bad answer is refused with a message a person can act on, and nothing is
written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.rendering import DEFAULTS, REPO_ROOT, render

BAD_ANSWERS: list[tuple[str, dict[str, Any], str]] = [
    (
        "agents without the examples",
        {"include_examples": False, "agents": True},
        "The agent example is one of the examples: answer yes to include_examples",
    ),
    ("empty name", {"project_name": "   "}, "The project name cannot be empty"),
    ("name too long", {"project_name": "x" * 65}, "65 characters long: keep it to 64 or fewer"),
    (
        "name with newline",
        {"project_name": "My\nAI"},
        "The project name must be one line without control characters",
    ),
    ("slug with capitals", {"project_slug": "My-App"}, '"My-App" is not kebab-case'),
    ("slug with double hyphen", {"project_slug": "my--app"}, "is not kebab-case"),
    ("slug starting with digit", {"project_slug": "1-app"}, "is not kebab-case"),
    ("slug too long", {"project_slug": "a" * 49}, "keep it to 48 or fewer"),
    ("package with hyphen", {"package_name": "my-app"}, '"my-app" is not a valid package name'),
    ("package starting with digit", {"package_name": "1app"}, "start with a lowercase letter"),
    ("package upper case", {"package_name": "MyApp"}, "is not a valid package name"),
    ("package too long", {"package_name": "a" * 33}, "keep it to 32 or fewer"),
    ("package is a keyword", {"package_name": "class"}, '"class" is a Python keyword'),
    ("package is async keyword", {"package_name": "async"}, "is a Python keyword"),
    ("package shadows stdlib", {"package_name": "json"}, '"json" is a standard-library module'),
    ("package shadows asyncio", {"package_name": "asyncio"}, "is a standard-library module"),
    ("package shadows openai", {"package_name": "openai"}, '"openai" is the name of a library'),
    ("package shadows anthropic", {"package_name": "anthropic"}, "is the name of a library"),
    ("package shadows pydantic", {"package_name": "pydantic"}, "is the name of a library"),
    ("package named test", {"package_name": "test"}, "would shadow"),
    ("package named tests", {"package_name": "tests"}, "is the name of a library or folder"),
    ("package shadows the runtime", {"package_name": "airuntime"}, "is the name of a library"),
    ("empty description", {"description": ""}, "The description cannot be empty"),
    ("description too long", {"description": "d" * 201}, "keep it to 200 or fewer"),
    (
        "description on two lines",
        {"description": 'A "smart" bot.\nIt triages.'},
        "The description must be one line: remove line breaks and control characters",
    ),
    ("description with a tab", {"description": "A\tbot"}, "The description must be one line"),
    ("empty author", {"author_name": ""}, "The author name cannot be empty"),
    ("author with angle bracket", {"author_name": "Ada <ada>"}, "angle brackets"),
    ("email without at", {"author_email": "ada.example.com"}, "is not an email address"),
    ("email without domain dot", {"author_email": "ada@localhost"}, "is not an email address"),
    ("email with space", {"author_email": "ada @example.com"}, "is not an email address"),
    ("unsupported python", {"python_version": "3.10"}, "Invalid choice for 'python_version'"),
    ("python 2", {"python_version": "2.7"}, "Invalid choice for 'python_version'"),
    (
        "unknown provider",
        {"llm_providers": ["openai", "gemini"]},
        "Invalid choice for 'llm_providers'",
    ),
    ("unknown licence", {"license": "GPL-3.0"}, "Invalid choice for 'license'"),
    ("unknown ci", {"ci": "gitlab"}, "Invalid choice for 'ci'"),
    ("unknown service", {"service": "grpc"}, "Invalid choice for 'service'"),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [pytest.param(overrides, message, id=case) for case, overrides, message in BAD_ANSWERS],
)
def test_bad_answer_is_refused_with_its_message_and_nothing_is_written(
    template_src: Path, tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    destination = tmp_path / "project"

    with pytest.raises(ValueError, match=r"question|choice") as caught:
        render(template_src, destination, overrides)

    assert message in str(caught.value)
    assert not destination.exists()


def test_every_question_has_help_a_default_and_a_validator() -> None:
    import yaml

    config = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())
    questions = {key: value for key, value in config.items() if not key.startswith("_")}

    assert list(questions) == list(DEFAULTS)  # every question, in the order they are asked
    for name, question in questions.items():
        assert question.get("help"), f"{name} has no help"
        assert "default" in question, f"{name} has no default"
        if question.get("type") != "bool":  # Copier itself parses yes/no answers
            assert question.get("validator"), f"{name} has no validator"


def test_reserved_standard_library_names_cover_this_interpreter() -> None:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(REPO_ROOT), autoescape=False)
    reserved = environment.get_template("includes/reserved_names.jinja").module
    public = {name for name in sys.stdlib_module_names if not name.startswith("_")}

    missing = sorted(public - set(reserved.stdlib))  # type: ignore[attr-defined]

    assert missing == [], f"add to the stdlib list in includes/reserved_names.jinja: {missing}"


def test_good_unusual_answers_are_accepted(template_src: Path, tmp_path: Path) -> None:
    answers = render(
        template_src,
        tmp_path / "project",
        {
            "project_name": "Łódź Bot: résumé & triage (v2)",
            "project_slug": "lodz-bot",
            "package_name": "lodz_bot2",
            "author_email": "o'brien+bots@mail.example.co.uk",
        },
    )

    assert (tmp_path / "project" / "src" / answers["package_name"] / "cli.py").is_file()
