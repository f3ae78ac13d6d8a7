"""Promote and roll back prompt versions: label moves, written into the prompt files.

A rollout is labels: `production` serves by default, `canary` (with `canary_weight`, the
percent of traffic it takes) is tried on part of the traffic, `previous` remembers the version
that was production before the last promotion. Labels and `canary_weight` are not part of a
version's content hash, so promoting and rolling back are file changes a reviewer reads in the
diff that keep `prompts.lock` valid: no version changes what it does.

The files are edited as text, so comments and layout stay: the `labels:` line is rewritten (it
must be in flow style, `labels: [a, b]`) and a promoted version's `canary_weight:` line goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from airuntime.prompts.errors import PromptLookupError
from airuntime.prompts.prompt import Prompt
from airuntime.prompts.registry import PromptRegistry
from airuntime.prompts.spec import CANARY, PREVIOUS, PRODUCTION

_LABELS_LINE = re.compile(r"^labels:[ \t]*\[[^\]\n]*\][ \t]*(?:#[^\n]*)?$", re.MULTILINE)
_ANY_LABELS = re.compile(r"^labels:", re.MULTILINE)
_VERSION_LINE = re.compile(r"^version:[^\n]*\n", re.MULTILINE)
_WEIGHT_LINE = re.compile(r"^canary_weight:[^\n]*\n", re.MULTILINE)


class RolloutError(PromptLookupError):
    """A promotion or rollback that cannot be made; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class FileEdit:
    """One prompt file's new text, and the labels it now gives its version."""

    path: Path
    text: str
    ref: str
    labels: tuple[str, ...]


def promote(registry: PromptRegistry, prompt_id: str, version: str) -> list[FileEdit]:
    """`version` becomes production; the old production becomes `previous` (what rollback
    restores); the promoted version stops being the canary."""
    target = registry.get(prompt_id, version=version)
    current = _holder(registry, prompt_id, PRODUCTION)
    if current is target:
        raise RolloutError(f"{target.ref} is already production: nothing to promote")
    edits = {target.ref: _moved(target, add=PRODUCTION, drop={CANARY, PREVIOUS}, weight=False)}
    if current is not None:
        edits[current.ref] = _moved(current, add=PREVIOUS, drop={PRODUCTION})
    stale = _holder(registry, prompt_id, PREVIOUS)
    if stale is not None and stale.ref not in edits:
        edits[stale.ref] = _moved(stale, drop={PREVIOUS})
    return list(edits.values())


def rollback(registry: PromptRegistry, prompt_id: str) -> list[FileEdit]:
    """The `previous` version is production again; the version it replaces loses the label."""
    registry.get(prompt_id)  # an unknown id fails naming the known ones
    previous = _holder(registry, prompt_id, PREVIOUS)
    if previous is None:
        raise RolloutError(
            f"{prompt_id} has no previous production version to roll back to (`prompts "
            "promote` labels the one it replaces `previous`)"
        )
    edits = [_moved(previous, add=PRODUCTION, drop={PREVIOUS, CANARY}, weight=False)]
    current = _holder(registry, prompt_id, PRODUCTION)
    if current is not None:
        edits.append(_moved(current, drop={PRODUCTION}))
    return edits


def write(edits: list[FileEdit]) -> None:
    for edit in edits:
        edit.path.write_text(edit.text, encoding="utf-8")


def _holder(registry: PromptRegistry, prompt_id: str, label: str) -> Prompt | None:
    return next((p for p in registry.versions(prompt_id) if label in p.labels), None)


def _moved(
    prompt: Prompt, *, add: str | None = None, drop: set[str], weight: bool = True
) -> FileEdit:
    labels = tuple(label for label in prompt.labels if label not in drop and label != add)
    labels = (*labels, add) if add is not None else labels
    path = Path(prompt.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RolloutError(f"cannot read {path}: {error.strerror}") from None
    line = f"labels: [{', '.join(labels)}]"
    if _LABELS_LINE.search(text):
        text = _LABELS_LINE.sub(line, text, count=1)
    elif _ANY_LABELS.search(text):
        raise RolloutError(
            f"{path}: write its labels on one line, e.g. `labels: [production]`, so they can "
            "be moved"
        )
    else:
        text = _VERSION_LINE.sub(lambda found: found.group(0) + line + "\n", text, count=1)
    if not weight:
        text = _WEIGHT_LINE.sub("", text)
    return FileEdit(path, text, prompt.ref, labels)
