"""prompts.lock: the committed content hash of every prompt version.

A prompt version is a promise: the same id@version always sends the same prompt. The check
fails when a file's content no longer matches the hash locked for its id@version, so a change
needs a new version (and `make prompts-lock`), which reviews, logs and caches can tell apart.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from airuntime.prompts.errors import PromptError
from airuntime.prompts.registry import PromptRegistry

LOCK_TABLE = "prompts"
LOCK_HEADER = (
    "# Content hash of every prompt version, checked by `make prompts-check` (part of\n"
    "# `make validate-branch`). Rewrite it with `make prompts-lock`; never edit it by hand.\n"
)
LOCK_COMMAND = "make prompts-lock"


class PromptLockError(PromptError):
    """A lock file that cannot be read, or a rewrite that would hide a changed version."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class LockUpdate:
    """What rewriting the lock changed, by id@version."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    total: int


def lock_entries(registry: PromptRegistry) -> dict[str, str]:
    """id@version -> content hash for every prompt version the registry holds."""
    return {prompt.ref: prompt.content_hash for prompt in registry}


def read_lock(path: Path) -> dict[str, str] | None:
    """The locked hashes, or None when there is no lock file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        table = tomllib.loads(text).get(LOCK_TABLE, {})
    except tomllib.TOMLDecodeError as error:
        raise PromptLockError(
            [f"{path} is not valid TOML ({error}): run `{LOCK_COMMAND}` to rewrite it"]
        ) from None
    valid = isinstance(table, dict) and all(
        isinstance(value, str) and value.startswith("sha256:") for value in table.values()
    )
    if not valid:
        raise PromptLockError(
            [
                f'{path} must hold a [{LOCK_TABLE}] table of "id@version" = "sha256:..." '
                f"lines: run `{LOCK_COMMAND}` to rewrite it"
            ]
        )
    return dict(table)


def check_lock(registry: PromptRegistry, path: Path) -> list[str]:
    """Every way the prompt files and the lock disagree, one line each; empty when in sync."""
    locked = read_lock(path)
    if locked is None:
        return [f"{path} not found: run `{LOCK_COMMAND}` and commit {path}"]
    problems = []
    for prompt in registry:
        locked_hash = locked.get(prompt.ref)
        if locked_hash is None:
            problems.append(
                f"{prompt.ref} ({prompt.file}) is not in {path}: run `{LOCK_COMMAND}` "
                f"and commit {path}"
            )
        elif locked_hash != prompt.content_hash:
            problems.append(changed_message(prompt.ref, prompt.file))
    current = {prompt.ref for prompt in registry}
    problems.extend(
        f"{path} lists {ref}, which no prompt file defines: run `{LOCK_COMMAND}` to drop it"
        for ref in sorted(set(locked) - current)
    )
    return problems


def changed_message(ref: str, file: str) -> str:
    return (
        f"{ref} changed but its version did not: bump `version` in {file} (and rename the "
        f"file to match) and run `{LOCK_COMMAND}`"
    )


def write_lock(registry: PromptRegistry, path: Path, *, force: bool = False) -> LockUpdate:
    """Rewrite the lock from the prompt files, atomically.

    Refuses, unless `force`, to change the hash of an id@version already locked: that is the
    change the lock exists to catch, and it needs a version bump instead.
    """
    entries = lock_entries(registry)
    locked = read_lock(path) or {}
    changed = sorted(
        ref for ref, digest in entries.items() if ref in locked and locked[ref] != digest
    )
    if changed and not force:
        files = {prompt.ref: prompt.file for prompt in registry}
        raise PromptLockError(
            [
                changed_message(ref, files[ref]) + " (or lock with --force to accept it)"
                for ref in changed
            ]
        )
    _write_atomically(path, render_lock(entries))
    return LockUpdate(
        added=tuple(sorted(set(entries) - set(locked))),
        changed=tuple(changed),
        removed=tuple(sorted(set(locked) - set(entries))),
        total=len(entries),
    )


def render_lock(entries: Mapping[str, str]) -> str:
    """The lock file's text: a header, then one sorted line per id@version."""
    lines = [f'"{ref}" = "{digest}"' for ref, digest in sorted(entries.items())]
    return LOCK_HEADER + f"[{LOCK_TABLE}]\n" + "".join(f"{line}\n" for line in lines)


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside the target, then rename it over the target, so a
    reader sees the old lock or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file private (0600); a committed file keeps its mode or gets 0644.
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        Path(temporary).chmod(mode)
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
