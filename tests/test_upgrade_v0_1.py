"""Update tier: a project made with v0.1.0 upgrades to this version and loses nothing.

v0.1.0 (commit c4882c8) rendered the runtime into the project's own package; this version
vendors it in runtime/ (airuntime) and keeps a thin app shell. The test builds, in a temporary
clone of this repository, the tag v0.1.0 on c4882c8 and a commit of the template as it is now
on top, tagged with its version. It copies a project at v0.1.0 with non-default answers, works
on it as a team would (an edited runtime file, a feature and tests of its own importing the old
paths, a new setting), runs the OLD project's `make update-template`, and checks what the
`runtime-split` migration promised: the edited file kept byte for byte in legacy/v0.1.0/, the
user's imports rewritten, every line the user wrote still somewhere, the answers on the new
version, and, once the user has done what the update listed, `make validate-branch` green.
"""

from __future__ import annotations

import ast
import difflib
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.rendering import REPO_ROOT, answers_for, load_answers_file, snapshot_template
from tests.test_update import (
    MAKE_COPIER,
    TemplateRepo,
    commit_all,
    copier_copy,
    files_in,
    git,
    insert_user_setting,
    run,
)

pytestmark = [pytest.mark.update, pytest.mark.slow]

OLD_COMMIT = "c4882c81661d4ab96857a0bcb9104da8a1f87064"
OLD_VERSION = "0.1.0"
LEGACY = "legacy/v0.1.0"

ANSWERS: dict[str, Any] = {  # not the defaults, so nothing passes by accident
    "project_name": "Escalation Desk",
    "description": "Routes escalated support tickets and drafts the first reply.",
    "author_name": "Ada Lovelace",
    "author_email": "ada@example.org",
    "python_version": "3.12",
    "llm_providers": ["anthropic"],
    "license": "Apache-2.0",
    "ci": "github",
}
PACKAGE = answers_for(ANSWERS)["package_name"]

# A change to a runtime file that 0.2.0 removes from the package.
RETRY = f"src/{PACKAGE}/llm/retry.py"
RETRY_BEFORE = "    max_attempts: int = 3\n"
RETRY_AFTER = "    max_attempts: int = 4  # the escalation provider drops calls at peak hours\n"
# A feature of the team's own, and its tests, written against v0.1.0's modules.
FEATURE = f"src/{PACKAGE}/features/escalate.py"
FEATURE_TEXT = f'''"""Escalation notes for the on-call engineer (a feature of the team's own)."""

from __future__ import annotations

from {PACKAGE}.features.system import FeatureOutput
from {PACKAGE}.guardrails import clean_text
from {PACKAGE}.llm.types import Message

NOTE_LIMIT = 2_000


class Escalation(FeatureOutput):
    """Which queue an escalated ticket goes to."""

    queue: str


def escalation_note(text: str) -> Message:
    """The message asking for an escalation, the ticket's text cleaned for the prompt."""
    return Message(role="user", content=clean_text(text, limit=NOTE_LIMIT))
'''
UNIT_TEST = "tests/unit/test_escalate.py"
UNIT_TEST_TEXT = f"""from {PACKAGE}.features.escalate import Escalation, escalation_note
from {PACKAGE}.llm.types import Message


def test_the_note_is_the_cleaned_ticket_as_a_user_message() -> None:
    note = escalation_note("Printer\\x00 on fire")

    assert note == Message(role="user", content="Printer on fire")


def test_an_escalation_names_its_queue() -> None:
    assert Escalation(confidence=0.9, queue="billing").queue == "billing"
"""
FUNCTIONAL_TEST = "tests/functional/test_escalate.py"
FUNCTIONAL_TEST_TEXT = f"""from pathlib import Path

from {PACKAGE}.features.system import build_system
from {PACKAGE}.observability.telemetry import Telemetry
from {PACKAGE}.settings import load_settings


async def test_a_quiet_system_runs_offline_and_queues_nothing(tmp_path: Path) -> None:
    settings = load_settings(llm_provider="mock", review_queue_path=tmp_path / "review.jsonl")
    system = build_system(settings, telemetry=Telemetry(), review=False)
    try:
        assert system.offline
        assert system.review_queue is None
    finally:
        await system.aclose()
"""
USER_SETTING = (
    '    support_queue: str = Field(default="triage", description="Queue of escalated tickets.")\n'
)
USER_ENV_LINES = "\n# Queue of escalated tickets.\nSUPPORT_QUEUE=triage\n"
# What the migration must say about the user's code.
KEPT_LINE = f"    {LEGACY}/{RETRY} (its code: runtime/src/airuntime/resilience/retry.py)"
KEYWORD_CALL = "build_system(settings, telemetry=Telemetry(), review=False)"  # in FUNCTIONAL_TEST
# The old modules the user's files imported (none may be left).
OLD_MODULES = ("features.system", "guardrails", "llm.types", "observability.telemetry")


def version_of(pyproject: Path) -> str:
    return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


def numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@pytest.fixture(scope="module")
def template_repo(
    tmp_path_factory: pytest.TempPathFactory, tool_env: dict[str, str]
) -> TemplateRepo:
    """This repository's history with v0.1.0 tagged, and the template as it is now on top."""
    found = subprocess.run(
        ["git", "cat-file", "-t", OLD_COMMIT], cwd=REPO_ROOT, capture_output=True, check=False
    )
    if found.stdout != b"commit\n":  # a shallow clone, or an unpacked archive
        pytest.fail(f"v0.1.0's commit {OLD_COMMIT[:7]} is not in this clone: git fetch --unshallow")
    new = version_of(REPO_ROOT / "pyproject.toml")  # the version being released
    assert numbers(new) > numbers(OLD_VERSION), new
    root = tmp_path_factory.mktemp("upgrade-repo") / "copier-ai-system"
    run(
        ["git", "clone", "--quiet", "--shared", "--no-checkout", str(REPO_ROOT), str(root)],
        REPO_ROOT,
        tool_env,
    )
    git(root, tool_env, "tag", f"v{OLD_VERSION}", OLD_COMMIT)
    git(root, tool_env, "checkout", "--quiet", "--detach", OLD_COMMIT)
    git(root, tool_env, "rm", "-r", "--quiet", ".")
    current = snapshot_template(tmp_path_factory.mktemp("upgrade-snapshot") / "template")
    shutil.copytree(current, root, dirs_exist_ok=True)
    commit_all(root, tool_env, f"Template {new}")
    git(root, tool_env, "tag", f"v{new}")
    return TemplateRepo(root, OLD_VERSION, new)


def make_user_edits(project: Path) -> None:
    """A team's first weeks on v0.1.0: a runtime tweak, a feature and tests, a setting."""
    retry = project / RETRY
    text = retry.read_text(encoding="utf-8")
    assert text.count(RETRY_BEFORE) == 1
    retry.write_text(text.replace(RETRY_BEFORE, RETRY_AFTER), encoding="utf-8")
    (project / FEATURE).write_text(FEATURE_TEXT, encoding="utf-8")
    (project / UNIT_TEST).write_text(UNIT_TEST_TEXT, encoding="utf-8")
    (project / FUNCTIONAL_TEST).write_text(FUNCTIONAL_TEST_TEXT, encoding="utf-8")
    settings = project / "src" / PACKAGE / "settings.py"
    settings.write_text(insert_user_setting(settings.read_text(encoding="utf-8")), encoding="utf-8")
    with (project / ".env.example").open("a", encoding="utf-8") as env_example:
        env_example.write(USER_ENV_LINES)


def import_lines(text: str) -> set[int]:
    """The numbers (1-based) of the lines that belong to import statements."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            lines |= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def without_imports(text: str) -> list[str]:
    """The lines of a module that are not imports (nor blank: sorting imports moves those)."""
    skipped = import_lines(text)
    lines = enumerate(text.splitlines(), 1)
    return [line for number, line in lines if number not in skipped and line.strip()]


def imported_names(text: str) -> set[str]:
    """The local names a module's imports bind."""
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def added_lines(before: str, after: str) -> list[str]:
    """The lines `after` has that `before` does not (what the user wrote)."""
    return [
        line[2:]
        for line in difflib.ndiff(before.splitlines(), after.splitlines())
        if line.startswith("+ ")
    ]


def assert_nothing_lost(
    project: Path,
    committed: Mapping[str, bytes],
    pristine: Mapping[str, bytes],
    rewritten: set[str],
) -> None:
    """Every file the user had committed is still there with every line they wrote, or was
    the template's own v0.1.0 file, or is kept in legacy/ byte for byte."""
    for path, content in committed.items():
        if path in {"uv.lock", ".copier-answers.yml"}:
            continue  # made by tools: refreshed by the update
        current = project / path
        kept = project / LEGACY / path
        if not current.exists():
            if path in pristine and content == pristine[path]:
                continue  # the template's own file, unchanged: its code is in runtime/ now
            assert kept.read_bytes() == content, f"{path} is lost"
            continue
        now = current.read_text(encoding="utf-8")
        text = content.decode("utf-8")
        if path in rewritten:
            assert without_imports(now) == without_imports(text), path
            assert imported_names(now) == imported_names(text), path
        elif path not in pristine:
            assert current.read_bytes() == content, path
        else:  # a template file the user changed: each line they added is still in it
            for line in added_lines(pristine[path].decode("utf-8"), text):
                assert line in now.splitlines(), f"{path} lost the user's line {line!r}"


def test_a_v0_1_project_upgrades_keeping_every_user_edit_and_ends_green(
    template_repo: TemplateRepo, tmp_path: Path, tool_env: dict[str, str]
) -> None:
    project = tmp_path / "escalation-desk"
    copier_copy(
        template_repo, project, OLD_VERSION, ANSWERS, tool_env, "--trust"
    )  # v0.1.0 had a task
    run(["make", "init"], project, tool_env)
    commit_all(project, tool_env, "Lock the dependencies")
    make_user_edits(project)
    commit_all(project, tool_env, "Our first weeks of work")
    committed = {path: (project / path).read_bytes() for path in files_in(project, tool_env)}
    reference = tmp_path / "reference-v0.1.0"
    copier_copy(template_repo, reference, OLD_VERSION, ANSWERS, tool_env, "--skip-tasks")
    pristine = {
        path.relative_to(reference).as_posix(): path.read_bytes()
        for path in reference.rglob("*")
        if path.is_file()
    }

    # The OLD project's Makefile runs the update, as it will for every v0.1.0 user.
    update = subprocess.run(
        ["make", "update-template", MAKE_COPIER, "UPDATE_ARGS=--defaults"],
        cwd=project,
        env=tool_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = update.stdout + update.stderr
    print(output)  # shown when the test fails (and with -s): the update as a user sees it
    label = f"migration {template_repo.new}:"

    # It said what it did and what is left, once.
    assert output.count(f"{label} upgrading from the v0.1.0 layout") == 1, output
    assert KEPT_LINE in output.splitlines(), output
    assert f"    {FEATURE}" in output.splitlines(), output
    assert f"    {UNIT_TEST}" in output.splitlines(), output
    assert f"    {FUNCTIONAL_TEST}" in output.splitlines(), output
    assert "  uv.lock refreshed for 0.2.0's dependencies (uv lock)" in output, output
    assert f"{label} left for you to do, then make validate-branch and commit:" in output
    test_lines = (project / FUNCTIONAL_TEST).read_text(encoding="utf-8").splitlines()
    call_line = next(n for n, line in enumerate(test_lines, 1) if KEYWORD_CALL in line)
    keyword = (
        f"{FUNCTIONAL_TEST}:{call_line}: build_system(telemetry=...): the keyword is observer="
    )
    assert f". {keyword} in 0.2.0\n" in output, output
    assert f"then delete it: `rm -r {LEGACY}`" in output, output

    # The edited runtime file survives, byte for byte, with a note; nothing else is kept.
    assert not (project / RETRY).exists()
    assert (project / LEGACY / RETRY).read_bytes() == committed[RETRY]
    readme = (project / LEGACY / "README.md").read_text(encoding="utf-8")
    assert f"- `{RETRY}`\n  - its code in 0.2.0: `runtime/src/airuntime/resilience/retry.py`" in (
        readme
    )
    kept = {
        path.relative_to(project / LEGACY).as_posix()
        for path in (project / LEGACY).rglob("*")
        if path.is_file()
    }
    assert kept == {"README.md", "ruff.toml", RETRY}

    # The user's code imports the new paths only, and nothing the user wrote is lost.
    rewritten = {FEATURE, UNIT_TEST, FUNCTIONAL_TEST}
    for path in rewritten:
        text = (project / path).read_text(encoding="utf-8")
        assert "from airuntime import" in text, text
        for module in OLD_MODULES:
            assert f"{PACKAGE}.{module}" not in text, text
    assert f"from {PACKAGE}.wiring import build_system\n" in (project / FUNCTIONAL_TEST).read_text()
    assert_nothing_lost(project, committed, pristine, rewritten)
    assert (project / "uv.lock").read_bytes() != committed["uv.lock"]

    # The answers record the new version and kept every answer.
    recorded = load_answers_file(project)
    assert recorded["_commit"] == f"v{template_repo.new}"
    assert {key: recorded[key] for key in ANSWERS} == ANSWERS
    assert recorded["include_examples"] is True

    # Run again (as Copier never would), the step changes nothing.
    before = {path: (project / path).read_bytes() for path in files_in(project, tool_env)}
    again = run(
        [sys.executable, str(REPO_ROOT / "hooks" / "migrate.py"), "runtime-split"],
        project,
        {**tool_env, "STAGE": "after"},
    )
    assert "rewrote" not in again.stdout, again.stdout
    assert {path: (project / path).read_bytes() for path in files_in(project, tool_env)} == before

    # What the user does with the list: resolve any conflict (take the template's side), fix
    # the reported call, port the retry change to the vendored runtime, then validate and commit.
    conflicts = git(project, tool_env, "diff", "--name-only", "--diff-filter=U")
    assert conflicts == "", f"unexpected conflicts:\n{output}"
    assert update.returncode == 0, output
    functional = project / FUNCTIONAL_TEST
    text = functional.read_text(encoding="utf-8")
    functional.write_text(text.replace("telemetry=Telemetry()", "observer=Telemetry()"))
    runtime_retry = project / "runtime" / "src" / "airuntime" / "resilience" / "retry.py"
    text = runtime_retry.read_text(encoding="utf-8")
    assert text.count(RETRY_BEFORE) == 1  # ported where the code is now (option 4 of the README)
    runtime_retry.write_text(text.replace(RETRY_BEFORE, RETRY_AFTER), encoding="utf-8")
    run(["make", "init"], project, tool_env)
    validated = run(["make", "validate-branch"], project, tool_env)  # legacy/ still there
    assert "validate-branch: all checks passed" in validated.stdout
    # legacy/ passes every pre-commit hook (committed for later porting, say), then goes.
    git(project, tool_env, "add", "--all")
    git(project, tool_env, "commit", "--quiet", "--message", "Update to the template's 0.2.0")
    git(project, tool_env, "rm", "-r", "--quiet", LEGACY)
    git(project, tool_env, "commit", "--quiet", "--no-verify", "--message", "Ported: no legacy")
    assert git(project, tool_env, "status", "--porcelain", "--untracked-files=all") == ""
