"""Parsing the fallback settings: `LLM_FALLBACKS`, `FALLBACK_ON_ERRORS` and the service's
model names (`SERVICE_MODELS`)."""

from __future__ import annotations

import re
from collections.abc import Collection

from airuntime.types import ModelTarget

# Terminal error kinds a fallback may be allowed to mask, on request.
MASKABLE_ERRORS = frozenset({"authentication", "bad_request"})


def parse_targets(
    spec: str, *, providers: Collection[str] | None = None
) -> tuple[ModelTarget, ...]:
    """`provider:model,provider:model` -> targets; raises ValueError naming the bad entry.

    A model name may hold colons (`openai:llama3.2:8b` on an OpenAI-compatible server) but not
    begin or end with one. With `providers`, a target naming any other provider is refused
    too: a fallback to a provider nobody configured would only ever be skipped.
    """
    targets: list[ModelTarget] = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        provider, separator, model = (part.strip() for part in entry.partition(":"))
        if separator and providers is not None and provider not in providers:
            known = ", ".join(sorted(providers))
            raise ValueError(f"{entry!r} names the unknown provider {provider!r}: use {known}")
        if not (separator and provider and model) or ":" in (model[0], model[-1]):
            raise ValueError(f"{entry!r} is not provider:model (e.g. openai:gpt-4.1-mini)")
        targets.append(ModelTarget(provider=provider, model=model))
    return tuple(targets)


def parse_error_kinds(spec: str) -> frozenset[str]:
    """`authentication,bad_request` -> kinds; raises ValueError naming an unknown kind."""
    kinds = frozenset(filter(None, (part.strip() for part in spec.split(","))))
    unknown = sorted(kinds - MASKABLE_ERRORS)
    if unknown:
        allowed = ", ".join(sorted(MASKABLE_ERRORS))
        raise ValueError(f"unknown error kind {', '.join(unknown)}: use {allowed}")
    return kinds


# A model name clients may ask for (`default`, `fast`, `gpt-5-mini`): what OpenAI's model ids
# look like, and nothing that would need quoting in a URL path or a header.
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def parse_model_aliases(
    spec: str, *, providers: Collection[str] | None = None
) -> dict[str, tuple[ModelTarget, ...]]:
    """`name=provider:model>provider:model,name=provider:model` -> each name's target chain
    (the primary, then its fallbacks in order); raises ValueError naming the bad entry.

    The targets are written as in LLM_FALLBACKS; `>` reads "falls back to" (a comma already
    separates the names).
    """
    aliases: dict[str, tuple[ModelTarget, ...]] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, separator, chain = (part.strip() for part in entry.partition("="))
        if not (separator and name and chain):
            raise ValueError(
                f"{entry!r} is not name=provider:model>provider:model "
                "(e.g. fast=openai:gpt-5-nano>anthropic:claude-haiku-4-5)"
            )
        if not _ALIAS.match(name):
            raise ValueError(
                f"model name {name!r} is not usable: use letters, digits and ._:/- "
                "(starting with a letter or digit)"
            )
        if name in aliases:
            raise ValueError(f"model name {name!r} is given twice: give each name one chain")
        pieces = [piece.strip() for piece in chain.split(">")]
        if not all(pieces):
            raise ValueError(f"{entry!r} has an empty target: write provider:model>provider:model")
        try:
            targets = tuple(
                target for piece in pieces for target in parse_targets(piece, providers=providers)
            )
        except ValueError as error:
            raise ValueError(f"model name {name!r}: {error}") from None
        if len(set(targets)) != len(targets):
            raise ValueError(f"{entry!r} names a target twice: list each target once")
        aliases[name] = targets
    return aliases
