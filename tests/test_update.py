"""Update tier: `copier update` from template version N to N+1 loses nothing.

Each test module run builds, in a temporary directory, a git repository of the template as it is
now, tagged N (the version in pyproject.toml), and a version N+1 made from it by code, so the
tests keep working as the template grows. N+1 adds a question with a default and a file that
uses it, changes the help of a Makefile target, changes the README's first line (which the user
changes too), adds a dependency to the runtime (so the project's uv.lock goes stale) and moves a
file, with the shipped `hooks/migrate.py move` step wired in `_migrations`. Projects are copied
and updated by the copier CLI in a subprocess, as users do, without `--trust` but where N+1's
migration needs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rendering import (
    REPO_ROOT,
    answers_for,
    expected_files,
    load_answers_file,
    snapshot_template,
)

pytestmark = [pytest.mark.update, pytest.mark.slow]

# The template's own copier (same version users need), so no test downloads one.
COPIER = [sys.executable, "-m", "copier"]
MAKE_COPIER = f"COPIER={' '.join(COPIER)}"

MOVED_FROM = "tests/functional/test_cli.py"
MOVED_TO = "tests/functional/test_command_line.py"
NEW_FILE = "SUPPORT.md"
NEW_QUESTION, NEW_DEFAULT = "support_channel", "#ai-support"
CHANGED_TARGET = "check-template-update"
CHANGED_HELP = (
    "Ask copier whether a newer template version exists (weekly in CI); fails when behind"
)
# The README's title line in the template (the name escaped for Markdown), and N+1's.
TITLE_LINE = "# {{ escape.markdown(project_name) }}"
TEMPLATE_TITLE = f"{TITLE_LINE}: an AI system with its safety nets"
MARKER_START, MARKER_END = "<<<<<<< before updating", ">>>>>>> after updating"
# Small, pure Python, no dependencies of its own, and not a dependency of the template.
NEW_RUNTIME_DEPENDENCY = "tomli-w"
TRUST_REFUSED = (
    "update-template: this update crosses a template version with migration steps, which Copier "
    "runs only when trusted; nothing was changed."
)

ANSWERS: dict[str, Any] = {  # not one default, so nothing passes by accident
    "project_name": "Support Triage Bot",
    "description": "Sorts support tickets into queues and drafts the first reply.",
    "author_name": "Ada Lovelace",
    "author_email": "ada@example.org",
    "python_version": "3.11",
    "llm_providers": ["anthropic"],
    "license": "Apache-2.0",
    "ci": "github",
}
PACKAGE = answers_for(ANSWERS)["package_name"]

# The user's edits, each in a different kind of file.
USER_MODULE = f"src/{PACKAGE}/greetings.py"
USER_MODULE_TEXT = '''"""Greetings for the support rota (a module of the user's own)."""


def greet(name: str) -> str:
    """Greet a teammate by name."""
    return f"Hello, {name}!"
'''
USER_TEST = "tests/unit/test_greetings.py"
USER_TEST_TEXT = f"""from {PACKAGE}.greetings import greet


def test_greet_names_the_teammate() -> None:
    assert greet("Ada") == "Hello, Ada!"
"""
USER_TEST_APPENDED = f"""

def test_the_on_call_engineer_is_greeted() -> None:
    from {PACKAGE}.greetings import greet

    assert greet("on-call") == "Hello, on-call!"
"""
USER_DEPENDENCY = "humanize"  # small, pure Python, and not a dependency of the template
USER_TARGET = """
.PHONY: rota
rota: ## Print who answers escalations this week (the user's own target)
\t@echo "on call: see the escalations rota"
"""
USER_TITLE = "# Support Triage Bot, run by the escalations team"
USER_PARAGRAPH = """
## Deployment

The bot runs in the escalations cluster. Page the on-call engineer before you change a prompt.
"""
USER_SETTING = (
    '    support_queue: str = Field(default="triage", description="Queue of escalated tickets.")\n'
)
USER_ENV_LINES = "\n# Queue of escalated tickets.\nSUPPORT_QUEUE=triage\n"


@dataclass(frozen=True)
class TemplateRepo:
    path: Path
    old: str
    new: str


def run(
    command: list[str], cwd: Path, env: Mapping[str, str], *, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False, timeout=600
    )
    if result.returncode != expect:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        pytest.fail(f"`{' '.join(command)}` exited {result.returncode}, expected {expect}:\n{tail}")
    return result


def git(cwd: Path, env: Mapping[str, str], *args: str, expect: int = 0) -> str:
    return run(["git", *args], cwd, env, expect=expect).stdout


def commit_all(cwd: Path, env: Mapping[str, str], message: str) -> None:
    git(cwd, env, "add", "--all")
    git(cwd, env, "commit", "--quiet", "--no-verify", "--message", message)


def next_minor(version: str) -> str:
    major, minor, *_ = version.split(".")
    return f"{major}.{int(minor) + 1}.0"


def make_next_version(root: Path, version: str) -> None:
    """Turn the template at `root` into version N+1, with edits that do not depend on content
    other work will change."""
    template = root / "template"

    config_file = root / "copier.yml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    assert NEW_QUESTION not in config, f"the template now has {NEW_QUESTION}: pick another name"
    config[NEW_QUESTION] = {
        "type": "str",
        "help": "Chat channel where the team answers questions",
        "default": NEW_DEFAULT,
    }
    migration = {
        "version": version,
        "when": "{{ _stage == 'after' }}",
        "command": [
            "{{ _copier_python }}",
            "{{ _copier_conf.src_path }}/hooks/migrate.py",
            "move",
            MOVED_FROM,
            MOVED_TO,
        ],
    }
    config["_migrations"] = [*(config.get("_migrations") or []), migration]
    config_file.write_text(
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=4096), encoding="utf-8"
    )

    runtime = template / "runtime" / "pyproject.toml"
    text = runtime.read_text(encoding="utf-8")
    assert NEW_RUNTIME_DEPENDENCY not in text, f"the runtime now needs {NEW_RUNTIME_DEPENDENCY}"
    runtime.write_text(
        text.replace(
            "dependencies = [\n", f'dependencies = [\n    "{NEW_RUNTIME_DEPENDENCY}>=1",\n', 1
        ),
        encoding="utf-8",
    )

    new_file = template / f"{NEW_FILE}.jinja"
    assert not new_file.exists(), f"the template now has {NEW_FILE}: pick another name"
    new_file.write_text(f"# Support\n\nAsk in {{{{ {NEW_QUESTION} }}}}.\n", encoding="utf-8")

    makefile = template / "Makefile.jinja"
    text, count = re.subn(
        rf"^({re.escape(CHANGED_TARGET)}:.*## ).*$",
        lambda match: match.group(1) + CHANGED_HELP,
        makefile.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    assert count == 1, f"Makefile.jinja has no documented {CHANGED_TARGET} target"
    makefile.write_text(text, encoding="utf-8")

    readme = template / "README.md.jinja"
    text = readme.read_text(encoding="utf-8")
    # The title is the first rendered line: only an `{% import %}` (which renders to nothing)
    # may come before it.
    before, found, after = text.partition(f"\n{TITLE_LINE}\n")
    assert found, f"README.md.jinja has no title line {TITLE_LINE!r}"
    assert before.startswith("{%-"), before
    assert before.endswith("-%}"), before
    readme.write_text(f"{before}\n{TEMPLATE_TITLE}\n{after}", encoding="utf-8")

    candidates = [template / f"{MOVED_FROM}.jinja", template / MOVED_FROM]
    moved = next((path for path in candidates if path.exists()), None)
    assert moved is not None, f"the template no longer has {MOVED_FROM}: move another file"
    suffix = ".jinja" if moved.suffix == ".jinja" else ""
    shutil.move(moved, template / f"{MOVED_TO}{suffix}")


@pytest.fixture(scope="module")
def template_repo(
    tmp_path_factory: pytest.TempPathFactory, tool_env: dict[str, str]
) -> TemplateRepo:
    """The template as it is now, tagged N, and N+1 made from it, in one git repository."""
    root = snapshot_template(tmp_path_factory.mktemp("template-repo") / "copier-ai-system")
    old = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    new = next_minor(old)
    git(root, tool_env, "init", "--quiet", "--initial-branch=main")
    commit_all(root, tool_env, f"Template {old}")
    git(root, tool_env, "tag", f"v{old}")
    make_next_version(root, new)
    commit_all(root, tool_env, f"Template {new}")
    git(root, tool_env, "tag", f"v{new}")
    return TemplateRepo(root, old, new)


def data_options(answers: Mapping[str, Any]) -> list[str]:
    options = []
    for key, value in answers.items():
        rendered = "[" + ", ".join(value) + "]" if isinstance(value, list) else str(value)
        options += ["--data", f"{key}={rendered}"]
    return options


def copier_copy(
    repo: TemplateRepo,
    project: Path,
    version: str,
    answers: Mapping[str, Any],
    env: Mapping[str, str],
    *flags: str,
) -> None:
    """`copier copy` of `version`: no `--trust` (the template needs none), plus `flags`."""
    command = [*COPIER, "copy", "--defaults", "--quiet", "--vcs-ref", f"v{version}", *flags]
    run([*command, *data_options(answers), str(repo.path), str(project)], project.parent, env)


def copier_update(
    project: Path, env: Mapping[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    command = [*COPIER, "update", "--defaults", "--conflict", "inline", *options]  # no --trust
    return run(command, project, env)


def files_in(project: Path, env: Mapping[str, str]) -> set[str]:
    """Every file git would see: tracked or not, minus what .gitignore hides (.venv, caches)."""
    listed = git(project, env, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return {path for path in listed.split("\0") if path and (project / path).exists()}


def insert_user_setting(settings: str) -> str:
    anchor = "\n    @classmethod\n    def settings_customise_sources("
    assert anchor in settings, "settings.py has no settings_customise_sources to put a field before"
    return settings.replace(anchor, f"\n{USER_SETTING}{anchor}", 1)


def make_user_edits(project: Path, env: Mapping[str, str]) -> None:
    """What a team does in its first weeks: code, a dependency, a target, docs, a setting."""
    (project / USER_MODULE).write_text(USER_MODULE_TEXT, encoding="utf-8")
    (project / USER_TEST).write_text(USER_TEST_TEXT, encoding="utf-8")
    with (project / MOVED_FROM).open("a", encoding="utf-8") as moved:
        moved.write(USER_TEST_APPENDED)
    run(["uv", "add", "--no-sync", "--quiet", USER_DEPENDENCY], project, env)
    with (project / "Makefile").open("a", encoding="utf-8") as makefile:
        makefile.write(USER_TARGET)
    readme = project / "README.md"
    _, rest = readme.read_text(encoding="utf-8").split("\n", 1)
    readme.write_text(f"{USER_TITLE}\n{rest}{USER_PARAGRAPH}", encoding="utf-8")
    settings = project / "src" / PACKAGE / "settings.py"
    settings.write_text(insert_user_setting(settings.read_text(encoding="utf-8")), encoding="utf-8")
    with (project / ".env.example").open("a", encoding="utf-8") as env_example:
        env_example.write(USER_ENV_LINES)


def test_update_keeps_every_user_edit_and_lands_every_template_change(
    template_repo: TemplateRepo, tmp_path: Path, tool_env: dict[str, str]
) -> None:
    project = tmp_path / "support-triage-bot"
    copier_copy(template_repo, project, template_repo.old, ANSWERS, tool_env)
    run(["make", "init"], project, tool_env)  # git, with uv.lock in the first commit
    make_user_edits(project, tool_env)
    commit_all(project, tool_env, "Our first weeks of work")
    committed = {path: (project / path).read_bytes() for path in files_in(project, tool_env)}
    assert "uv.lock" in committed
    assert USER_DEPENDENCY in (project / "pyproject.toml").read_text()
    head = git(project, tool_env, "rev-parse", "HEAD")

    # N+1 has a migration, which Copier runs only when trusted: without TRUST=1 the update
    # stops before it changes anything, and says what to do.
    untrusted = run(
        ["make", "update-template", MAKE_COPIER, "UPDATE_ARGS=--defaults"],
        project,
        tool_env,
        expect=2,
    )
    assert TRUST_REFUSED in untrusted.stderr
    assert "then run make update-template TRUST=1." in untrusted.stderr
    assert git(project, tool_env, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(project, tool_env, "rev-parse", "HEAD") == head

    update = run(
        ["make", "update-template", MAKE_COPIER, "UPDATE_ARGS=--defaults", "TRUST=1"],
        project,
        tool_env,
        expect=2,  # make's status when the recipe fails: conflicts are left to resolve
    )

    # The conflict is reported, recorded for git, and is the only one.
    output = update.stdout + update.stderr
    assert "you and the template changed the same lines in these files:\n  README.md\n" in output
    assert git(project, tool_env, "diff", "--name-only", "--diff-filter=U") == "README.md\n"
    assert not list(project.rglob("*.rej"))
    # The migration ran once and carried the user's edited file over.
    migration_line = f"migration {template_repo.new}: moved your {MOVED_FROM} to {MOVED_TO}"
    assert output.count(migration_line) == 1, output
    assert not (project / MOVED_FROM).exists()
    assert (project / MOVED_TO).read_bytes() == committed[MOVED_FROM]
    # The answers file records N+1 and the new question's default, and kept every answer.
    recorded = load_answers_file(project)
    assert recorded["_commit"] == f"v{template_repo.new}"
    assert recorded[NEW_QUESTION] == NEW_DEFAULT
    assert {key: recorded[key] for key in ANSWERS} == ANSWERS

    # Compare with N+1 copied fresh with the same answers: what the user did not touch is the
    # template's new version byte for byte; what they touched is that plus their edit.
    reference = tmp_path / "reference"
    copier_copy(template_repo, reference, template_repo.new, ANSWERS, tool_env)
    reference_files = {
        path.relative_to(reference).as_posix() for path in reference.rglob("*") if path.is_file()
    }
    user_files = {USER_MODULE, USER_TEST}
    assert files_in(project, tool_env) == reference_files | user_files | {"uv.lock"}
    for path in user_files:
        assert (project / path).read_bytes() == committed[path], path
    # The runtime's new dependency made the lock stale: the update refreshed it, keeping the
    # user's own dependency, so every `--locked` run of the Makefile works.
    assert "update-template: uv.lock refreshed: the template changed dependencies" in output
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert f'name = "{NEW_RUNTIME_DEPENDENCY}"' in lock
    assert f'name = "{NEW_RUNTIME_DEPENDENCY}"' not in committed["uv.lock"].decode()
    assert f'name = "{USER_DEPENDENCY}"' in lock
    run(["uv", "lock", "--locked"], project, tool_env)

    def new_version_of(path: str) -> str:
        return (reference / path).read_text(encoding="utf-8")

    def updated(path: str) -> str:
        return (project / path).read_text(encoding="utf-8")

    touched = {"README.md", "Makefile", "pyproject.toml", ".env.example", MOVED_TO}
    touched.add(f"src/{PACKAGE}/settings.py")
    for path in reference_files - touched:
        assert (project / path).read_bytes() == (reference / path).read_bytes(), path
    assert f"{CHANGED_TARGET}: check-uv ## {CHANGED_HELP}\n" in updated("Makefile")
    assert updated("Makefile") == new_version_of("Makefile") + USER_TARGET
    assert updated(".env.example") == new_version_of(".env.example") + USER_ENV_LINES
    settings = f"src/{PACKAGE}/settings.py"
    assert updated(settings) == insert_user_setting(new_version_of(settings))
    assert updated("pyproject.toml") == committed["pyproject.toml"].decode()
    assert updated(NEW_FILE) == f"# Support\n\nAsk in {NEW_DEFAULT}.\n"
    # Both changed the README's first line: inline markers, never a silent pick.
    template_title = TEMPLATE_TITLE.replace(TITLE_LINE[2:], ANSWERS["project_name"])
    _, reference_rest = new_version_of("README.md").split("\n", 1)
    conflict = f"{MARKER_START}\n{USER_TITLE}\n=======\n{template_title}\n{MARKER_END}\n"
    assert updated("README.md") == conflict + reference_rest + USER_PARAGRAPH

    # pre-commit's check-merge-conflict refuses to commit the markers (mypy skipped here: it
    # runs in the commit and validate-branch below).
    run(["make", "init"], project, tool_env)
    git(project, tool_env, "add", "--all")
    head = git(project, tool_env, "rev-parse", "HEAD")
    refused = run(
        ["git", "commit", "--message", "Update from the template"],
        project,
        {**tool_env, "SKIP": "mypy"},
        expect=1,
    )
    hooks_said = refused.stdout + refused.stderr  # git shows the hooks' output on stderr
    assert re.search(r"refuse merge conflict markers\.+Failed", hooks_said), hooks_said
    assert "README.md:1: Merge conflict string" in hooks_said
    assert git(project, tool_env, "rev-parse", "HEAD") == head

    # Resolved (the user keeps their title), it commits through every hook and is green.
    (project / "README.md").write_text(
        f"{USER_TITLE}\n{reference_rest}{USER_PARAGRAPH}", encoding="utf-8"
    )
    git(project, tool_env, "add", "README.md")
    git(project, tool_env, "commit", "--quiet", "--message", "Update from the template")
    validated = run(["make", "validate-branch"], project, tool_env)
    assert "validate-branch: all checks passed" in validated.stdout
    assert git(project, tool_env, "status", "--porcelain") == ""


def test_update_with_other_providers_adds_and_removes_exactly_their_files(
    template_repo: TemplateRepo, tmp_path: Path, tool_env: dict[str, str]
) -> None:
    project = tmp_path / "project"
    copier_copy(template_repo, project, template_repo.old, {}, tool_env)
    git(project, tool_env, "init", "--quiet", "--initial-branch=main")
    package = answers_for({})["package_name"]
    user_files = {USER_MODULE.replace(PACKAGE, package), USER_TEST}
    (project / USER_MODULE.replace(PACKAGE, package)).write_text(USER_MODULE_TEXT)
    (project / USER_TEST).write_text(USER_TEST_TEXT.replace(PACKAGE, package))
    commit_all(project, tool_env, "Our code")
    user_bytes = {path: (project / path).read_bytes() for path in user_files}
    same_version = ("--vcs-ref", f"v{template_repo.old}")

    steps: list[list[str]] = [["openai", "anthropic"], ["anthropic"], []]
    before = answers_for({})
    for providers in steps:
        after = answers_for({"llm_providers": providers})
        copier_update(project, tool_env, *same_version, *data_options({"llm_providers": providers}))

        files = files_in(project, tool_env)
        assert files == expected_files(after) | user_files
        added, removed = files - expected_files(before), expected_files(before) - files
        assert added - user_files == expected_files(after) - expected_files(before)
        assert removed == expected_files(before) - expected_files(after)
        for path in user_files:
            assert (project / path).read_bytes() == user_bytes[path], path
        env_example = (project / ".env.example").read_text()
        for provider in ("openai", "anthropic"):
            assert (f"\n{provider.upper()}_API_KEY=\n" in env_example) == (provider in providers)
        assert load_answers_file(project)["llm_providers"] == providers
        assert not list(project.rglob("*.rej"))
        commit_all(project, tool_env, f"Providers: {providers}")
        before = after


def test_project_made_with_skip_tasks_updates_and_a_second_update_changes_nothing(
    template_repo: TemplateRepo, tmp_path: Path, tool_env: dict[str, str]
) -> None:
    project = tmp_path / "internal-tools"
    answers = {"project_name": "Internal Tools", "llm_providers": [], "ci": "none"}
    copier_copy(template_repo, project, template_repo.old, answers, tool_env, "--skip-tasks")
    assert not (project / ".git").exists()
    git(project, tool_env, "init", "--quiet", "--initial-branch=main")
    commit_all(project, tool_env, "Generated with --skip-tasks")
    (project / MOVED_FROM).unlink()  # the migration must cope with a file the user deleted
    commit_all(project, tool_env, "We do not want the CLI tests")
    summary = tmp_path / "step-summary.md"
    env = {**tool_env, "GITHUB_STEP_SUMMARY": str(summary)}

    # The real default COPIER (uv's tool runner) for the check, as users and the workflow run it.
    behind = run(["make", "check-template-update"], project, env, expect=2)
    line = (
        f"Behind the template: this project is on version {template_repo.old} and the template "
        f"is at {template_repo.new}. Run make update-template."
    )
    assert line in behind.stdout
    assert summary.read_text() == f"### Template update check\n\n{line}\n"

    trusted = ["make", "update-template", MAKE_COPIER, "UPDATE_ARGS=--defaults", "TRUST=1"]
    update = run(trusted, project, env)  # N+1's migration needs trust
    output = update.stdout + update.stderr
    assert (
        f"migration {template_repo.new}: nothing to move: {MOVED_FROM} is not in the project"
        in (output)
    )
    assert "update-template: merged without conflicts." in output
    assert load_answers_file(project)["_commit"] == f"v{template_repo.new}"
    assert (project / NEW_FILE).is_file()
    assert not (project / MOVED_FROM).exists()
    # Copier cannot know the user deleted what the template moved: the new path arrives anew.
    assert (project / MOVED_TO).is_file()
    commit_all(project, tool_env, "Update from the template")
    head = git(project, tool_env, "rev-parse", "HEAD")

    current = run(["make", "check-template-update"], project, env)
    assert f"Up to date: this project is on the latest template version ({template_repo.new})." in (
        current.stdout
    )
    # No migration between N+1 and itself: no trust asked for, none given.
    again = run(["make", "update-template", MAKE_COPIER, "UPDATE_ARGS=--defaults"], project, env)
    assert "migration" not in again.stdout + again.stderr
    assert git(project, tool_env, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(project, tool_env, "rev-parse", "HEAD") == head
