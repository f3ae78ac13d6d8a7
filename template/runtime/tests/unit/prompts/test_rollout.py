"""Weighted canary rollout: which version a call serves, sticky by key, and the checks of
`canary_weight`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airuntime.prompts import PromptLoadError, load_registry
from airuntime.prompts.registry import rollout_bucket

MakePrompt = Callable[..., dict[str, Any]]


def rollout(
    make_prompt: MakePrompt, write_prompt: Callable[..., Path], weight: int | None = 10
) -> None:
    stable = make_prompt(version="1.0.0")
    stable["labels"] = ["production"]
    canary = make_prompt(version="1.1.0")
    canary["labels"] = ["canary"]
    if weight is not None:
        canary["canary_weight"] = weight
    newest = make_prompt(version="1.2.0")  # the latest release, not yet labelled
    for document in (stable, canary, newest):
        write_prompt(document)


def test_production_serves_by_default_even_when_a_later_release_exists(
    make_prompt: MakePrompt, write_prompt: Callable[..., Path], prompts_root: Path
) -> None:
    rollout(make_prompt, write_prompt, weight=0)
    registry = load_registry(prompts_root)

    assert registry.production("greet").version == "1.0.0"
    assert registry.get("greet").version == "1.2.0"  # by no label: the latest release
    assert {registry.choose("greet", f"user-{n}").version for n in range(200)} == {"1.0.0"}


def test_the_canary_takes_its_weight_of_keys_and_each_key_sticks(
    make_prompt: MakePrompt, write_prompt: Callable[..., Path], prompts_root: Path
) -> None:
    rollout(make_prompt, write_prompt, weight=10)
    registry = load_registry(prompts_root)

    served = Counter(registry.choose("greet", f"user-{n}").version for n in range(10_000))
    again = [registry.choose("greet", f"user-{n}").version for n in range(50)]

    assert set(served) == {"1.0.0", "1.1.0"}
    assert 900 <= served["1.1.0"] <= 1100  # 10% of 10,000 keys, within 1 point
    assert again == [registry.choose("greet", f"user-{n}").version for n in range(50)]
    assert rollout_bucket("greet", "user-1") == rollout_bucket("greet", "user-1")
    assert 0 <= rollout_bucket("greet", "x") < 100


def test_without_production_the_latest_release_is_production(
    make_prompt: MakePrompt, write_prompt: Callable[..., Path], prompts_root: Path
) -> None:
    write_prompt(make_prompt(version="1.0.0"))
    write_prompt(make_prompt(version="2.0.0"))

    assert load_registry(prompts_root).production("greet").version == "2.0.0"


def test_a_canary_weight_needs_the_canary_label_and_a_percentage(
    make_prompt: MakePrompt, write_prompt: Callable[..., Path], prompts_root: Path
) -> None:
    unlabelled = make_prompt(version="1.0.0")
    unlabelled["canary_weight"] = 10
    too_big = make_prompt(version="1.1.0")
    too_big["labels"] = ["canary"]
    too_big["canary_weight"] = 150
    write_prompt(unlabelled)
    write_prompt(too_big)

    with pytest.raises(PromptLoadError) as raised:
        load_registry(prompts_root)

    problems = "\n".join(str(problem) for problem in raised.value.problems)
    assert "canary_weight is the traffic share of the canary: add 'canary' to labels" in problems
    assert "less than or equal to 100" in problems


def test_the_weight_is_not_hashed_so_a_rollout_keeps_the_lock(
    make_prompt: MakePrompt, write_prompt: Callable[..., Path], prompts_root: Path
) -> None:
    document = make_prompt(version="1.0.0")
    write_prompt(document)
    before = load_registry(prompts_root).get("greet").content_hash
    document["labels"] = ["canary"]
    document["canary_weight"] = 25
    write_prompt(document)

    assert load_registry(prompts_root).get("greet").content_hash == before
