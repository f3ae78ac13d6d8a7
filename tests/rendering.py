"""Rendering helpers and the answer combinations the tests share."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import copier
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PARTS = ("copier.yml", "template", "hooks", "includes")

DEFAULTS: dict[str, Any] = {
    "project_name": "My AI System",
    "project_slug": "my-ai-system",
    "package_name": "my_ai_system",
    "description": (
        "An AI system with validated output, retries, fallbacks, budgets and observability."
    ),
    "author_name": "AI Platform Team",
    "author_email": "ai-platform@example.com",
    "python_version": "3.12",
    "llm_providers": ["openai"],
    "include_examples": True,
    "shared_state": "local",
    "agents": False,
    "retrieval": False,
    "license": "MIT",
    "ci": "github",
    "service": "http",
}

# Free text as people type it (issue 13): double quotes, apostrophes, backslashes (one at the
# very end), `#` and Jinja-looking text, in every file format it lands in. The slow tier builds
# a project with them (anthropic-py311-apache-noci); tests/test_free_text.py reads them back.
TRICKY_NAME = 'Ada\'s "Support" Triage #1 {{ x }} \\ Bot'
TRICKY_DESCRIPTION = (
    'Sorts "urgent" tickets for the #support team\'s queue at C:\\queues\\new, and keeps {{ x }}, '
    '{% raw %} and \\"quoted\\" text as typed \\'
)

# Every value of every question appears in at least one combination (values are cycled, not
# multiplied out). The first is the defaults; the third is the one most different from them,
# with names at their maximum lengths so line-length limits are exercised.
COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "anthropic-py311-apache-noci": {
        "project_name": TRICKY_NAME,
        "description": TRICKY_DESCRIPTION,
        "author_name": "Ada Lovelace",
        "author_email": "ada.lovelace@example.org",
        "python_version": "3.11",
        "llm_providers": ["anthropic"],
        "agents": True,
        "license": "Apache-2.0",
        "ci": "none",
    },
    "both-py313-bsd-longnames": {
        "project_name": "Customer Escalation Summaries & Routing for the Support Org (EU)",
        "project_slug": "customer-escalation-summaries-and-routing-engine",
        "package_name": "escalation_summaries_and_routing",
        "description": (
            "Summarises customer escalations, routes each one to the right queue and keeps model "
            "spend bounded under real traffic, with retries, fallbacks, budgets and an offline "
            "mock at every call."
        ),
        "author_name": "Grace Brewster Murray Hopper and the Platform Reliability Team",
        "author_email": "platform+escalations@sub.example.co.uk",
        "python_version": "3.13",
        "llm_providers": ["openai", "anthropic"],
        "retrieval": True,
        "shared_state": "redis",
        "license": "BSD-3-Clause",
        "ci": "github",
    },
    "mock-only-proprietary": {
        "project_name": "Internal Tools",
        "python_version": "3.12",
        "llm_providers": [],
        "shared_state": "redis",
        "license": "Proprietary",
        "ci": "none",
        "service": "none",
    },
    "no-examples": {
        "project_name": "Bare Bones",
        "llm_providers": ["openai", "anthropic"],
        "include_examples": False,
        "retrieval": True,
    },
}


def answers_for(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The full answers a combination stands for, derived defaults included."""
    answers = {**DEFAULTS, **overrides}
    if "project_name" in overrides and "project_slug" not in overrides:
        slug = "".join(c if c.isalnum() else "-" for c in str(overrides["project_name"]).lower())
        answers["project_slug"] = "-".join(part for part in slug.split("-") if part)
    if "package_name" not in overrides:
        answers["package_name"] = str(answers["project_slug"]).replace("-", "_")
    return answers


def recorded_answers(answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers `.copier-answers.yml` keeps: a question whose `when` was false (`agents`
    without the examples) is not asked, so not recorded."""
    return {
        key: value
        for key, value in answers.items()
        if key != "agents" or answers["include_examples"]
    }


def snapshot_template(destination: Path) -> Path:
    """Copy the template's files as git sees them (tracked and untracked, not ignored)."""
    listed = subprocess.run(
        [
            "git",
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "-z",
            "--",
            *TEMPLATE_PARTS,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    destination.mkdir(parents=True)
    if listed.returncode == 0 and listed.stdout:
        for relative in filter(None, listed.stdout.split("\0")):
            source = REPO_ROOT / relative
            if source.is_file():
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    else:  # not a git checkout (an unpacked archive): copy the parts whole
        for part in TEMPLATE_PARTS:
            source = REPO_ROOT / part
            if source.is_dir():
                shutil.copytree(source, destination / part)
            else:
                shutil.copy2(source, destination / part)
    return destination


def render(
    src: Path,
    dst: Path,
    overrides: Mapping[str, Any],
    *,
    skip_tasks: bool = True,
) -> dict[str, Any]:
    """Render a project non-interactively and return the answers it was given."""
    copier.run_copy(
        str(src),
        dst,
        data=dict(overrides),
        defaults=True,
        unsafe=True,
        skip_tasks=skip_tasks,
        quiet=True,
    )
    return answers_for(overrides)


def copier_cli(
    src: Path,
    dst: Path,
    overrides: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    flags: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`copier copy` in its own process, as a user runs it: no `--trust` (the template needs
    none), plus `flags` (e.g. `--skip-tasks`)."""
    command = [sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", *flags]
    for key, value in overrides.items():
        rendered = "[" + ", ".join(value) + "]" if isinstance(value, list) else str(value)
        command += ["--data", f"{key}={rendered}"]
    return subprocess.run(
        [*command, str(src), str(dst)],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )


EXAMPLE_PROMPTS = ("summarize", "classify")
FEATURE_SAMPLES = (
    "avis-client.txt",
    "incident-report.txt",
    "injection-attempt.txt",
    "release-notes.txt",
    "tickets.jsonl",
)
TRIAGE_DATA = ("orders.json", "faq.json")
RETRIEVAL_MODULES = ("answer", "retrieval_cli", "retrieval_commands")
RETRIEVAL_DOCUMENTS = (
    "account-security.md",
    "getting-started.md",
    "pricing.html",
    "returns-and-refunds.md",
    "shipping.txt",
    "warranty.pdf",
)
RUNTIME_DIR = REPO_ROOT / "template" / "runtime"


def runtime_files() -> set[str]:
    """The runtime as the template holds it (tracked and new files): copied verbatim."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "."],
        cwd=RUNTIME_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode == 0 and listed.stdout:
        names = [name for name in listed.stdout.split("\0") if name]
        return {f"runtime/{name}" for name in names if (RUNTIME_DIR / name).is_file()}
    return {
        "runtime/" + path.relative_to(RUNTIME_DIR).as_posix()
        for path in RUNTIME_DIR.rglob("*")
        if path.is_file()
    }


def jinja_by_design(answers: Mapping[str, Any]) -> set[str]:
    """Generated files that hold Jinja2 syntax on purpose: prompt templates, their tests and
    the vendored runtime (whose prompt engine is Jinja). The check for Copier leftovers skips
    general markers in these files and looks instead for any template question or Copier
    variable left unrendered."""
    package = f"src/{answers['package_name']}"
    files = {f"{package}/prompts/README.md", *runtime_files()}
    if answers["include_examples"]:
        files |= {
            *(f"{package}/prompts/library/{prompt}/1.0.0.yaml" for prompt in EXAMPLE_PROMPTS),
            "tests/unit/prompts/test_library.py",
            *([f"{package}/prompts/library/triage/1.0.0.yaml"] if answers.get("agents") else []),
            "tests/functional/test_eval_cli.py",
            "tests/functional/test_features.py",
            "evals/summarize.jsonl",  # a template-injection case
        }
        if answers["llm_providers"]:  # the same case, recorded in the example cassette
            first = "openai" if "openai" in answers["llm_providers"] else "anthropic"
            files.add(f"tests/cassettes/{first}-summarize.json")
    if answers["retrieval"]:
        files.add(f"{package}/prompts/library/answer/1.0.0.yaml")
    return files


def expected_files(answers: Mapping[str, Any]) -> set[str]:
    """Exactly the files a project with these answers must contain."""
    package = f"src/{answers['package_name']}"
    files = {
        ".copier-answers.yml",
        ".env.example",
        ".gitignore",
        ".pre-commit-config.yaml",
        ".python-version",
        "CHANGELOG.md",
        "LICENSE",
        "Makefile",
        "README.md",
        "pyproject.toml",
        "scripts/init_git.py",
        f"{package}/__init__.py",
        f"{package}/__main__.py",
        f"{package}/cli.py",
        f"{package}/py.typed",
        f"{package}/settings.py",
        f"{package}/wiring.py",
        f"{package}/features/__init__.py",
        f"{package}/features/catalog.py",
        f"{package}/prompts/README.md",
        "evals/README.md",
        "prompts.lock",
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/functional/__init__.py",
        "tests/functional/test_ask_cli.py",
        "tests/functional/test_cli.py",
        "tests/functional/test_eval_cli.py",
        "tests/functional/test_init_git.py",
        "tests/functional/test_network_guard.py",
        "tests/functional/test_startup.py",
        "tests/functional/test_wiring.py",
        "tests/integration/__init__.py",
        "tests/integration/test_entry_points.py",
        "tests/unit/__init__.py",
        "tests/unit/prompts/__init__.py",
        "tests/unit/prompts/test_library.py",
        "tests/unit/test_concurrent_runs.py",
        "tests/unit/test_env_example.py",
        "tests/unit/test_init_git.py",
        "tests/unit/test_settings.py",
        *runtime_files(),
    }
    if answers["include_examples"]:
        files |= {
            *(
                f"{package}/features/{module}.py"
                for module in ("classify", "cli", "commands", "demo", "offline", "options")
            ),
            f"{package}/features/summarize.py",
            *(f"{package}/features/samples/{sample}" for sample in FEATURE_SAMPLES),
            *(f"{package}/prompts/library/{prompt}/1.0.0.yaml" for prompt in EXAMPLE_PROMPTS),
            "evals/summarize.jsonl",
            "evals/classify.jsonl",
            "evals/baselines/mock.json",
            "tests/functional/test_feature_cli.py",
            "tests/functional/test_features.py",
            "tests/unit/test_eval_datasets.py",
            "tests/unit/test_offline_responders.py",
        }
    if answers["include_examples"] and answers["agents"]:
        files |= {
            f"{package}/features/triage.py",
            f"{package}/features/agent_cli.py",
            f"{package}/prompts/library/triage/1.0.0.yaml",
            *(f"{package}/features/triage_data/{name}" for name in TRIAGE_DATA),
            "tests/functional/test_agent.py",
            "tests/unit/test_triage_tools.py",
        }
    if answers["retrieval"]:
        files |= {
            *(f"{package}/features/{module}.py" for module in RETRIEVAL_MODULES),
            *(f"{package}/features/documents/{name}" for name in RETRIEVAL_DOCUMENTS),
            f"{package}/prompts/library/answer/1.0.0.yaml",
            "evals/answer.jsonl",
            "evals/baselines/mock.json",
            "tests/functional/test_retrieval_cli.py",
            "tests/unit/test_answer_scorers.py",
        }
    if answers["llm_providers"]:
        files.add("tests/integration/test_llm_providers.py")
        files.add("tests/unit/test_cassettes.py")
        # Example cassettes in each vendor's wire format, replayed by the integration tier.
        files |= {f"tests/cassettes/{provider}-adhoc.json" for provider in answers["llm_providers"]}
        if answers["include_examples"]:
            # The evaluation's example cassettes and baseline, for the provider called first.
            first = "openai" if "openai" in answers["llm_providers"] else "anthropic"
            files |= {f"tests/cassettes/{first}-{prompt}.json" for prompt in EXAMPLE_PROMPTS}
            files.add(f"evals/baselines/{first}.json")
    if answers["shared_state"] == "redis":
        files.add("tests/integration/test_shared_state.py")
    if answers["service"] == "http":
        files |= {
            ".dockerignore",
            "Dockerfile",
            "compose.yaml",
            "otel-collector.yaml",
            f"{package}/service/__init__.py",
            f"{package}/service/app.py",
            "tests/functional/test_service.py",
            "tests/integration/test_service_server.py",
        }
        if "openai" in answers["llm_providers"]:  # the gateway with the openai SDK as client
            files.add("tests/functional/test_openai_gateway.py")
    if answers["ci"] == "github":
        files |= {".github/workflows/ci.yml", ".github/dependabot.yml"}
        files |= {".github/workflows/template-update.yml", ".github/workflows/runtime.yml"}
    return files


def project_files(root: Path) -> set[str]:
    """Every file under root, relative, ignoring git's own directory."""
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def load_answers_file(root: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((root / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded
