"""Parsing the fallback settings: `LLM_FALLBACKS` and `FALLBACK_ON_ERRORS`."""

from __future__ import annotations

from airuntime.types import ModelTarget

# Terminal error kinds a fallback may be allowed to mask, on request.
MASKABLE_ERRORS = frozenset({"authentication", "bad_request"})


def parse_targets(spec: str) -> tuple[ModelTarget, ...]:
    """`provider:model,provider:model` -> targets; raises ValueError naming the bad entry."""
    targets: list[ModelTarget] = []
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        provider, separator, model = entry.partition(":")
        if not separator or not provider.strip() or not model.strip():
            raise ValueError(f"{entry!r} is not provider:model (e.g. openai:gpt-4.1-mini)")
        targets.append(ModelTarget(provider=provider.strip(), model=model.strip()))
    return tuple(targets)


def parse_error_kinds(spec: str) -> frozenset[str]:
    """`authentication,bad_request` -> kinds; raises ValueError naming an unknown kind."""
    kinds = frozenset(filter(None, (part.strip() for part in spec.split(","))))
    unknown = sorted(kinds - MASKABLE_ERRORS)
    if unknown:
        allowed = ", ".join(sorted(MASKABLE_ERRORS))
        raise ValueError(f"unknown error kind {', '.join(unknown)}: use {allowed}")
    return kinds
