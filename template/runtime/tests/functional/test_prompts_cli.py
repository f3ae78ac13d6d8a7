"""`prompts ...` end to end through a command line built as a project builds it, on a library
of two prompts (library/, locked in prompts.lock) and on a copy of it as the override
directory."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from airuntime.cli.exits import ExitCode
from airuntime.cli.prompts import PromptSetup, prompts_app
from airuntime.errors import ConfigurationError
from airuntime.prompts import load_registry

LIBRARY = Path(__file__).parent / "library"
PROJECT_LOCK = Path(__file__).parent / "prompts.lock"
runner = CliRunner()


@dataclass
class ProjectConfig:
    """What a project's settings would say: PROMPTS_DIR, PROMPTS_LOCK, or a bad setting."""

    prompts_dir: Path | None = None
    lock: Path = PROJECT_LOCK
    broken: str | None = None

    def setup(self) -> PromptSetup:
        if self.broken is not None:
            raise ConfigurationError(self.broken)
        return PromptSetup(lambda: load_registry(LIBRARY, self.prompts_dir), self.lock)


@pytest.fixture
def config() -> ProjectConfig:
    return ProjectConfig()


@pytest.fixture
def app(config: ProjectConfig) -> typer.Typer:
    root = typer.Typer()
    root.add_typer(prompts_app(config.setup))
    return root


@pytest.fixture
def library_copy(tmp_path: Path, config: ProjectConfig) -> Path:
    """A copy of the library and of the lock, used as PROMPTS_DIR and PROMPTS_LOCK."""
    copy = tmp_path / "prompts"
    shutil.copytree(LIBRARY, copy)
    shutil.copy(PROJECT_LOCK, tmp_path / "prompts.lock")
    config.prompts_dir, config.lock = copy, tmp_path / "prompts.lock"
    return copy


def test_list_is_a_table_of_versions_labels_and_hashes(app: typer.Typer) -> None:
    result = runner.invoke(app, ["prompts", "list"])

    assert result.exit_code == 0
    header, *rows = result.output.splitlines()
    assert header.split() == ["ID", "VERSION", "LABELS", "HASH"]
    assert [row.split()[0] for row in rows] == ["classify", "summarize"]
    assert all("1.0.0 (latest)" in row and "production" in row for row in rows)
    assert all(row.split()[-1].startswith("sha256:") for row in rows)


def test_list_as_json_has_full_hashes(app: typer.Typer) -> None:
    result = runner.invoke(app, ["prompts", "list", "--json"])

    rows = json.loads(result.output)
    assert [(row["id"], row["version"], row["latest"]) for row in rows] == [
        ("classify", "1.0.0", True),
        ("summarize", "1.0.0", True),
    ]
    assert all(len(row["hash"]) == len("sha256:") + 64 for row in rows)


def test_show_prints_settings_and_templates(app: typer.Typer) -> None:
    result = runner.invoke(app, ["prompts", "show", "summarize@1.0.0"])

    assert result.exit_code == 0
    assert result.output.startswith("summarize@1.0.0  sha256:")
    assert "labels:      production\n" in result.output
    assert "--- system ---\n" in result.output
    assert "--- user ---\nSummarise this document.\n<document>\n{{ text }}\n</document>\n" in (
        result.output
    )


def test_show_as_json_by_label(app: typer.Typer) -> None:
    result = runner.invoke(app, ["prompts", "show", "classify", "--label", "production", "--json"])

    shown = json.loads(result.output)
    assert shown["id"] == "classify"
    assert shown["input"]["required"] == ["text", "labels"]
    assert [message["role"] for message in shown["messages"]] == ["system", "user"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["show", "summarise"], "error: unknown prompt 'summarise': known prompts are classify"),
        (["show", "summarize@9.9.9"], "error: summarize has no version '9.9.9': it has 1.0.0"),
        (["render", "summarize", "--label", "beta"], "error: summarize has no label 'beta'"),
        (["render", "summarize", "--input", "text"], "error: --input 'text' is not name=value"),
        (["render", "summarize"], "error: summarize@1.0.0: input 'text' is required"),
        (
            ["render", "summarize", "-i", "text=hi", "-i", "max_words=many"],
            'error: summarize@1.0.0: input \'max_words\': "many" is not of type "integer"',
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    arguments: list[str], message: str, app: typer.Typer
) -> None:
    result = runner.invoke(app, ["prompts", *arguments])

    assert result.exit_code == ExitCode.BAD_INPUT
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(message)


def test_render_prints_the_messages_with_inputs_as_literal_data(app: typer.Typer) -> None:
    result = runner.invoke(
        app,
        [
            "prompts",
            "render",
            "classify",
            "--input",
            "text=Refund {{ 7*7 }} please",
            "--input",
            'labels=["billing", "bug"]',
        ],
    )

    assert result.exit_code == 0, result.output
    assert "--- system ---\nYou classify texts. Choose exactly one of these labels:\n" in (
        result.output
    )
    assert "- billing\n- bug\n" in result.output
    assert result.output.endswith("--- user ---\n<text>\nRefund {{ 7*7 }} please\n</text>\n")


def test_render_as_json_carries_the_targets_and_parses_numbers(app: typer.Typer) -> None:
    result = runner.invoke(
        app,
        ["prompts", "render", "summarize@1.0.0", "-i", "text=Hi.", "-i", "max_words=30", "--json"],
    )

    rendered = json.loads(result.output)
    assert rendered["prompt"] == "summarize@1.0.0"
    assert rendered["target"]["provider"] in {"mock", "openai", "anthropic"}
    assert "at most 30 words" in rendered["messages"][0]["content"]
    assert rendered["output"]["type"] == "json_schema"


def test_check_passes_on_the_committed_lock(app: typer.Typer) -> None:
    result = runner.invoke(app, ["prompts", "check"])

    assert result.exit_code == 0, result.stderr
    assert result.output.endswith("2 prompt versions match their hashes.\n")


def test_edit_without_bump_fails_then_bump_and_lock_passes(
    library_copy: Path, app: typer.Typer
) -> None:
    prompt_file = library_copy / "summarize" / "1.0.0.yaml"
    prompt_file.write_text(
        prompt_file.read_text().replace("Summarise this document.", "Summarise this, briefly.")
    )

    failed = runner.invoke(app, ["prompts", "check"])

    assert failed.exit_code == ExitCode.PROMPTS_LOCK_OUT_OF_DATE
    assert failed.stderr == (
        f"error: summarize@1.0.0 changed but its version did not: bump `version` in "
        f"{prompt_file.relative_to(Path.cwd()).as_posix()} (and rename the file to match) "
        "and run `make prompts-lock`\n"
    )

    bumped = prompt_file.with_name("1.0.1.yaml")
    bumped.write_text(prompt_file.read_text().replace('version: "1.0.0"', 'version: "1.0.1"'))
    prompt_file.unlink()
    locked = runner.invoke(app, ["prompts", "lock"])
    passed = runner.invoke(app, ["prompts", "check"])

    assert locked.exit_code == 0, locked.stderr
    assert locked.output.endswith("3 prompt versions locked (1 added, 0 changed, 0 removed).\n")
    assert passed.exit_code == 0, passed.stderr
    assert passed.output.endswith("3 prompt versions match their hashes.\n")
    rendered = runner.invoke(app, ["prompts", "render", "summarize", "-i", "text=x"])
    assert "Summarise this, briefly." in rendered.output


def test_lock_refuses_a_silent_change_unless_forced(library_copy: Path, app: typer.Typer) -> None:
    prompt_file = library_copy / "classify" / "1.0.0.yaml"
    prompt_file.write_text(prompt_file.read_text().replace("You classify", "You label"))

    refused = runner.invoke(app, ["prompts", "lock"])
    forced = runner.invoke(app, ["prompts", "lock", "--force"])
    checked = runner.invoke(app, ["prompts", "check"])

    assert refused.exit_code == ExitCode.PROMPTS_LOCK_OUT_OF_DATE
    assert "classify@1.0.0 changed but its version did not" in refused.stderr
    assert "(or lock with --force to accept it)" in refused.stderr
    assert forced.exit_code == 0
    assert "(0 added, 1 changed, 0 removed)" in forced.output
    assert checked.exit_code == 0


def test_a_missing_lock_fails_the_check(
    config: ProjectConfig, tmp_path: Path, app: typer.Typer
) -> None:
    config.lock = tmp_path / "nowhere.lock"

    result = runner.invoke(app, ["prompts", "check"])

    assert result.exit_code == ExitCode.PROMPTS_LOCK_OUT_OF_DATE
    assert "nowhere.lock not found: run `make prompts-lock`" in result.stderr


def test_a_broken_lock_fails_check_and_lock(
    library_copy: Path, tmp_path: Path, app: typer.Typer
) -> None:
    (tmp_path / "prompts.lock").write_text("[prompts\n")

    for command in ("check", "lock"):
        result = runner.invoke(app, ["prompts", command])
        assert result.exit_code == ExitCode.PROMPTS_LOCK_OUT_OF_DATE
        assert "is not valid TOML" in result.stderr


def test_invalid_prompt_files_stop_every_command_with_one_line_each(
    library_copy: Path, app: typer.Typer
) -> None:
    (library_copy / "summarize" / "1.0.0.yaml").write_text("id: summarize\nversion: 1\n")
    (library_copy / "classify" / "1.0.0.yaml").write_text("id: [\n")

    result = runner.invoke(app, ["prompts", "list"])

    assert result.exit_code == ExitCode.INVALID_PROMPTS
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "error: prompts/classify/1.0.0.yaml: not valid YAML: line 2, column 1: did not find "
        "expected node content (while parsing a flow node)"
    )
    assert lines[1].startswith("error: prompts/summarize/1.0.0.yaml: version: 1 is not a string")
    assert all(line.startswith("error: prompts/") for line in lines)


def test_a_template_failing_at_render_exits_as_invalid_prompts(
    library_copy: Path, app: typer.Typer
) -> None:
    prompt_file = library_copy / "classify" / "1.0.0.yaml"
    prompt_file.write_text(prompt_file.read_text().replace("{{ text }}", "{{ text.__class__ }}"))

    result = runner.invoke(
        app, ["prompts", "render", "classify", "-i", "text=x", "-i", 'labels=["a","b"]']
    )

    assert result.exit_code == ExitCode.INVALID_PROMPTS
    assert "refused by the sandbox" in result.stderr


def test_bad_configuration_is_a_configuration_error(
    config: ProjectConfig, app: typer.Typer
) -> None:
    config.broken = "invalid configuration: PROMPTS_LOCK (not a path). Fix it."

    result = runner.invoke(app, ["prompts", "list"])

    assert result.exit_code == ExitCode.CONFIGURATION_ERROR
    assert result.stderr == "error: invalid configuration: PROMPTS_LOCK (not a path). Fix it.\n"


# -- rollout: promote and rollback ----------------------------------------------------------


def add_canary(library_copy: Path, app: typer.Typer, weight: int = 10) -> Path:
    """summarize@1.1.0, a changed copy of 1.0.0 labelled canary, locked."""
    source = (library_copy / "summarize" / "1.0.0.yaml").read_text(encoding="utf-8")
    canary = library_copy / "summarize" / "1.1.0.yaml"
    canary.write_text(
        source.replace('version: "1.0.0"', 'version: "1.1.0"')
        .replace("labels: [production]", f"labels: [canary]\ncanary_weight: {weight}")
        .replace("Summarise this document.", "Summarise this document, briefly."),
        encoding="utf-8",
    )
    assert runner.invoke(app, ["prompts", "lock"]).exit_code == 0
    return canary


def test_promote_moves_production_and_keeps_the_lock_valid(
    library_copy: Path, app: typer.Typer, config: ProjectConfig
) -> None:
    canary = add_canary(library_copy, app)
    stable = library_copy / "summarize" / "1.0.0.yaml"
    shown = {path: path.relative_to(Path.cwd()) for path in (canary, stable)}
    lock_before = config.lock.read_text(encoding="utf-8")

    promoted = runner.invoke(app, ["prompts", "promote", "summarize", "1.1.0"])

    assert promoted.exit_code == 0, promoted.stderr
    assert promoted.stdout.splitlines() == [
        f"summarize@1.1.0: labels [production] ({shown[canary]})",
        f"summarize@1.0.0: labels [previous] ({shown[stable]})",
        f"{config.lock}: 3 prompt versions match their hashes.",
        "Review the change (git diff) and commit it: the lock is unchanged.",
    ]
    assert "labels: [production]\n" in canary.read_text(encoding="utf-8")
    assert "canary_weight" not in canary.read_text(encoding="utf-8")
    assert stable.read_text(encoding="utf-8").startswith("# summarize@1.0.0: a faithful")
    assert config.lock.read_text(encoding="utf-8") == lock_before
    assert load_registry(LIBRARY, library_copy).production("summarize").version == "1.1.0"

    rolled = runner.invoke(app, ["prompts", "rollback", "summarize"])

    assert rolled.exit_code == 0, rolled.stderr
    assert rolled.stdout.splitlines()[:2] == [
        f"summarize@1.0.0: labels [production] ({shown[stable]})",
        f"summarize@1.1.0: labels [] ({shown[canary]})",
    ]
    assert load_registry(LIBRARY, library_copy).production("summarize").version == "1.0.0"
    again = runner.invoke(app, ["prompts", "rollback", "summarize"])
    assert again.exit_code == ExitCode.BAD_INPUT
    assert again.stderr == (
        "error: summarize has no previous production version to roll back to (`prompts "
        "promote` labels the one it replaces `previous`)\n"
    )


def test_promoting_production_or_an_unknown_version_is_one_line(
    library_copy: Path, app: typer.Typer
) -> None:
    same = runner.invoke(app, ["prompts", "promote", "summarize", "1.0.0"])
    unknown = runner.invoke(app, ["prompts", "promote", "summarize", "9.9.9"])

    assert same.exit_code == unknown.exit_code == ExitCode.BAD_INPUT
    assert same.stderr == "error: summarize@1.0.0 is already production: nothing to promote\n"
    assert unknown.stderr == "error: summarize has no version '9.9.9': it has 1.0.0\n"


def test_labels_in_block_style_are_refused_with_how_to_write_them(
    library_copy: Path, app: typer.Typer
) -> None:
    canary = add_canary(library_copy, app)
    canary.write_text(
        canary.read_text(encoding="utf-8").replace("labels: [canary]", "labels:\n  - canary"),
        encoding="utf-8",
    )

    result = runner.invoke(app, ["prompts", "promote", "summarize", "1.1.0"])

    assert result.exit_code == ExitCode.BAD_INPUT
    shown = canary.relative_to(Path.cwd())
    assert result.stderr == (
        f"error: {shown}: write its labels on one line, e.g. `labels: [production]`, so they "
        "can be moved\n"
    )
