"""Finding a prompt version: latest by SemVer, by version, by label, and the override directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airuntime.prompts import (
    PromptLoadError,
    PromptLookupError,
    PromptRegistry,
    clear_registry_cache,
    load_registry,
    shared_registry,
)
from airuntime.prompts.loader import PromptSource

MakePrompt = Callable[..., dict[str, Any]]
WritePrompt = Callable[..., Path]


@pytest.fixture
def registry(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> PromptRegistry:
    for version, labels in [
        ("1.0.0", ["production"]),
        ("1.2.0", ["staging"]),
        ("1.10.0", []),
        ("2.0.0-rc.1", ["canary"]),
    ]:
        document = make_prompt(version=version)
        document["labels"] = labels
        write_prompt(document)
    write_prompt(make_prompt("farewell", "0.1.0"))
    return PromptRegistry.load([PromptSource.directory(prompts_root)])


def test_latest_is_the_highest_release_by_semver_not_by_text(registry: PromptRegistry) -> None:
    # 1.10.0 > 1.2.0 by SemVer although "1.10.0" < "1.2.0" as text; 2.0.0-rc.1 is a pre-release.
    assert registry.get("greet").version == "1.10.0"


def test_a_prompt_with_only_pre_releases_gives_the_highest(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    write_prompt(make_prompt(version="1.0.0-alpha"))
    write_prompt(make_prompt(version="1.0.0-beta.2"))

    registry = PromptRegistry.load([PromptSource.directory(prompts_root)])

    assert registry.get("greet").version == "1.0.0-beta.2"


def test_versions_and_ids_are_in_order(registry: PromptRegistry) -> None:
    assert registry.ids == ("farewell", "greet")
    assert [prompt.version for prompt in registry.versions("greet")] == [
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "2.0.0-rc.1",
    ]
    assert len(registry) == 5
    assert [prompt.ref for prompt in registry][:2] == ["farewell@0.1.0", "greet@1.0.0"]


def test_get_by_version_and_by_label(registry: PromptRegistry) -> None:
    assert registry.get("greet", version="1.2.0").version == "1.2.0"
    assert registry.get("greet", version="2.0.0-rc.1").labels == ("canary",)
    assert registry.get("greet", label="production").version == "1.0.0"
    assert registry.get("greet", label="canary").version == "2.0.0-rc.1"


@pytest.mark.parametrize(
    ("prompt_id", "version", "label", "message"),
    [
        ("greeet", None, None, "unknown prompt 'greeet': known prompts are farewell, greet"),
        ("greet", "3.0.0", None, "greet has no version '3.0.0': it has 1.0.0, 1.2.0, 1.10.0, 2.0"),
        (
            "greet",
            None,
            "prod",
            "greet has no label 'prod': its labels are canary (2.0.0-rc.1), production (1.0.0), "
            "staging (1.2.0)",
        ),
        ("farewell", None, "production", "none of its versions has a label"),
        ("greet", "1.0.0", "production", "by version (1.0.0) or by label (production), not both"),
    ],
)
def test_lookup_errors_say_what_exists(
    registry: PromptRegistry, prompt_id: str, version: str | None, label: str | None, message: str
) -> None:

    with pytest.raises(PromptLookupError) as caught:
        registry.get(prompt_id, version=version, label=label)

    assert message in str(caught.value)
    assert isinstance(caught.value, LookupError)


def test_an_empty_registry_says_so() -> None:
    with pytest.raises(PromptLookupError, match="none are loaded"):
        PromptRegistry([]).get("greet")


def test_override_directory_replaces_same_version_and_takes_labels(
    write_prompt: WritePrompt, prompts_root: Path, tmp_path: Path, make_prompt: MakePrompt
) -> None:
    packaged = make_prompt(version="1.0.0")
    packaged["labels"] = ["production", "staging"]
    write_prompt(packaged)
    write_prompt(make_prompt(version="1.1.0"))
    override_root = tmp_path / "override"
    replaced = make_prompt(version="1.1.0")
    replaced["description"] = "Replaced by the override directory."
    newer = make_prompt(version="1.2.0-rc.1")
    newer["labels"] = ["production"]
    write_prompt(replaced, root=override_root)
    write_prompt(newer, root=override_root)

    registry = PromptRegistry.load(
        [
            PromptSource.directory(prompts_root, origin="packaged"),
            PromptSource.directory(override_root),
        ]
    )

    assert registry.get("greet", version="1.1.0").description == (
        "Replaced by the override directory."
    )
    assert registry.get("greet", version="1.1.0").origin == "PROMPTS_DIR"
    assert registry.get("greet", version="1.0.0").origin == "packaged"
    assert registry.get("greet", label="production").version == "1.2.0-rc.1"
    assert registry.get("greet", version="1.0.0").labels == ("staging",)
    assert registry.get("greet").version == "1.1.0"


def test_a_library_loads_as_the_packaged_source(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    write_prompt(make_prompt())
    write_prompt(make_prompt("farewell", "0.1.0"))

    registry = load_registry(prompts_root)

    assert set(registry.ids) == {"farewell", "greet"}
    assert all(prompt.origin == "packaged" for prompt in registry)


def test_no_source_is_an_empty_registry() -> None:
    assert len(load_registry()) == 0


def test_a_missing_library_is_a_project_without_prompts_but_a_missing_override_is_an_error(
    tmp_path: Path,
) -> None:
    assert len(load_registry(tmp_path / "library")) == 0
    with pytest.raises(PromptLoadError) as refused:
        load_registry(tmp_path / "library", tmp_path / "override")

    assert "the PROMPTS_DIR directory does not exist" in str(refused.value.problems[0])


def test_the_shared_registry_loads_once_per_set_of_sources(
    write_prompt: WritePrompt, prompts_root: Path, tmp_path: Path, make_prompt: MakePrompt
) -> None:
    clear_registry_cache()
    write_prompt(make_prompt())
    override = tmp_path / "override"
    override.mkdir()

    first = shared_registry(prompts_root, None)

    assert shared_registry(prompts_root, None) is first
    assert first.get("greet").origin == "packaged"
    assert shared_registry(prompts_root, override) is not first
    clear_registry_cache()
    assert shared_registry(prompts_root, None) is not first


def test_a_target_may_name_only_the_projects_providers(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    document = make_prompt()
    document["fallbacks"] = [{"provider": "anthropic", "name": "claude-haiku-4-5"}]
    write_prompt(document)

    assert load_registry(prompts_root).get("greet").fallbacks[0].provider == "anthropic"
    with pytest.raises(PromptLoadError) as refused:
        load_registry(prompts_root, providers=frozenset({"mock", "openai"}))

    assert "'anthropic' is not one of this project's providers (mock, openai)" in str(
        refused.value.problems[0]
    )
