"""The fallback settings' parsers: LLM_FALLBACKS (`provider:model,...`), FALLBACK_ON_ERRORS
(terminal error kinds a fallback may mask) and SERVICE_MODELS (`name=provider:model>...`)."""

from __future__ import annotations

import re

import pytest

from airuntime.resilience.targets import (
    MASKABLE_ERRORS,
    parse_error_kinds,
    parse_model_aliases,
    parse_targets,
)
from airuntime.types import ModelTarget


def test_targets_keep_their_order_and_lose_surrounding_spaces() -> None:
    targets = parse_targets(" openai:gpt-4.1-mini , anthropic : claude-haiku-4-5,mock:m")

    assert targets == (
        ModelTarget(provider="openai", model="gpt-4.1-mini"),
        ModelTarget(provider="anthropic", model="claude-haiku-4-5"),
        ModelTarget(provider="mock", model="m"),
    )


def test_a_model_name_may_contain_colons() -> None:
    assert parse_targets("openai:ft:gpt-4.1-mini:team") == (
        ModelTarget(provider="openai", model="ft:gpt-4.1-mini:team"),
    )


@pytest.mark.parametrize("spec", ["", " ", ",", " , ,"])
def test_an_empty_spec_is_no_fallback(spec: str) -> None:
    assert parse_targets(spec) == ()


@pytest.mark.parametrize(
    ("spec", "bad"),
    [
        ("openai", "openai"),
        ("openai:gpt-5,anthropic", "anthropic"),
        (":gpt-5", ":gpt-5"),
        ("openai:", "openai:"),
        ("openai: ", "openai:"),  # the entry is stripped before it is named
        ("garbage::", "garbage::"),
        ("openai::gpt-5", "openai::gpt-5"),  # a model name may not begin with a colon
        ("openai:gpt-5:", "openai:gpt-5:"),  # nor end with one
    ],
)
def test_an_entry_that_is_not_provider_model_is_named(spec: str, bad: str) -> None:
    message = f"{bad!r} is not provider:model (e.g. openai:gpt-4.1-mini)"

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_targets(spec)


def test_with_the_known_providers_a_target_naming_another_is_refused() -> None:
    known = ["openai", "mock", "anthropic"]
    message = "'garbage:m' names the unknown provider 'garbage': use anthropic, mock, openai"

    assert parse_targets(" mock : m , openai:gpt-5", providers=known) == (
        ModelTarget(provider="mock", model="m"),
        ModelTarget(provider="openai", model="gpt-5"),
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_targets("openai:gpt-5,garbage:m", providers=known)
    # Without a colon the entry is not a target at all, whatever the providers.
    with pytest.raises(ValueError, match=r"^'garbage' is not provider:model"):
        parse_targets("garbage", providers=known)


def test_error_kinds_are_the_maskable_terminal_kinds() -> None:
    assert {"authentication", "bad_request"} == MASKABLE_ERRORS
    assert parse_error_kinds(" authentication , bad_request,") == MASKABLE_ERRORS
    assert parse_error_kinds("bad_request") == {"bad_request"}
    assert parse_error_kinds("") == frozenset()


def test_unknown_error_kinds_are_all_named_in_order() -> None:
    message = "unknown error kind content_filtered, server_error: use authentication, bad_request"

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_error_kinds("server_error,authentication,content_filtered")


def test_model_aliases_map_names_to_chains_in_order() -> None:
    aliases = parse_model_aliases(
        " default = openai:gpt-5-mini > anthropic:claude-haiku-4-5 ,fast=openai:llama3.2:8b,"
    )

    assert aliases == {
        "default": (
            ModelTarget(provider="openai", model="gpt-5-mini"),
            ModelTarget(provider="anthropic", model="claude-haiku-4-5"),
        ),
        "fast": (ModelTarget(provider="openai", model="llama3.2:8b"),),
    }
    assert list(aliases) == ["default", "fast"]
    assert parse_model_aliases("") == {}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("fast", "'fast' is not name=provider:model>provider:model"),
        ("=openai:gpt-5-nano", "is not name=provider:model"),
        ("fast=", "is not name=provider:model"),
        ("fast=openai:gpt-5-nano>", "has an empty target"),
        ("fast=openai", "model name 'fast': 'openai' is not provider:model"),
        ("fa st=openai:gpt-5-nano", "model name 'fa st' is not usable"),
        ("fast=openai:a,fast=openai:b", "model name 'fast' is given twice"),
        ("fast=openai:a>openai:a", "names a target twice"),
        ("fast=vertex:gemini", "unknown provider 'vertex'"),
    ],
)
def test_bad_model_aliases_are_one_line_naming_the_entry(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as raised:
        parse_model_aliases(spec, providers={"openai", "anthropic"})

    assert "\n" not in str(raised.value)
