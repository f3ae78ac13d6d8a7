"""Content hashes: stable across YAML layout, changed by any change of content."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from airuntime.prompts import PromptRegistry
from airuntime.prompts.loader import PromptSource
from airuntime.prompts.spec import content_hash

MakePrompt = Callable[..., dict[str, Any]]
WritePrompt = Callable[..., Path]


def hash_of(write_prompt: WritePrompt, root: Path, document: dict[str, Any] | str) -> str:
    write_prompt(document, directory="greet", name="1.0.0.yaml")
    return PromptRegistry.load([PromptSource.directory(root)]).get("greet").content_hash


def test_the_recipe_is_pinned() -> None:
    # sha256 of '{"id":"greet","version":"1.0.0"}': changing the recipe would invalidate every
    # committed prompts.lock, so it must not change by accident.
    assert content_hash({"version": "1.0.0", "id": "greet", "labels": ["x"]}) == (
        "sha256:fb9c2cd9e0c83a7520befce4a752ea3faa0ccdce837a17c5eb837943a3c1f6d7"
    )


def test_same_content_gives_the_same_hash(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    first = hash_of(write_prompt, prompts_root, make_prompt())
    second = hash_of(write_prompt, prompts_root, make_prompt())

    assert first == second


def test_layout_key_order_comments_and_labels_do_not_change_it(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    document = make_prompt()
    baseline = hash_of(write_prompt, prompts_root, document)
    reordered = dict(reversed(list(document.items())))
    reordered["labels"] = ["production"]
    text = "# reviewed by the team\n" + yaml.safe_dump(
        reordered, sort_keys=False, default_flow_style=True, width=60
    )

    assert hash_of(write_prompt, prompts_root, text) == baseline


def test_a_whitespace_only_change_in_a_template_changes_it(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    document = make_prompt()
    baseline = hash_of(write_prompt, prompts_root, document)
    document["messages"][1]["template"] = document["messages"][1]["template"] + " "

    assert hash_of(write_prompt, prompts_root, document) != baseline


def test_any_other_change_of_content_changes_it(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    baseline = hash_of(write_prompt, prompts_root, make_prompt())
    changes = [
        ("description", "Greets a person warmly."),
        ("model", {"provider": "mock", "name": "mock-model", "params": {"max_tokens": 51}}),
        ("fallbacks", []),
        ("metadata", {"owner": "someone else"}),
        ("output", {"format": "json"}),
        ("tools", ["lookup_order"]),
        ("tools", []),
    ]
    hashes = set()
    for key, value in changes:
        document = make_prompt()
        document[key] = value
        hashes.add(hash_of(write_prompt, prompts_root, document))

    assert baseline not in hashes
    assert len(hashes) == len(changes)
