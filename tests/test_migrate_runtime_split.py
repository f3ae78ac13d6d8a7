"""Fast tier: the `runtime-split` migration (hooks/upgrade_v0_1.py), which moves a v0.1.0 project
to 0.2.0's runtime/app-shell layout, and its data (hooks/upgrade_v0_1.json).

Most tests set up the state Copier leaves at the `after` stage: the user's last commit in git,
the old runtime files gone from the working tree. The update tier (tests/test_upgrade_v0_1.py)
runs the whole upgrade of a real v0.1.0 project.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.rendering import REPO_ROOT

HOOKS = REPO_ROOT / "hooks"
OLD_COMMIT = "c4882c81661d4ab96857a0bcb9104da8a1f87064"
PLACEHOLDERS = {"p": "pkgplaceholderzq", "s": "slug-placeholder-zq"}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HOOKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


upgrade = load("upgrade_v0_1")
migrate = load("migrate")
DATA: dict[str, Any] = json.loads((HOOKS / "upgrade_v0_1.json").read_text(encoding="utf-8"))


def variant(template: bytes) -> dict[str, str]:
    """The data's record of a file rendered with the placeholder names."""
    marks = re.finditer(b"pkgplaceholderzq|slug-placeholder-zq", template)
    return {
        "sha256": hashlib.sha256(template).hexdigest(),
        "marks": " ".join(f"{m.start()}{'p' if m.group()[0:1] == b'p' else 's'}" for m in marks),
    }


def render(template: bytes, package: str, slug: str = "the-slug") -> bytes:
    return template.replace(b"pkgplaceholderzq", package.encode()).replace(
        b"slug-placeholder-zq", slug.encode()
    )


# -- pristine ------------------------------------------------------------------------------

RETRY_TEMPLATE = b'''"""Retries."""

from pkgplaceholderzq.llm.errors import LLMError

RETRY_COMMAND = "slug-placeholder-zq"


def retry(error: LLMError) -> bool:
    """Whether to retry: a retry happens when the error says so."""
    return error.retryable
'''


@pytest.mark.parametrize("package", ["support_bot", "retry", "error", "a", "pkgplaceholderzq"])
def test_a_pristine_render_is_recognised_for_any_package_name(package: str) -> None:
    names = {"p": package, "s": "the-slug"}

    found = upgrade.pristine(
        render(RETRY_TEMPLATE, package), [variant(RETRY_TEMPLATE)], names, PLACEHOLDERS
    )

    assert found  # even when the name is a word of the file ("retry", "error")


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace(b"return error.retryable", b"return True"),
        lambda text: text + b"\n# ours\n",
        lambda text: text[:-1],
        lambda text: text.replace(b"from retry.llm", b"from other.llm"),
        lambda text: text.replace(b'"the-slug"', b'"other-slug"'),
    ],
)
def test_any_change_makes_a_file_not_pristine(edit: Any) -> None:
    names = {"p": "retry", "s": "the-slug"}
    changed = edit(render(RETRY_TEMPLATE, "retry"))

    assert not upgrade.pristine(changed, [variant(RETRY_TEMPLATE)], names, PLACEHOLDERS)


def test_any_variant_of_a_file_counts_as_pristine() -> None:
    """Files that differ by the providers chosen have one variant per choice."""
    openai = RETRY_TEMPLATE + b"# openai\n"
    anthropic = RETRY_TEMPLATE + b"# anthropic\n"
    names = {"p": "bot", "s": "bot"}
    variants = [variant(openai), variant(anthropic)]

    assert upgrade.pristine(render(anthropic, "bot", "bot"), variants, names, PLACEHOLDERS)
    assert not upgrade.pristine(render(RETRY_TEMPLATE, "bot", "bot"), variants, names, PLACEHOLDERS)


def test_parse_answers_reads_the_scalars_copier_writes() -> None:
    text = (
        "# Changes here will be overwritten by Copier\n_commit: v0.1.0\n_src_path: gh:org/t\n"
        "llm_providers:\n- openai\npackage_name: support_bot\nproject_slug: 'support-bot'\n"
        "project_name: \"Support Bot\"\npython_version: '3.12'\n"
    )

    answers = upgrade.parse_answers(text)

    assert answers["package_name"] == "support_bot"
    assert answers["project_slug"] == "support-bot"
    assert answers["project_name"] == "Support Bot"
    assert answers["python_version"] == "3.12"
    assert "llm_providers" not in answers


# -- imports -------------------------------------------------------------------------------

TABLE_DATA: dict[str, Any] = {
    "modules": {
        "{package}.llm.types": {
            "Message": {"to": "airuntime", "as": "Message"},
            "Usage": {"to": "airuntime", "as": "Usage"},
        },
        "{package}.llm.retry": {
            "RetryPolicy": {"to": "airuntime", "as": "RetryPolicy"},
            "LLMError": {"to": "airuntime", "as": "LLMError"},
        },
        "{package}.llm": {},
        "{package}.features.system": {
            "FeatureOutput": {"to": "airuntime", "as": "FeatureOutput"},
            "Settings": {"to": "{package}.settings", "as": "Settings"},
            "build_system": {
                "to": "{package}.wiring",
                "as": "build_system",
                "keywords": {"telemetry": "observer", "clients": "providers"},
            },
            "open_system": {"to": None, "note": "use wiring.build_system"},
        },
        "{package}.llm.runtime": {
            "build_resilient_client": {
                "to": "{package}.wiring",
                "as": "resilient_client",
                "keywords": {"clients": "providers", "mock_rules": None},
                "keyword_note": "pass them to wiring.clients",
            }
        },
        "{package}.llm.factory": {
            "build_mock": {"to": "airuntime", "as": "build_mock", "call_note": "takes a config"}
        },
        "{package}.evals.cli": {
            "eval_app": {"to": "airuntime", "as": "eval_app", "use_note": "now a function"}
        },
    },
    "kept_modules": ["{package}", "{package}.settings", "{package}.features"],
    "contracts": [
        {"source": "{package}.features", "forbidden": "{package}.settings", "why": "wiring reads"}
    ],
}
TABLE = upgrade.ImportTable(TABLE_DATA, "bot")


def rewritten(text: str, path: str = "src/bot/mine.py") -> str:
    result = upgrade.rewrite_source(text, path, TABLE)
    return str(result.text)


def test_names_move_to_airuntime_and_wiring_keeping_what_the_code_calls_them() -> None:
    text = (
        "from bot.llm.types import Message, Usage as Tokens\n"
        "from bot.llm.runtime import build_resilient_client\n"
        "from bot.features.system import FeatureOutput, Settings, build_system\n"
        "\n\nx = 1\n"
    )

    assert rewritten(text) == (
        "from airuntime import Message, Usage as Tokens\n"
        "from bot.wiring import resilient_client as build_resilient_client\n"
        "from airuntime import FeatureOutput\n"
        "from bot.settings import Settings\n"
        "from bot.wiring import build_system\n"
        "\n\nx = 1\n"
    )


def test_a_name_without_counterpart_stays_in_its_old_import_and_is_reported(
    tmp_path: Path,
) -> None:
    text = "from bot.features.system import FeatureOutput, open_system\n"

    new = rewritten(text)
    found = upgrade.findings(new, "src/bot/mine.py", tmp_path, TABLE, {})

    assert (
        new == "from airuntime import FeatureOutput\nfrom bot.features.system import open_system\n"
    )
    assert found == [
        "src/bot/mine.py:2: bot.features.system.open_system has no public counterpart: "
        "use wiring.build_system"
    ]


def test_relative_imports_inside_the_package_are_rewritten_to_absolute_ones() -> None:
    text = "from ..llm.types import Message\nfrom .system import build_system\n"

    assert rewritten(text, "src/bot/features/escalate.py") == (
        "from airuntime import Message\nfrom bot.wiring import build_system\n"
    )
    assert rewritten("from .types import Message\n", "src/bot/llm/__init__.py") == (
        "from airuntime import Message\n"
    )
    beyond = "from ...llm.types import Message\n"
    assert rewritten(beyond, "src/bot/features/escalate.py") == beyond


def test_an_import_in_a_function_keeps_its_indentation_and_a_long_one_is_wrapped() -> None:
    text = (
        "def test_it() -> None:\n"
        "    from bot.llm.types import (\n"
        "        Message,\n"
        "    )\n"
        "\n"
        "    assert Message\n"
    )
    aliases = [f"RetryPolicy as A{number}{'x' * 30}" for number in range(3)]
    many = f"from bot.llm.retry import {', '.join(aliases)}\n"

    assert rewritten(text) == (
        "def test_it() -> None:\n    from airuntime import Message\n\n    assert Message\n"
    )
    wrapped = rewritten(many)
    assert wrapped.startswith("from airuntime import (\n    RetryPolicy as A")
    assert all(len(line) <= 100 for line in wrapped.splitlines())
    ast.parse(wrapped)


def test_comments_inside_a_rewritten_import_are_kept_above_it() -> None:
    text = "from bot.llm.types import (  # the model boundary\n    Message,  # ours\n)\nx = 1\n"

    assert rewritten(text) == (
        "# the model boundary\n# ours\nfrom airuntime import Message\nx = 1\n"
    )


def test_only_import_statements_change_and_a_second_rewrite_changes_nothing() -> None:
    text = (
        '"""Mine: from bot.llm.types import Message is how v0.1.0 said it."""\n'
        "import os  # keep\n"
        "from bot.llm.types import Message  # the message type\n"
        "from bot.settings import load_settings\n"
        "x = Message(role='user', content=os.sep)\n"
    )

    once = rewritten(text)
    result = upgrade.rewrite_source(once, "src/bot/mine.py", TABLE)

    assert once == text.replace(
        "from bot.llm.types import Message  #", "from airuntime import Message  #"
    )
    assert not result.changed
    assert result.text == once


def test_line_ends_and_unusual_characters_before_an_import_keep_the_offsets_right() -> None:
    text = (
        '"""Caf\u00e9 \x0c page \u2028 break."""\r\n'
        "from bot.features.system import FeatureOutput, Settings\r\nx = 1\r\n"
    )

    assert rewritten(text) == (
        '"""Caf\u00e9 \x0c page \u2028 break."""\r\n'
        "from airuntime import FeatureOutput\r\nfrom bot.settings import Settings\r\nx = 1\r\n"
    )


def test_other_files_and_unparsable_ones_are_left_alone() -> None:
    plain = "from bot.settings import Settings\nimport httpx\n"
    broken = "from bot.llm.types import (\n"

    assert not upgrade.rewrite_source(plain, "tests/test_x.py", TABLE).changed
    assert not upgrade.rewrite_source(broken, "tests/test_x.py", TABLE).changed


def findings_of(text: str, tmp_path: Path, path: str = "tests/test_mine.py") -> list[str]:
    result = upgrade.rewrite_source(text, path, TABLE)
    found: list[str] = upgrade.findings(result.text, path, tmp_path, TABLE, result.watched)
    return found


def test_renamed_and_removed_keywords_are_reported_at_their_calls(tmp_path: Path) -> None:
    text = (
        "from bot.features.system import build_system\n"
        "from bot.llm.runtime import build_resilient_client\n"
        "\n"
        "system = build_system(settings, telemetry=t, review=False)\n"
        "client = build_resilient_client(settings, clients=c, mock_rules=r)\n"
        "other = build_system(settings)\n"
    )

    assert findings_of(text, tmp_path) == [
        "tests/test_mine.py:4: build_system(telemetry=...): the keyword is observer= in 0.2.0",
        "tests/test_mine.py:5: build_resilient_client(clients=...): the keyword is providers= "
        "in 0.2.0",
        "tests/test_mine.py:5: build_resilient_client(mock_rules=...): the keyword is gone in "
        "0.2.0 (pass them to wiring.clients)",
    ]


def test_calls_and_uses_with_notes_are_reported(tmp_path: Path) -> None:
    text = (
        "from bot.llm.factory import build_mock\n"
        "from bot.evals.cli import eval_app\n"
        "\n"
        "mock = build_mock(settings)\n"
        "app.add_typer(eval_app)\n"
    )

    assert findings_of(text, tmp_path) == [
        "tests/test_mine.py:4: build_mock(...): takes a config",
        "tests/test_mine.py:5: eval_app: now a function",
    ]


def test_what_cannot_be_rewritten_is_reported(tmp_path: Path) -> None:
    text = (
        "import bot.llm.types\n"
        "from bot import llm\n"
        "from bot.llm.types import *\n"
        "from bot.llm.retry import Deadline\n"
        "PATCHED = 'bot.llm.retry.RetryPolicy'\n"
    )

    found = findings_of(text, tmp_path)

    assert [line.split(":", 2)[1] for line in found] == ["1", "2", "3", "4", "5"]
    assert "`import bot.llm.types`: 0.2.0 has no module bot.llm.types" in found[0]
    assert "`from bot import llm`: 0.2.0 has no module bot.llm" in found[1]
    assert "`from bot.llm.types import *`" in found[2]
    assert "bot.llm.retry.Deadline has no public counterpart: 0.2.0 keeps it inside" in found[3]
    assert "the string 'bot.llm.retry.RetryPolicy' names bot.llm.retry" in found[4]


def test_names_the_kept_modules_no_longer_have_are_reported(tmp_path: Path) -> None:
    (tmp_path / "src" / "bot").mkdir(parents=True)
    (tmp_path / "src" / "bot" / "settings.py").write_text(
        "from airuntime import ConfigurationError\n\nclass Settings: ...\n"
        "def load_settings() -> Settings: ...\n"
    )
    text = "from bot.settings import ConfigurationError, Settings, describe_validation_error\n"

    assert findings_of(text, tmp_path) == [
        "tests/test_mine.py:1: bot.settings has no describe_validation_error in 0.2.0: see what "
        "src/bot/settings offers now"
    ]


def test_an_import_of_an_example_the_project_dropped_is_reported(tmp_path: Path) -> None:
    table = upgrade.ImportTable({**TABLE_DATA, "kept_modules": ["{package}.features.demo"]}, "bot")
    text = "from bot.features.demo import run_demo\n"

    found = upgrade.findings(text, "tests/test_demo.py", tmp_path, table, {})

    assert found == [
        "tests/test_demo.py:1: there is no bot.features.demo in the project now (0.2.0 makes the "
        "example features only when include_examples is true)"
    ]


def test_a_feature_reading_the_settings_is_reported_with_the_contract(tmp_path: Path) -> None:
    (tmp_path / "src" / "bot").mkdir(parents=True)
    (tmp_path / "src" / "bot" / "settings.py").write_text("class Settings: ...\n")
    text = "from bot.settings import Settings\nfrom bot import settings\n"

    found = findings_of(text, tmp_path, "src/bot/features/mine.py")

    assert found == [
        f"src/bot/features/mine.py:{line}: bot.features may not import bot.settings in 0.2.0 "
        "(import-linter): wiring reads"
        for line in (1, 2)
    ]
    assert findings_of(text, tmp_path, "src/bot/cli_extra.py") == []


# -- the whole step on a small project ------------------------------------------------------

STEP_DATA: dict[str, Any] = {
    **TABLE_DATA,
    "placeholders": PLACEHOLDERS,
    "files": {
        "src/{package}/llm/retry.py": {
            "variants": [variant(RETRY_TEMPLATE)],
            "homes": ["runtime/src/airuntime/resilience/retry.py"],
            "hint": "the RETRY_* settings",
        },
        "src/{package}/llm/__init__.py": {"variants": [variant(b'"""LLM."""\n')], "homes": []},
        "src/{package}/llm/types.py": {
            "variants": [variant(b"class Message: ...\n")],
            "homes": ["runtime/src/airuntime/types.py"],
        },
        "src/{package}/features/summarize.py": {
            "variants": [variant(b"# summarize\n")],
            "homes": ["src/{package}/features/summarize.py"],
            "examples": True,
        },
    },
}
ANSWERS = "_commit: v0.1.0\npackage_name: bot\nproject_slug: bot-slug\n"


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout


def commit(project: Path, message: str) -> None:
    git(project, "add", "--all")
    identity = ["-c", "user.name=Tests", "-c", "user.email=tests@example.com"]
    git(project, *identity, "commit", "--quiet", "--no-verify", "-m", message)


def v0_1_project(tmp_path: Path, *, edit_retry: bool = True) -> Path:
    """A v0.1.0 project whose last commit has an edited retry.py and a module of the user's,
    with the working tree as Copier's update leaves it (old runtime files deleted)."""
    project = tmp_path / "project"
    package = project / "src" / "bot"
    (package / "llm").mkdir(parents=True)
    (package / "features").mkdir()
    git(project, "init", "--quiet")
    (project / ".copier-answers.yml").write_text(ANSWERS)
    (package / "llm" / "retry.py").write_bytes(render(RETRY_TEMPLATE, "bot", "bot-slug"))
    (package / "llm" / "__init__.py").write_bytes(b'"""LLM."""\n')
    (package / "llm" / "types.py").write_bytes(b"class Message: ...\n")
    (package / "features" / "summarize.py").write_bytes(b"# summarize\n")
    commit(project, "v0.1.0 as generated")
    if edit_retry:
        retry = package / "llm" / "retry.py"
        retry.write_bytes(retry.read_bytes() + b"\nMAX_ATTEMPTS = 5  # ours\n")
    (package / "llm" / "ours.py").write_text("from .types import Message\n")
    (package / "features" / "mine.py").write_text(
        "from bot.llm.types import Message\nfrom bot.features.system import build_system\n\n"
        "system = build_system(settings, telemetry=None)\n"
    )
    commit(project, "our work")
    for name in ("retry.py", "__init__.py", "types.py"):  # what Copier's update deletes
        (package / "llm" / name).unlink()
    return project


def files(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def test_the_step_keeps_changed_files_rewrites_imports_and_says_what_is_left(
    tmp_path: Path,
) -> None:
    project = v0_1_project(tmp_path)
    committed_retry = git(project, "show", "HEAD:src/bot/llm/retry.py").encode()

    outcome = upgrade.upgrade(project, STEP_DATA, run_tools=False)

    kept = project / "legacy/v0.1.0/src/bot/llm/retry.py"
    assert kept.read_bytes() == committed_retry
    assert not (project / "legacy/v0.1.0/src/bot/llm/types.py").exists()  # pristine: not kept
    assert (project / "legacy/v0.1.0/ruff.toml").read_text() == upgrade.RUFF_TOML
    readme = (project / "legacy/v0.1.0/README.md").read_text()
    first = git(project, "rev-list", "--max-parents=0", "HEAD").strip()[:12]
    head = git(project, "rev-parse", "HEAD").strip()[:12]
    assert (
        "- `src/bot/llm/retry.py`\n"
        "  - its code in 0.2.0: `runtime/src/airuntime/resilience/retry.py`\n"
        f"  - your changes: `git diff {first} {head} -- src/bot/llm/retry.py`\n"
        "  - often no code is needed: the RETRY_* settings\n"
    ) in readme
    assert "<<<<<<<" not in readme
    assert all(line == line.rstrip() for line in readme.splitlines())
    assert (project / "src/bot/features/mine.py").read_text() == (
        "from airuntime import Message\nfrom bot.wiring import build_system\n\n"
        "system = build_system(settings, telemetry=None)\n"
    )
    assert (project / "src/bot/llm/ours.py").read_text() == "from airuntime import Message\n"
    assert outcome.done == [
        "removed 2 files of v0.1.0's runtime that you had not changed (their code is in "
        "runtime/ and wiring.py now)",
        "kept 1 file of v0.1.0 that you had changed, as committed, in legacy/v0.1.0/ (Copier "
        "deletes what 0.2.0 no longer has; README.md there says where the code is now):",
        "  legacy/v0.1.0/src/bot/llm/retry.py (its code: "
        "runtime/src/airuntime/resilience/retry.py)",
        "rewrote the old imports of 2 files of yours to airuntime's public API and bot.wiring:",
        "  src/bot/features/mine.py",
        "  src/bot/llm/ours.py",
    ]
    assert outcome.fixes == [
        "src/bot/features/mine.py:4: build_system(telemetry=...): the keyword is observer= in 0.2.0"
    ]
    assert outcome.todo == [
        "port your changes kept in legacy/v0.1.0/ (legacy/v0.1.0/README.md says how), then "
        "delete it: `rm -r legacy/v0.1.0`",
        "src/bot/llm/ours.py is yours and stays, but its directory is no package any more (its "
        "__init__.py went with the old runtime): move it into your package or add one",
    ]


def test_the_step_a_second_time_changes_nothing(tmp_path: Path) -> None:
    project = v0_1_project(tmp_path)
    upgrade.upgrade(project, STEP_DATA, run_tools=False)
    before = files(project)

    outcome = upgrade.upgrade(project, STEP_DATA, run_tools=False)

    assert files(project) == before
    assert not any(line.startswith("rewrote") for line in outcome.done)


def test_the_step_never_overwrites_a_file_already_in_legacy(tmp_path: Path) -> None:
    project = v0_1_project(tmp_path)
    mine = project / "legacy/v0.1.0/src/bot/llm/retry.py"
    mine.parent.mkdir(parents=True)
    mine.write_text("something of the user's\n")

    outcome = upgrade.upgrade(project, STEP_DATA, run_tools=False)

    assert mine.read_text() == "something of the user's\n"
    assert outcome.todo[0] == (
        "legacy/v0.1.0/src/bot/llm/retry.py already exists and is not your committed "
        "src/bot/llm/retry.py, so it was left alone: see yours with "
        "`git show HEAD:src/bot/llm/retry.py`"
    )


def test_nothing_is_kept_when_the_user_changed_no_old_file(tmp_path: Path) -> None:
    project = v0_1_project(tmp_path, edit_retry=False)

    outcome = upgrade.upgrade(project, STEP_DATA, run_tools=False)

    assert not (project / "legacy").exists()
    assert outcome.done[0].startswith("removed 3 files of v0.1.0's runtime")


def test_a_project_already_on_the_new_layout_is_left_as_it_is(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src" / "bot" / "features").mkdir(parents=True)
    git(project, "init", "--quiet")
    (project / ".copier-answers.yml").write_text(ANSWERS)
    (project / "src/bot/features/summarize.py").write_bytes(b"# summarize\n")
    commit(project, "0.2.0")
    before = files(project)

    outcome = upgrade.upgrade(project, STEP_DATA, run_tools=False)

    assert outcome.done == [
        "nothing to upgrade: the last commit has none of v0.1.0's runtime files"
    ]
    assert files(project) == before


def test_without_answers_nothing_is_touched_and_the_report_says_why(tmp_path: Path) -> None:
    project = v0_1_project(tmp_path)
    (project / ".copier-answers.yml").unlink()
    git(project, "rm", "--quiet", "--cached", ".copier-answers.yml")
    commit(project, "no answers")
    before = files(project)

    outcome = upgrade.upgrade(project, STEP_DATA, run_tools=False)

    assert files(project) == before
    assert outcome.todo[0].startswith(".copier-answers.yml does not say package_name")


def test_the_lock_is_not_refreshed_without_uv_or_with_conflicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setattr(upgrade.shutil, "which", lambda _: None)
    outcome = upgrade.Outcome()

    assert not upgrade.refresh_lock(tmp_path, outcome)
    assert outcome.todo == [
        "uv is not on PATH, so uv.lock was not refreshed: install uv, then run `uv lock` (the "
        "dependencies changed completely in 0.2.0)"
    ]
    (tmp_path / "pyproject.toml").write_text("<<<<<<< before updating\n")
    assert not upgrade.refresh_lock(tmp_path, outcome)
    assert outcome.todo[-1].startswith("pyproject.toml has conflict markers")


def test_report_numbers_what_is_left_and_names_fixes_first() -> None:
    outcome = upgrade.Outcome(done=["did a", "  detail"], fixes=["x.py:1: fix"], todo=["port"])

    assert upgrade.report(outcome) == [
        "upgrading from the v0.1.0 layout (the runtime is now airuntime, in runtime/):",
        "  did a",
        "    detail",
        "left for you to do, then make validate-branch and commit:",
        "  1. x.py:1: fix",
        "  2. port",
    ]


def test_the_script_labels_each_unindented_line_with_the_version(tmp_path: Path) -> None:
    project = v0_1_project(tmp_path)
    env = {**os.environ, "STAGE": "after", "VERSION_PEP440_CURRENT": "0.2.0", "PATH": ""}

    result = subprocess.run(  # no uv on PATH: the lock is left to the user, who is told
        [sys.executable, str(HOOKS / "migrate.py"), "runtime-split"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "migration 0.2.0: upgrading from the v0.1.0 layout (the runtime is now airuntime, in "
        "runtime/):"
    )
    assert all(line.startswith(("migration 0.2.0: ", "  ")) for line in lines)


def test_the_step_refuses_the_before_stage_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(migrate.MigrationError, match="runs in the 'after' stage"):
        migrate.run(["runtime-split"], tmp_path, {"STAGE": "before"})
    with pytest.raises(migrate.MigrationError, match=r"^usage:"):
        migrate.run(["runtime-split", "extra"], tmp_path, {})


# -- the data file and the template it describes -------------------------------------------

WIRING = REPO_ROOT / "template" / "src" / "{{ package_name }}" / "wiring.py.jinja"


def public_api() -> set[str]:
    init = REPO_ROOT / "template" / "runtime" / "src" / "airuntime" / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
            return set(ast.literal_eval(node.value))
    raise AssertionError("airuntime has no __all__")


def template_files() -> set[str]:
    """The template's files as a project has them (conditions and .jinja dropped)."""
    template = REPO_ROOT / "template"
    return {
        re.sub(r"\{%[^%]*%\}([^{}/]*)\{% endif %\}", r"\1", path.relative_to(template).as_posix())
        .replace("{{ package_name }}", "{package}")
        .removesuffix(".jinja")
        for path in template.rglob("*")
        if path.is_file()
    }


def test_every_name_the_data_points_to_still_exists() -> None:
    api = public_api()
    present = template_files()
    wiring = WIRING.read_text(encoding="utf-8")
    for module, entries in DATA["modules"].items():
        for name, entry in entries.items():
            where = f"{module}.{name} -> {entry}"
            if entry["to"] == "airuntime":
                assert entry["as"] in api, where
            elif entry["to"] == "{package}.wiring":
                assert re.search(rf"^(def {entry['as']}\(|{entry['as']}\b.*=)", wiring, re.M), where
            elif entry["to"] is not None:
                relative = "src/" + entry["to"].replace(".", "/")
                assert {f"{relative}.py", f"{relative}/__init__.py"} & present, where
            else:
                assert entry.get("note"), where


def test_every_file_the_data_says_is_removed_is_absent_from_the_template() -> None:
    present = template_files()
    for path, entry in DATA["files"].items():
        assert (path in present) == bool(entry.get("examples")), path
        for home in entry["homes"]:
            assert home.split(" ")[0] in present, f"{path}: {home}"


def test_the_contracts_the_step_explains_are_the_projects() -> None:
    pyproject = (REPO_ROOT / "template" / "pyproject.toml.jinja").read_text(encoding="utf-8")
    for contract in DATA["contracts"]:
        for key in ("source", "forbidden"):
            assert contract[key].replace("{package}", "{{ package_name }}") in pyproject


def test_the_data_recognises_a_real_v0_1_render(tmp_path: Path) -> None:
    """Rendered from git history with a package name that is a word of the runtime's code."""
    has_commit = subprocess.run(
        ["git", "cat-file", "-t", OLD_COMMIT], cwd=REPO_ROOT, capture_output=True, check=False
    )
    if has_commit.stdout != b"commit\n":
        pytest.skip("v0.1.0's commit is not in this clone (shallow); the update tier needs it")
    import copier

    answers = {"project_name": "Retry", "llm_providers": ["openai", "anthropic"]}
    copier.run_copy(
        str(REPO_ROOT),
        tmp_path / "p",
        data=answers,
        vcs_ref=OLD_COMMIT,
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
    )
    names = {"p": "retry", "s": "retry"}
    checked = 0
    for template_path, entry in DATA["files"].items():
        path = tmp_path / "p" / template_path.replace("{package}", "retry")
        content = path.read_bytes()
        assert upgrade.pristine(content, entry["variants"], names, PLACEHOLDERS), template_path
        assert not upgrade.pristine(content + b"\n", entry["variants"], names, PLACEHOLDERS)
        checked += 1
    assert checked == len(DATA["files"])
