"""Copier migrations: the steps a template version runs inside a project it updates.

Each step is wired in copier.yml `_migrations` for the template version that needs it, e.g.:

    - version: "0.3.0"
      when: "{{ _stage == 'after' }}"
      command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/hooks/migrate.py",
                "move", "docs/old-name.md", "docs/new-name.md"]

Copier runs the entry only while updating from a version older than `version` to one at least
as new, with the project as the working directory and the stage in `$STAGE`. The rules every
step keeps: standard library only, no network; idempotent (a second run changes nothing); a
missing file is reported, never an error (the user deleted it, or the project was made with
`--skip-tasks`); a file of the user's is never overwritten; and one line says what was done.

Steps:

- `move OLD NEW` (stage `after`): the template moved a file from OLD to NEW. Copier has no
  rename detection, so on its own it would delete the user's OLD (edits and all) and render a
  fresh NEW. Run after the update, this step writes the user's committed OLD to NEW instead, so
  their content arrives at the new place byte for byte. Run before the update it would be worse:
  Copier's three-way merge would see NEW as added on both sides (an empty base) and turn the
  whole file into a conflict. The version that moves a file must not also change its content
  (change it in a later version), since the step carries the user's file over as it was.
- `runtime-split` (stage `after`, version 0.2.0): a v0.1.0 project moves to the runtime/app-shell
  layout. Old runtime files the user changed are kept in legacy/v0.1.0/ (Copier deleted them),
  the user's imports of old module paths are rewritten to `airuntime` and `<package>.wiring`,
  uv.lock is refreshed, and what is left to do by hand is listed (hooks/upgrade_v0_1.py). It
  prints several lines: each one without leading spaces gets the migration's label.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath

USAGE = (
    "usage: migrate.py move OLD NEW   (paths relative to the project root)"
    " | migrate.py runtime-split"
)


class MigrationError(Exception):
    """A step that cannot be run as wired; the message is one line saying what to fix."""


def _relative(path: str) -> PurePosixPath:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or path.endswith("/"):
        raise MigrationError(f"{path!r} is not a file path relative to the project root")
    return pure


def _committed(project: Path, path: PurePosixPath) -> tuple[bytes, int] | None:
    """The file's content and mode in the project's last commit, or None when it has none."""
    try:
        listed = subprocess.run(
            ["git", "ls-tree", "HEAD", "--", str(path)],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # git is not installed: the project cannot have a last commit
        return None
    fields = listed.stdout.split()
    if listed.returncode != 0 or len(fields) < 3 or fields[1] != "blob":
        return None
    shown = subprocess.run(
        ["git", "cat-file", "blob", fields[2]],
        cwd=project,
        capture_output=True,
        check=True,
    )
    return shown.stdout, 0o755 if fields[0] == "100755" else 0o644


def _write(target: Path, content: bytes, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    target.chmod(mode)


def move(project: Path, old: str, new: str) -> str:
    """Carry the user's file at OLD over to NEW; return one line saying what happened."""
    old_path, new_path = _relative(old), _relative(new)
    source, target = project / old_path, project / new_path
    committed_old = _committed(project, old_path)
    if _committed(project, new_path) is not None:
        # NEW was already a file of the user's before this update: never overwrite it.
        if committed_old is not None and not source.exists():
            _write(source, *committed_old)
            return (
                f"{new} was already in your project, so it was kept and {old} was restored: "
                "merge the two by hand"
            )
        return f"{new} was already in your project: left {old} and {new} as they were"
    if committed_old is None:
        if source.is_file() and not target.exists():  # run by hand outside git
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
            return f"moved {old} to {new}"
        return f"nothing to move: {old} is not in the project (deleted, or never created)"
    content, mode = committed_old
    if target.is_file() and target.read_bytes() == content:
        return f"{old} is already at {new}: nothing to do"
    # NEW is the template's fresh copy (it was not in the last commit): the user's file wins.
    _write(target, content, mode)
    if source.is_file() and source.read_bytes() == content:
        source.unlink()
    return f"moved your {old} to {new} (its content as in your last commit)"


def runtime_split(project: Path) -> list[str]:
    """The upgrade from v0.1.0's layout; it lives in upgrade_v0_1.py, beside this file."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import upgrade_v0_1  # only this step needs it (and its data file)

    return upgrade_v0_1.runtime_split(project)


STEPS: dict[str, tuple[str, Callable[..., str | list[str]]]] = {
    "move": ("after", move),
    "runtime-split": ("after", runtime_split),
}
ARITY = {"move": 2, "runtime-split": 0}


def run(arguments: list[str], project: Path, environment: dict[str, str]) -> str | list[str]:
    """Run the step named by the arguments; return its line(s) or raise MigrationError."""
    if not arguments or arguments[0] not in STEPS:
        raise MigrationError(USAGE)
    name, *parameters = arguments
    stage, step = STEPS[name]
    running_stage = environment.get("STAGE")
    if running_stage and running_stage != stage:
        raise MigrationError(
            f"the {name} step runs in the {stage!r} stage, not {running_stage!r}: "
            f"wire it in copier.yml with when: \"{{{{ _stage == '{stage}' }}}}\""
        )
    if len(parameters) != ARITY[name]:
        raise MigrationError(USAGE)
    return step(project, *parameters)


def main() -> int:
    version = os.environ.get("VERSION_PEP440_CURRENT") or os.environ.get("VERSION_CURRENT")
    label = f"migration {version}" if version else "migration"
    try:
        said = run(sys.argv[1:], Path.cwd(), dict(os.environ))
    except MigrationError as error:
        print(f"{label}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{label}: could not finish ({error}); do the step by hand", file=sys.stderr)
        return 1
    for line in [said] if isinstance(said, str) else said:
        print(line if line.startswith(" ") else f"{label}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
