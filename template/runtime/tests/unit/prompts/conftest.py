"""Prompt files written into tmp_path for the prompt registry's unit tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

WritePrompt = Callable[..., Path]


def valid_prompt(prompt_id: str = "greet", version: str = "1.0.0") -> dict[str, Any]:
    """A small prompt file that passes every check, to break one field at a time."""
    return copy.deepcopy(
        {
            "id": prompt_id,
            "version": version,
            "description": "Greets a person by name.",
            "labels": [],
            "model": {"provider": "mock", "name": "mock-model", "params": {"max_tokens": 50}},
            "fallbacks": [{"provider": "mock", "name": "mock-fallback"}],
            "input": {"fields": {"name": "string", "tone": "string?"}},
            "output": {"format": "text"},
            "metadata": {"owner": "tests"},
            "messages": [
                {"role": "system", "template": "You greet people."},
                {"role": "user", "template": "Greet <name>{{ name }}</name>."},
            ],
        }
    )


@pytest.fixture
def make_prompt() -> Callable[..., dict[str, Any]]:
    """The valid prompt document factory (a fixture: test modules cannot import conftest)."""
    return valid_prompt


@pytest.fixture
def prompts_root(tmp_path: Path) -> Path:
    root = tmp_path / "prompts"
    root.mkdir()
    return root


@pytest.fixture
def write_prompt(prompts_root: Path) -> WritePrompt:
    """Write a prompt document (a dict, dumped as YAML, or raw text) at <id>/<version>.yaml."""

    def write(
        document: dict[str, Any] | str,
        *,
        directory: str | None = None,
        name: str | None = None,
        root: Path | None = None,
    ) -> Path:
        if isinstance(document, dict):
            directory = directory or str(document["id"])
            name = name or f"{document['version']}.yaml"
            text = yaml.safe_dump(document, sort_keys=False)
        else:
            text = document
        assert directory is not None
        assert name is not None
        path = (root or prompts_root) / directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
