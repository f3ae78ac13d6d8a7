"""Fast tier: render every combination of answers and check the output without installing it."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rendering import (
    COMBINATIONS,
    DEFAULTS,
    EXAMPLE_PROMPTS,
    expected_files,
    jinja_by_design,
    load_answers_file,
    project_files,
    recorded_answers,
    render,
)

# Every test here shares one module-scoped render of the combinations: keep them on one xdist
# worker (`--dist loadgroup`), or each worker renders them all again.
pytestmark = pytest.mark.xdist_group("render")

QUESTION_VALUES: dict[str, list[Any]] = {
    "python_version": ["3.11", "3.12", "3.13"],
    "llm_providers": [["openai"], ["anthropic"], ["openai", "anthropic"], []],
    "include_examples": [True, False],
    "retrieval": [True, False],
    "license": ["MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary"],
    "ci": ["github", "none"],
    "service": ["http", "none"],
}
JINJA_MARKERS = re.compile(r"\{\{|\{%|\{#|%\}|#\}")
# In files that hold Jinja on purpose, a leftover is a tag naming a question or Copier itself.
COPIER_LEFTOVER = re.compile(
    r"\{[{%]-?\s*(?:if |elif |for \w+ in |set \w+ = )?(?:not )?(?:"
    + "|".join(
        [
            *DEFAULTS,  # every question's name
            "_copier",
            "'\\w+' in llm_providers",
            "raw",
            "endraw",
        ]
    )
    + r")\b"
)
# GitHub Actions expressions are the one legitimate `${{ ... }}` in a rendered project.
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def as_rendered(answer: str) -> re.Pattern[str]:
    """An answer as any file holds it: each character maybe escaped (a backslash or two before
    it, an apostrophe doubled by YAML) and its spaces maybe a line break and indentation."""
    parts = []
    for character in answer:
        if character.isspace():
            parts.append(r"\s+")
        else:
            doubled = "'?" if character == "'" else ""
            parts.append(r"\\{0,2}" + re.escape(character) + doubled)
    return re.compile("".join(parts))


def prompt_content_hash(document: dict[str, Any]) -> str:
    """The generated project's content hash (prompts/spec.py), recomputed without it."""
    hashed = {key: value for key, value in document.items() if key != "labels"}
    canonical = json.dumps(
        hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def rendered(
    template_src: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, dict[str, Any]]]:
    projects = {}
    for name, overrides in COMBINATIONS.items():
        destination = tmp_path_factory.mktemp(name) / "project"
        projects[name] = (destination, render(template_src, destination, overrides))
    return projects


def test_combinations_cover_every_value_of_every_question() -> None:
    for question, values in QUESTION_VALUES.items():
        used = [{**DEFAULTS, **overrides}[question] for overrides in COMBINATIONS.values()]
        missing = [value for value in values if value not in used]
        assert missing == [], f"no combination uses {question}={missing}"


@pytest.mark.parametrize("name", COMBINATIONS)
def test_exact_file_set(rendered: dict[str, tuple[Path, dict[str, Any]]], name: str) -> None:
    root, answers = rendered[name]

    assert project_files(root) == expected_files(answers)


@pytest.mark.parametrize("name", COMBINATIONS)
def test_no_jinja_left_in_names_or_contents(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    root, answers = rendered[name]
    by_design = jinja_by_design(answers)
    assert by_design <= project_files(root)
    # Free text may look like Jinja ({{ x }}): as typed, it is the answer, not a leftover.
    typed = [as_rendered(answers[key]) for key in ("project_name", "description")]
    for relative in project_files(root):
        assert ".jinja" not in relative
        assert not JINJA_MARKERS.search(relative), relative
        text = GITHUB_EXPRESSION.sub("", (root / relative).read_text(encoding="utf-8"))
        for answer in typed:
            text = answer.sub("", text)
        if relative in by_design:  # prompt templates: only Copier's own names are leftovers
            leftover = COPIER_LEFTOVER.search(text)
        else:
            leftover = JINJA_MARKERS.search(text)
        assert leftover is None, f"{relative}: Jinja marker {leftover.group()!r} left over"


@pytest.mark.parametrize("name", COMBINATIONS)
def test_example_prompts_target_only_the_chosen_providers_and_match_the_lock(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    root, answers = rendered[name]
    library = root / "src" / answers["package_name"] / "prompts" / "library"
    locked = tomllib.loads((root / "prompts.lock").read_text())["prompts"]
    expected = {}
    prompts = [*(EXAMPLE_PROMPTS if answers["include_examples"] else ())]
    prompts += ["answer"] if answers["retrieval"] else []
    if answers["include_examples"] and answers["agents"]:
        prompts.append("triage")
    for prompt in prompts:
        document = yaml.safe_load((library / prompt / "1.0.0.yaml").read_text())
        providers = [document["model"]["provider"]]
        providers += [fallback["provider"] for fallback in document.get("fallbacks", [])]
        assert set(providers) <= {"mock", *answers["llm_providers"]}
        assert ("mock" in providers) is (not answers["llm_providers"])
        assert set(answers["llm_providers"]) <= set(providers)
        expected[f"{prompt}@1.0.0"] = prompt_content_hash(document)
    # The generated project's own `prompts check` proves this in the slow tier; here a
    # mismatch shows the hashes to paste into template/prompts.lock.jinja.
    assert locked == expected, f"update template/prompts.lock.jinja for {name}: {expected}"


@pytest.mark.parametrize("name", COMBINATIONS)
def test_structured_files_parse(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    root, _ = rendered[name]
    parsed = 0
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
            ast.parse(text, filename=relative)
        else:
            continue
        parsed += 1
    assert parsed >= 15


@pytest.mark.parametrize("name", COMBINATIONS)
def test_answers_file_round_trips(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    root, answers = rendered[name]
    asked = recorded_answers(answers)

    recorded = load_answers_file(root)

    assert {key: recorded[key] for key in asked} == asked
    assert set(recorded) - set(asked) <= {"_src_path", "_commit"}
    assert "api_key" not in (root / ".copier-answers.yml").read_text().lower()


@pytest.mark.parametrize("name", COMBINATIONS)
def test_answers_shape_the_project(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    root, answers = rendered[name]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    settings = (root / "src" / answers["package_name"] / "settings.py").read_text()
    env_example = (root / ".env.example").read_text()

    assert pyproject["project"]["name"] == answers["project_slug"]
    assert pyproject["project"]["requires-python"] == f">={answers['python_version']}"
    assert pyproject["project"]["scripts"] == {
        answers["project_slug"]: f"{answers['package_name']}.cli:main"
    }
    assert pyproject["project"]["authors"] == [
        {"name": answers["author_name"], "email": answers["author_email"]}
    ]
    assert (root / ".python-version").read_text() == f"{answers['python_version']}\n"
    assert pyproject["tool"]["mypy"]["python_version"] == answers["python_version"]
    dependencies = pyproject["project"]["dependencies"]
    runtime = [spec for spec in dependencies if spec.startswith("airuntime")]
    extras = sorted(
        [
            *answers["llm_providers"],
            *(["redis"] if answers["shared_state"] == "redis" else []),
            *(["retrieval"] if answers["retrieval"] else []),
            *(["service"] if answers["service"] == "http" else []),
        ]
    )
    assert runtime == [f"airuntime[{','.join(extras)}]" if extras else "airuntime"]
    optional = pyproject["project"]["optional-dependencies"]
    assert ("pgvector" in optional) is answers["retrieval"]
    assert ("httpx>=0.28" in pyproject["dependency-groups"]["dev"]) is (
        answers["service"] == "http"
    )
    assert pyproject["tool"]["uv"]["sources"]["airuntime"] == {"path": "runtime", "editable": True}
    for provider in ("openai", "anthropic"):
        chosen = provider in answers["llm_providers"]
        assert (f"{provider}_api_key" in settings) is chosen
        assert (f"{provider.upper()}_API_KEY=" in env_example) is chosen


@pytest.mark.parametrize("name", COMBINATIONS)
def test_licence_matches_the_answer(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    root, answers = rendered[name]
    licence = (root / "LICENSE").read_text()
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    first_line = {
        "MIT": "MIT License",
        "Apache-2.0": "Apache License",
        "BSD-3-Clause": "BSD 3-Clause License",
        "Proprietary": f"Copyright (c) {answers['author_name']}. All rights reserved.",
    }[answers["license"]]

    assert licence.strip().splitlines()[0].strip() == first_line
    assert licence.endswith("\n")
    assert not licence.endswith("\n\n")
    expected_spdx = {"Proprietary": "LicenseRef-Proprietary"}.get(
        answers["license"], answers["license"]
    )
    assert pyproject["project"]["license"] == expected_spdx


@pytest.mark.parametrize("name", COMBINATIONS)
def test_ci_matrix_runs_from_the_minimum_python_to_313(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    root, answers = rendered[name]
    if answers["ci"] != "github":
        assert not (root / ".github").exists()
        return
    workflow = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())
    minimum = int(answers["python_version"].split(".")[1])

    matrix = workflow["jobs"]["validate-branch"]["strategy"]["matrix"]["python"]

    assert matrix == [f"3.{minor}" for minor in range(minimum, 14)]
    assert ("integration" in workflow["jobs"]) is bool(answers["llm_providers"])


@pytest.mark.parametrize("name", COMBINATIONS)
def test_text_files_are_clean(rendered: dict[str, tuple[Path, dict[str, Any]]], name: str) -> None:
    """What the end-of-file and trailing-whitespace hooks would otherwise rewrite."""
    root, _ = rendered[name]
    for relative in project_files(root):
        text = (root / relative).read_text(encoding="utf-8")
        if not text:
            continue
        assert text.endswith("\n"), f"{relative}: no newline at the end"
        assert not text.endswith("\n\n"), f"{relative}: blank lines at the end"
        dirty = [n for n, line in enumerate(text.splitlines(), 1) if line != line.rstrip()]
        assert dirty == [], f"{relative}: trailing whitespace on lines {dirty}"


@pytest.mark.parametrize("name", COMBINATIONS)
def test_no_secret_is_asked_or_written(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    root, _ = rendered[name]
    copier_yml = yaml.safe_load(Path(__file__).parents[1].joinpath("copier.yml").read_text())
    questions = [key for key in copier_yml if not key.startswith("_")]

    assert not [q for q in questions if re.search(r"key|token|secret|password", q)]
    assert not (root / ".env").exists()
    env_example = (root / ".env.example").read_text()
    assert re.findall(r"^[A-Z_]*API_KEY=(.+)$", env_example, flags=re.MULTILINE) == []


@pytest.mark.parametrize("name", COMBINATIONS)
def test_python_lines_fit_ruffs_limit_with_every_name(
    rendered: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    """Names reach 48 (slug) and 32 (package) characters: a line that fits with the defaults
    can overflow with them, and ruff format would then rewrite a fresh project."""
    root, _ = rendered[name]
    too_long = [
        f"{relative}:{number}"
        for relative in sorted(project_files(root))
        if relative.endswith(".py")
        for number, line in enumerate((root / relative).read_text().splitlines(), 1)
        if len(line) > 100
    ]
    assert too_long == []
