"""What can go wrong in a MockLLM call: the fault kinds, the chaos spec and the latency spec.

Both specs are short strings so they fit in an environment variable (`MOCK_FAULTS`,
`MOCK_LATENCY_MS`); the parsers raise `ValueError` with one line naming what is wrong, which the
settings turn into a configuration error.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from airuntime.errors import (
    ContentFilteredError,
    LLMError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
)

FaultKind = Literal[
    "timeout",
    "rate_limit",
    "server_error",
    "connection_error",
    "malformed_json",
    "truncated",
    "content_filter",
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
# The faults that are an answer the caller must cope with, not an exception.
OUTPUT_FAULTS: frozenset[FaultKind] = frozenset({"malformed_json", "truncated"})
DEFAULT_RETRY_AFTER_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted fault: one step of a MockLLM script, or what chaos mode drew.

    `retry_after` is the server's wait hint of a `rate_limit`; `at_chunk` makes a streamed call
    fail after yielding that many chunks (a complete() call fails as a whole).
    """

    kind: FaultKind
    retry_after: float | None = DEFAULT_RETRY_AFTER_SECONDS
    at_chunk: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; use one of: {', '.join(FAULT_KINDS)}")
        if self.at_chunk is not None and self.at_chunk < 0:
            raise ValueError(f"at_chunk must be 0 or more, got {self.at_chunk}")


def fault_error(fault: Fault, *, provider: str, model: str) -> LLMError:
    """The exception an exception-type fault raises, exactly as a real adapter would."""
    detail = "injected by MockLLM"
    if fault.kind == "timeout":
        return ProviderTimeoutError(f"timed out ({detail})", provider=provider, model=model)
    if fault.kind == "rate_limit":
        return RateLimitedError(
            f"rate limited ({detail})",
            provider=provider,
            model=model,
            retry_after=fault.retry_after,
        )
    if fault.kind == "server_error":
        return ServerError(
            f"internal server error ({detail})", provider=provider, model=model, status_code=500
        )
    if fault.kind == "connection_error":
        return ProviderConnectionError(
            f"connection reset ({detail})", provider=provider, model=model
        )
    if fault.kind == "content_filter":
        return ContentFilteredError(
            f"output stopped by the content filter ({detail})", provider=provider, model=model
        )
    raise ValueError(f"{fault.kind} is an output fault, not an error")


def parse_fault_spec(spec: str) -> dict[FaultKind, float]:
    """`"rate_limit=0.1,timeout=0.05"` -> {"rate_limit": 0.1, "timeout": 0.05}.

    Each probability is in [0, 1] and together they add up to at most 1 (one fault per call at
    most). An empty spec means no chaos.
    """
    probabilities: dict[FaultKind, float] = {}
    for raw_item in spec.split(","):
        item = raw_item.strip()
        if not item:
            continue
        name, separator, value = (part.strip() for part in item.partition("="))
        if not separator:
            raise ValueError(f"fault {item!r} has no probability; write it as {item}=0.1")
        kind = _fault_kind(name)
        if kind is None:
            raise ValueError(f"unknown fault {name!r}; use one of: {', '.join(FAULT_KINDS)}")
        try:
            probability = float(value)
        except ValueError:
            probability = math.nan
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability of {name} must be a number from 0 to 1, got {value!r}")
        if kind in probabilities:
            raise ValueError(f"fault {name} is listed twice")
        probabilities[kind] = probability
    total = sum(probabilities.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"fault probabilities add up to {total:g}; keep the total at 1 or less")
    return probabilities


def _fault_kind(name: str) -> FaultKind | None:
    for kind in FAULT_KINDS:
        if kind == name:
            return kind
    return None


class ChaosMonkey:
    """Draws at most one fault per call from seeded probabilities (chaos mode)."""

    def __init__(
        self,
        probabilities: Mapping[FaultKind, float],
        rng: random.Random,
        *,
        retry_after: float = DEFAULT_RETRY_AFTER_SECONDS,
    ) -> None:
        self._thresholds: list[tuple[float, FaultKind]] = []
        cumulative = 0.0
        for kind, probability in probabilities.items():
            if probability > 0:
                cumulative += probability
                self._thresholds.append((cumulative, kind))
        self._rng = rng
        self._retry_after = retry_after

    def __bool__(self) -> bool:
        return bool(self._thresholds)

    def draw(self) -> Fault | None:
        """One uniform draw; the fault whose slice of [0, 1) it falls in, if any."""
        roll = self._rng.random()
        for threshold, kind in self._thresholds:
            if roll < threshold:
                return Fault(kind, retry_after=self._retry_after)
        return None


@dataclass(frozen=True, slots=True)
class Latency:
    """Simulated latency in milliseconds: fixed (`low == high`) or uniform in [low, high]."""

    low_ms: float = 0.0
    high_ms: float = 0.0

    def draw_seconds(self, rng: random.Random) -> float:
        if self.high_ms == self.low_ms:
            return self.low_ms / 1000
        return rng.uniform(self.low_ms, self.high_ms) / 1000


NO_LATENCY = Latency()


def parse_latency_spec(spec: str) -> Latency:
    """`"0"` none, `"250"` fixed 250 ms, `"50-400"` uniform between 50 and 400 ms."""
    text = spec.strip()
    low_text, separator, high_text = text.partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if separator else low
    except ValueError:
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
        raise ValueError(
            f"latency {spec!r} is not milliseconds; write a number like 250 "
            "or a range like 50-400 (low-high, 0 or more)"
        )
    return Latency(low, high)
