"""prompts.lock: written sorted and atomically, and checked against the prompt files."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airuntime.prompts import PromptRegistry
from airuntime.prompts.loader import PromptSource
from airuntime.prompts.lock import (
    PromptLockError,
    check_lock,
    read_lock,
    render_lock,
    write_lock,
)

MakePrompt = Callable[..., dict[str, Any]]
WritePrompt = Callable[..., Path]


def load(root: Path) -> PromptRegistry:
    return PromptRegistry.load([PromptSource.directory(root)])


@pytest.fixture
def registry(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> PromptRegistry:
    write_prompt(make_prompt("greet", "1.0.0"))
    write_prompt(make_prompt("greet", "1.10.0"))
    write_prompt(make_prompt("farewell", "0.1.0"))
    return load(prompts_root)


def test_the_lock_has_one_sorted_line_per_version(registry: PromptRegistry, tmp_path: Path) -> None:
    lock = tmp_path / "prompts.lock"

    update = write_lock(registry, lock)

    lines = lock.read_text().splitlines()
    assert lines[0].startswith("# ")
    assert lines[2] == "[prompts]"
    hashes = {prompt.ref: prompt.content_hash for prompt in registry}
    assert lines[3:] == [
        f'"farewell@0.1.0" = "{hashes["farewell@0.1.0"]}"',
        f'"greet@1.0.0" = "{hashes["greet@1.0.0"]}"',
        f'"greet@1.10.0" = "{hashes["greet@1.10.0"]}"',
    ]
    assert read_lock(lock) == hashes
    assert (update.added, update.changed, update.removed, update.total) == (
        ("farewell@0.1.0", "greet@1.0.0", "greet@1.10.0"),
        (),
        (),
        3,
    )


def test_writing_leaves_no_temporary_file_and_a_readable_mode(
    registry: PromptRegistry, tmp_path: Path
) -> None:
    lock = tmp_path / "locks" / "prompts.lock"

    write_lock(registry, lock)
    write_lock(registry, lock)

    assert sorted(path.name for path in lock.parent.iterdir()) == ["prompts.lock"]
    assert stat.S_IMODE(lock.stat().st_mode) == 0o644


def test_an_up_to_date_lock_passes_the_check(registry: PromptRegistry, tmp_path: Path) -> None:
    lock = tmp_path / "prompts.lock"
    write_lock(registry, lock)

    assert check_lock(registry, lock) == []


def test_a_changed_prompt_without_a_version_bump_fails_the_check(
    registry: PromptRegistry,
    write_prompt: WritePrompt,
    prompts_root: Path,
    tmp_path: Path,
    make_prompt: MakePrompt,
) -> None:
    lock = tmp_path / "prompts.lock"
    write_lock(registry, lock)
    changed = make_prompt("greet", "1.0.0")
    changed["messages"][1]["template"] += "!"
    write_prompt(changed)

    problems = check_lock(load(prompts_root), lock)

    assert problems == [
        "greet@1.0.0 changed but its version did not: bump `version` in "
        "prompts/greet/1.0.0.yaml (and rename the file to match) and run `make prompts-lock`"
    ]


def test_new_versions_and_stale_entries_fail_the_check(
    registry: PromptRegistry,
    write_prompt: WritePrompt,
    prompts_root: Path,
    tmp_path: Path,
    make_prompt: MakePrompt,
) -> None:
    lock = tmp_path / "prompts.lock"
    write_lock(registry, lock)
    (prompts_root / "farewell" / "0.1.0.yaml").unlink()
    write_prompt(make_prompt("greet", "2.0.0"))

    problems = check_lock(load(prompts_root), lock)

    assert problems == [
        f"greet@2.0.0 (prompts/greet/2.0.0.yaml) is not in {lock}: run `make prompts-lock` "
        f"and commit {lock}",
        f"{lock} lists farewell@0.1.0, which no prompt file defines: run `make prompts-lock` "
        "to drop it",
    ]


def test_a_missing_lock_fails_the_check(registry: PromptRegistry, tmp_path: Path) -> None:
    lock = tmp_path / "prompts.lock"

    assert check_lock(registry, lock) == [
        f"{lock} not found: run `make prompts-lock` and commit {lock}"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[prompts\n", "is not valid TOML"),
        ('[prompts]\n"greet@1.0.0" = 5\n', 'must hold a [prompts] table of "id@version"'),
        ('[prompts]\n"greet@1.0.0" = "md5:abc"\n', "must hold a [prompts] table"),
        ('prompts = "x"\n', "must hold a [prompts] table"),
    ],
)
def test_a_broken_lock_is_an_error_saying_how_to_fix_it(
    registry: PromptRegistry, tmp_path: Path, text: str, message: str
) -> None:

    lock = tmp_path / "prompts.lock"
    lock.write_text(text)

    with pytest.raises(PromptLockError) as caught:
        check_lock(registry, lock)

    assert message in str(caught.value)
    assert "run `make prompts-lock` to rewrite it" in str(caught.value)


def test_relocking_refuses_to_hide_a_change_unless_forced(
    registry: PromptRegistry,
    write_prompt: WritePrompt,
    prompts_root: Path,
    tmp_path: Path,
    make_prompt: MakePrompt,
) -> None:
    lock = tmp_path / "prompts.lock"
    write_lock(registry, lock)
    before = lock.read_text()
    changed = make_prompt("greet", "1.0.0")
    changed["description"] = "Changed."
    write_prompt(changed)
    edited = load(prompts_root)

    with pytest.raises(PromptLockError, match="or lock with --force to accept it"):
        write_lock(edited, lock)
    assert lock.read_text() == before

    update = write_lock(edited, lock, force=True)
    assert update.changed == ("greet@1.0.0",)
    assert check_lock(edited, lock) == []


def test_bump_then_lock_passes(
    registry: PromptRegistry,
    write_prompt: WritePrompt,
    prompts_root: Path,
    tmp_path: Path,
    make_prompt: MakePrompt,
) -> None:
    lock = tmp_path / "prompts.lock"
    write_lock(registry, lock)
    (prompts_root / "greet" / "1.10.0.yaml").unlink()
    bumped = make_prompt("greet", "1.11.0")
    bumped["description"] = "Changed."
    write_prompt(bumped)
    edited = load(prompts_root)

    update = write_lock(edited, lock)

    assert (update.added, update.removed) == (("greet@1.11.0",), ("greet@1.10.0",))
    assert check_lock(edited, lock) == []


def test_render_lock_of_nothing_is_a_valid_empty_table(tmp_path: Path) -> None:
    lock = tmp_path / "prompts.lock"
    lock.write_text(render_lock({}))

    assert read_lock(lock) == {}
