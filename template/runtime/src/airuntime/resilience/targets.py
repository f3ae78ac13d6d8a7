"""Parsing the fallback settings: `LLM_FALLBACKS` and `FALLBACK_ON_ERRORS`."""

from __future__ import annotations

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
