"""The prompt registry: every prompt version, loaded and checked once, found by id.

Sources, lowest precedence first: the packaged library, then PROMPTS_DIR. A version in
PROMPTS_DIR replaces the packaged file of the same id@version, and a label given in PROMPTS_DIR
moves there from the packaged versions; within one source a version or a label appears once.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from airuntime.prompts.errors import (
    PromptLoadError,
    PromptLookupError,
    PromptProblem,
)
from airuntime.prompts.loader import (
    PromptSource,
    discover,
    iter_sources,
    load_file,
)
from airuntime.prompts.prompt import Prompt
from airuntime.prompts.rendered import RenderedPrompt
from airuntime.prompts.spec import CANARY, KNOWN_PROVIDERS, PRODUCTION


class PromptRegistry:
    """Prompt versions by id, version and label."""

    def __init__(self, prompts: Iterable[Prompt]) -> None:
        by_id: dict[str, list[Prompt]] = {}
        for prompt in prompts:
            by_id.setdefault(prompt.id, []).append(prompt)
        self._versions = {
            prompt_id: tuple(sorted(versions, key=lambda prompt: prompt.semver))
            for prompt_id, versions in sorted(by_id.items())
        }
        self._labels = {
            prompt_id: {label: prompt for prompt in versions for label in prompt.labels}
            for prompt_id, versions in self._versions.items()
        }
        self._latest = {
            prompt_id: _latest(versions) for prompt_id, versions in self._versions.items()
        }

    @classmethod
    def load(
        cls, sources: Sequence[PromptSource], *, providers: frozenset[str] = KNOWN_PROVIDERS
    ) -> PromptRegistry:
        """Load and check every file of every source; PromptLoadError lists every problem."""
        problems: list[PromptProblem] = []
        merged: dict[tuple[str, str], Prompt] = {}
        for source in sources:
            loaded = _load_source(source, problems, providers)
            # Labels of a higher-precedence source take over: drop them from earlier ones.
            taken = {(prompt.id, label) for prompt in loaded.values() for label in prompt.labels}
            for key, prompt in merged.items():
                kept = tuple(label for label in prompt.labels if (prompt.id, label) not in taken)
                if kept != prompt.labels:
                    merged[key] = dataclasses.replace(prompt, labels=kept)
            merged.update(loaded)
        if problems:
            raise PromptLoadError(problems)
        return cls(merged.values())

    def __iter__(self) -> Iterator[Prompt]:
        """Every prompt version, by id then by SemVer order."""
        for versions in self._versions.values():
            yield from versions

    def __len__(self) -> int:
        return sum(len(versions) for versions in self._versions.values())

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._versions)

    def versions(self, prompt_id: str) -> tuple[Prompt, ...]:
        """The versions of a prompt, oldest first."""
        return self._versions_of(prompt_id)

    def get(self, prompt_id: str, version: str | None = None, label: str | None = None) -> Prompt:
        """One prompt version: by version, by label, or the latest release when neither.

        The latest is the highest SemVer version that is not a pre-release (1.1.0-rc.1 is
        reached by its version or a label); a prompt with only pre-releases gives the highest.
        """
        if version is not None and label is not None:
            raise PromptLookupError(
                f"ask for {prompt_id} by version ({version}) or by label ({label}), not both"
            )
        versions = self._versions_of(prompt_id)
        if version is not None:
            for prompt in versions:
                if prompt.version == version:
                    return prompt
            known = ", ".join(prompt.version for prompt in versions)
            raise PromptLookupError(f"{prompt_id} has no version {version!r}: it has {known}")
        if label is not None:
            labelled = self._labels[prompt_id]
            if label in labelled:
                return labelled[label]
            known = ", ".join(
                f"{name} ({prompt.version})" for name, prompt in sorted(labelled.items())
            )
            raise PromptLookupError(
                f"{prompt_id} has no label {label!r}: "
                + (f"its labels are {known}" if known else "none of its versions has a label")
            )
        return self._latest[prompt_id]

    def production(self, prompt_id: str) -> Prompt:
        """The version that serves by default: the one labelled production, else the latest
        release."""
        latest = self.get(prompt_id)  # an unknown id fails here, naming the known ones
        return self._labels[prompt_id].get(PRODUCTION) or latest

    def choose(self, prompt_id: str, key: str) -> Prompt:
        """The version a call serves under a weighted rollout: the canary (the version labelled
        canary) for its `canary_weight` percent of keys, production for the rest. Sticky: the
        same key (a user id, a request id) always lands on the same side."""
        production = self.production(prompt_id)
        canary = self._labels[prompt_id].get(CANARY)
        if canary is None or canary is production or canary.canary_weight <= 0:
            return production
        return canary if rollout_bucket(prompt_id, key) < canary.canary_weight else production

    def render(
        self,
        prompt_id: str,
        inputs: Mapping[str, Any],
        *,
        version: str | None = None,
        label: str | None = None,
    ) -> RenderedPrompt:
        """Validate the inputs and render one prompt version (see `get` for which one)."""
        return self.get(prompt_id, version=version, label=label).render(inputs)

    def _versions_of(self, prompt_id: str) -> tuple[Prompt, ...]:
        versions = self._versions.get(prompt_id)
        if versions is None:
            known = ", ".join(self._versions) or "none are loaded"
            raise PromptLookupError(f"unknown prompt {prompt_id!r}: known prompts are {known}")
        return versions


def rollout_bucket(prompt_id: str, key: str) -> int:
    """0-99, fixed for a (prompt, key): a stable hash, the same in every process."""
    digest = hashlib.sha256(f"{prompt_id}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _latest(versions: tuple[Prompt, ...]) -> Prompt:
    releases = [prompt for prompt in versions if prompt.semver.prerelease is None]
    return (releases or list(versions))[-1]


def _load_source(
    source: PromptSource, problems: list[PromptProblem], providers: frozenset[str]
) -> dict[tuple[str, str], Prompt]:
    refs, misplaced = discover(source)
    problems.extend(misplaced)
    loaded: dict[tuple[str, str], Prompt] = {}
    label_owner: dict[tuple[str, str], Prompt] = {}
    for ref in refs:
        result = load_file(ref, providers=providers)
        if isinstance(result, list):
            problems.extend(result)
            continue
        key = (result.id, result.version)
        if key in loaded:
            problems.append(
                PromptProblem(
                    result.file,
                    "version",
                    f"{result.ref} is also in {loaded[key].file}: keep one file per version",
                )
            )
            continue
        for label in result.labels:
            owner = label_owner.setdefault((result.id, label), result)
            if owner is not result:
                problems.append(
                    PromptProblem(
                        result.file,
                        "labels",
                        f"{label!r} is also on {owner.ref} ({owner.file}): a label names one "
                        "version, so remove it from one of them",
                    )
                )
        loaded[key] = result
    return loaded


def load_registry(
    library: Traversable | None = None,
    prompts_dir: Path | None = None,
    *,
    providers: frozenset[str] = KNOWN_PROVIDERS,
) -> PromptRegistry:
    """Load the packaged `library` and the prompts in `prompts_dir`, checking every file;
    targets may name only `providers`."""
    sources = list(iter_sources(library, prompts_dir))
    return PromptRegistry.load(sources, providers=providers)


_SHARED: dict[tuple[str | None, Path | None, frozenset[str]], PromptRegistry] = {}
_SHARED_KEPT = 8


def shared_registry(
    library: Traversable | None,
    prompts_dir: Path | None,
    providers: frozenset[str] = KNOWN_PROVIDERS,
) -> PromptRegistry:
    """The process-wide registry of these sources: loaded and checked on first use, then
    reused. Load it at start-up so a bad prompt file stops the program before any request."""
    key = (None if library is None else str(library), prompts_dir, providers)
    registry = _SHARED.get(key)
    if registry is None:
        registry = load_registry(library, prompts_dir, providers=providers)
        if len(_SHARED) >= _SHARED_KEPT:
            _SHARED.clear()
        _SHARED[key] = registry
    return registry


def clear_registry_cache() -> None:
    """Forget loaded registries (tests, or after changing prompt files in a running process)."""
    _SHARED.clear()
