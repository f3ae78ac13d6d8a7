"""Slow tier: generate real projects and run what their users run, offline but for PyPI.

For four combinations (the defaults, the most different one, anthropic-only, no examples) a
project is copied as the README says, with no `--trust`, initialised and validated; a fifth is
copied with `--skip-tasks` and must reach the same state. `make init` alone puts each under git
with a first commit that holds uv.lock, and leaves the tree clean.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.rendering import COMBINATIONS, REPO_ROOT, answers_for, copier_cli

pytestmark = pytest.mark.slow
TOOLS = Path(sys.executable).parent  # zizmor and check-jsonschema come with the dev group


def run(
    command: list[str], cwd: Path, env: dict[str, str], *, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    if result.returncode != expect:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        pytest.fail(f"`{' '.join(command)}` exited {result.returncode}, expected {expect}:\n{tail}")
    return result


def copier_copy(
    src: Path, dst: Path, overrides: dict[str, Any], env: dict[str, str], *flags: str
) -> None:
    result = copier_cli(src, dst, overrides, env, flags=flags)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (dst / ".git").exists(), "the copy ran something: it must leave git to make init"


def git_status(project: Path, env: dict[str, str]) -> str:
    return run(["git", "status", "--porcelain"], project, env).stdout


def assert_tier_ran(project: Path, env: dict[str, str], target: str) -> None:
    output = run(["make", target], project, env).stdout
    assert "no tests ran" not in output
    assert " passed" in output or " skipped" in output, output[-500:]


def check_project(project: Path, answers: dict[str, Any], env: dict[str, str]) -> None:
    """What a user does on day one, in order, asserting each step."""
    run(["make", "init"], project, env)
    assert run(["git", "log", "--format=%s"], project, env).stdout == (
        "Initial commit from copier-ai-system\n"
    )
    assert (project / ".git/hooks/pre-commit").is_file()
    # Clean in git, the lock in the first commit and current: a first push is green in CI
    # (`uv sync --frozen`, then the Makefile's `--locked` runs).
    assert git_status(project, env) == "", "make init left files uncommitted"
    first_commit = run(["git", "show", "--name-only", "--format=", "HEAD"], project, env).stdout
    assert "uv.lock" in first_commit.splitlines()
    run(["uv", "lock", "--locked"], project, env)

    help_text = run(["make"], project, env).stdout
    examples = answers.get("include_examples", True)
    retrieval = answers.get("retrieval", False)
    for target in (
        "init",
        "sync",
        "format",
        "lint",
        "typecheck",
        "test",
        "test-unit",
        "test-functional",
        "test-integration",
        "test-runtime",
        "coverage",
        "validate-branch",
        "update-template",
        "check-template-update",
        "prompts-check",
        "prompts-lock",
        "bench-prompts",
        *(["demo"] if examples else []),
        *(["bench-retrieval"] if retrieval else []),
        *(["serve", "serve-dev", "bench-service"] if answers["service"] == "http" else []),
        "eval",
        "eval-accept",
        *(["eval-replay", "record"] if answers["llm_providers"] else []),
        "clean",
    ):
        assert f"  {target} " in help_text, f"make help does not list {target}"

    run(["make", "validate-branch"], project, env)
    for tier in ("test-unit", "test-functional", "test-integration"):
        assert_tier_ran(project, env, tier)
    check_two_tiers_at_once(project, env)
    if answers["llm_providers"]:
        check_replayed_traffic(project, answers, env)

    if examples:
        demo = run(["make", "demo"], project, env)
        assert "=== stats" in demo.stdout
        assert "degraded: no model answered" in demo.stdout
        evaluation = run(["make", "eval"], project, env)
        assert "eval gate: passed against evals/baselines/mock.json." in evaluation.stderr
        assert (project / "reports" / "eval-latency.png").is_file()
    else:
        assert "  demo " not in help_text
        evaluation = run(["make", "eval"], project, env)
        if retrieval:  # the answer feature alone, on its shipped dataset and baseline
            assert "eval gate: passed against evals/baselines/mock.json." in evaluation.stderr
        else:
            assert "eval: nothing to evaluate yet" in evaluation.stdout

    run(["make", "format"], project, env)
    assert git_status(project, env) == "", "make format changed a freshly generated project"

    run(["uv", "run", "--frozen", "pre-commit", "run", "--all-files"], project, env)
    assert git_status(project, env) == ""

    version = run(["uv", "run", "--frozen", answers["project_slug"], "--version"], project, env)
    assert version.stdout.strip() == f"{answers['project_slug']} 0.1.0"
    # The name and description as typed (quotes, backslashes, `#`, Jinja-looking text in one
    # combination), through the docstring, Typer and rich, to the reader of --help.
    shown = run(["uv", "run", "--frozen", answers["project_slug"], "--help"], project, env)
    said = " ".join(shown.stdout.split())
    assert f"{answers['project_name']}. {' '.join(answers['description'].split())}" in said

    if answers["llm_providers"] == ["anthropic"]:  # the runtime's own tests, in a project
        runtime = run(["make", "test-runtime"], project, env).stdout
        assert " passed" in runtime
        assert "SKIPPED" in runtime  # the OpenAI adapter's tests: this project has no openai SDK
        assert "the openai extra is not installed" in runtime
    if examples:
        check_layering_is_enforced(project, answers["package_name"], env)
        check_complexity_is_gated_and_reported(project, answers["package_name"], env)

    if answers["ci"] == "github":
        workflows = project / ".github"
        run([str(TOOLS / "zizmor"), "--offline", str(workflows)], REPO_ROOT, env)
        update_check = str(workflows / "workflows/template-update.yml")
        run(
            [str(TOOLS / "zizmor"), "--offline", "--persona", "pedantic", update_check],
            REPO_ROOT,
            env,
        )
        checks = [
            ("vendor.github-workflows", "workflows/ci.yml"),
            ("vendor.github-workflows", "workflows/template-update.yml"),
            ("vendor.github-workflows", "workflows/runtime.yml"),
            ("vendor.dependabot", "dependabot.yml"),
        ]
        for schema, relative in checks:
            run(
                [
                    str(TOOLS / "check-jsonschema"),
                    "--builtin-schema",
                    schema,
                    str(workflows / relative),
                ],
                REPO_ROOT,
                env,
            )


def check_replayed_traffic(project: Path, answers: dict[str, Any], env: dict[str, str]) -> None:
    """No key here: the integration tier replays the example cassettes and skips nothing, and
    the CI eval gate passes on them, writing its before/after table to the summary file."""
    keyless = {name: value for name, value in env.items() if not name.endswith("_API_KEY")}
    integration = run(["make", "test-integration"], project, keyless).stdout
    assert " passed" in integration
    assert "skipped" not in integration, integration[-800:]
    summary = project / "reports" / "step-summary.md"
    replayed = run(["make", "eval-replay", f"EVAL_ARGS=--summary {summary}"], project, keyless)
    provider = answers["llm_providers"][0]
    if answers.get("include_examples", True):
        assert f"eval gate: passed against evals/baselines/{provider}.json." in replayed.stderr
        table = summary.read_text(encoding="utf-8")
        assert table.startswith(f"### Eval gate on {provider}: passed")
        assert "| feature | prompt | pass rate | cost per case | latency p95 | gate |" in table
    else:  # no example recordings: the gate says what to do instead of failing
        assert "eval-replay: no feature has recorded traffic in tests/cassettes yet" in (
            replayed.stdout
        )


def check_two_tiers_at_once(project: Path, env: dict[str, str]) -> None:
    """Two pytest runs of one project at the same time (two terminals, make -j) both pass:
    neither fails on the other's temporary directories."""
    runs = [
        subprocess.Popen(
            ["make", tier],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for tier in ("test-unit", "test-functional")
    ]
    for process in runs:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-2000:]
        assert " passed" in output


def check_complexity_is_gated_and_reported(
    project: Path, package: str, env: dict[str, str]
) -> None:
    """`make quality` lists the most complex feature code first (coverage from validate-branch's
    run); a function one branch past the gate fails `make lint` with a line naming it."""
    report = run(["make", "quality"], project, env).stdout
    assert "Most complex functions" in report
    quality = json.loads((project / "reports" / "quality.json").read_text(encoding="utf-8"))
    first = quality["functions"][0]
    assert (first["name"], first["path"]) == (
        "_print_summaries",
        f"src/{package}/features/commands.py",
    )
    assert quality["modules"], "no coverage data from make validate-branch"
    assert all(module["focus"] for module in quality["modules"][:3])

    tangled = project / "src" / package / "features" / "tangled.py"
    branches = "".join(f"    if value == {n}:\n        return {n}\n" for n in range(10))
    tangled.write_text(
        f'"""Too many branches."""\n\n\ndef route(value: int) -> int:\n{branches}    return -1\n',
        encoding="utf-8",
    )
    refused = run(["make", "lint"], project, env, expect=2)
    assert "C901 `route` is too complex (11 > 10)" in refused.stdout
    tangled.unlink()


def check_layering_is_enforced(project: Path, package: str, env: dict[str, str]) -> None:
    """A feature that reads the settings itself breaks the shell's layers: lint-imports (part of
    `make lint` and `make validate-branch`) says which contract and which import, and the
    project is green again once it is undone."""
    feature = project / "src" / package / "features" / "summarize.py"
    original = feature.read_text(encoding="utf-8")
    feature.write_text(
        original.replace(
            "from __future__ import annotations\n",
            f"from __future__ import annotations\n\nfrom {package}.settings import load_settings\n",
            1,
        )
        + "\n\nLIMIT = load_settings().max_input_chars\n",
        encoding="utf-8",
    )
    lint_imports = ["uv", "run", "--locked", "lint-imports", "--no-logo"]
    broken = run(lint_imports, project, env, expect=1)
    said = " ".join(broken.stdout.split())  # the report wraps long lines at the terminal width
    assert "Only wiring.py and the command line read the settings BROKEN" in said
    assert f"{package}.features.summarize -> {package}.settings" in said
    feature.write_text(original, encoding="utf-8")
    run(["make", "lint"], project, env)


@pytest.mark.parametrize(
    "combination",
    ["defaults", "both-py313-bsd-longnames", "anthropic-py311-apache-noci", "no-examples"],
)
def test_generated_project_is_green_on_day_one(
    template_src: Path, tmp_path: Path, tool_env: dict[str, str], combination: str
) -> None:
    overrides = COMBINATIONS[combination]
    project = tmp_path / "project"

    copier_copy(template_src, project, overrides, tool_env)

    check_project(project, answers_for(overrides), tool_env)


def test_skip_tasks_then_make_init_reaches_the_same_state(
    template_src: Path, tmp_path: Path, tool_env: dict[str, str]
) -> None:
    overrides = COMBINATIONS["mock-only-proprietary"]
    project = tmp_path / "project"

    copier_copy(template_src, project, overrides, tool_env, "--skip-tasks")

    check_project(project, answers_for(overrides), tool_env)
