"""Model prices and the cost of a call, in exact decimals.

A model missing from the table has an unknown cost (`None`), never zero: treating an unpriced
model as free is how a budget silently stops protecting anything.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from airuntime.types import LLMRequest, Usage

PER_MILLION = Decimal(1_000_000)
# Snapshot names end in a date: gpt-5-mini-2025-08-07, claude-haiku-4-5-20251001.
_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
# Per-message framing tokens providers add around each message's content.
MESSAGE_OVERHEAD_TOKENS = 8


class PricingError(Exception):
    """The price file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """US dollars per million tokens."""

    input: Decimal
    output: Decimal
    cache_read: Decimal

    def cost(self, usage: Usage) -> Decimal:
        uncached = max(0, usage.input_tokens - usage.cache_read_tokens)
        total = (
            uncached * self.input
            + usage.cache_read_tokens * self.cache_read
            + usage.output_tokens * self.output
        )
        return total / PER_MILLION

    def worst_case(self, input_tokens: int, max_output_tokens: int) -> Decimal:
        """The most a call can cost: every prompt token uncached, every output token used."""
        return (input_tokens * self.input + max_output_tokens * self.output) / PER_MILLION


# A price source behind the table: (provider, model) -> its price, or None when it has none.
PriceSource = Callable[[str, str], "ModelPrice | None"]


class PriceTable:
    """Prices by (provider, model), with dated snapshots priced as their base model.

    `fallback` is asked for a model the table has no price for (e.g. `genai_prices_source`,
    a maintained price list): the table's own entries always win, so a local file overrides."""

    def __init__(
        self,
        prices: Mapping[tuple[str, str], ModelPrice],
        *,
        fallback: PriceSource | None = None,
    ) -> None:
        self._prices = dict(prices)
        self._fallback = fallback
        self._found: dict[tuple[str, str], ModelPrice | None] = {}

    def __len__(self) -> int:
        return len(self._prices)

    def price(self, provider: str, model: str) -> ModelPrice | None:
        found = self._prices.get((provider, model))
        if found is None:
            base = _SNAPSHOT_SUFFIX.sub("", model)
            if base != model:
                found = self._prices.get((provider, base))
        if found is None and self._fallback is not None:
            key = (provider, model)
            if key not in self._found:  # asked once per model: a lookup is not free
                self._found[key] = self._fallback(provider, model)
            found = self._found[key]
        return found

    def with_fallback(self, fallback: PriceSource) -> PriceTable:
        """This table, asking `fallback` for the models it has no price for."""
        return PriceTable(self._prices, fallback=fallback)

    def cost(self, provider: str, model: str, usage: Usage) -> Decimal | None:
        """The cost of a finished call, or None when the model has no price."""
        price = self.price(provider, model)
        return None if price is None else price.cost(usage)

    @classmethod
    def from_toml(cls, text: str, *, source: str) -> PriceTable:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise PricingError(f"{source} is not valid TOML: {error}") from None
        prices: dict[tuple[str, str], ModelPrice] = {}
        for provider, models in document.items():
            if not isinstance(models, dict):
                raise PricingError(f"{source}: [{provider}] must be a table of models")
            for model, entry in models.items():
                prices[(provider, model)] = _parse_price(entry, f"{source}: {provider}.{model}")
        return cls(prices)

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """The packaged price table, or the file at `path` when one is configured."""
        if path is None:
            text = resources.files(__package__).joinpath("prices.toml").read_text("utf-8")
            return cls.from_toml(text, source="the packaged prices.toml")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise PricingError(f"cannot read the price file {path}: {error.strerror}") from None
        return cls.from_toml(text, source=str(path))


def _parse_price(entry: object, where: str) -> ModelPrice:
    if not isinstance(entry, dict) or set(entry) != {"input", "output", "cache_read"}:
        raise PricingError(f"{where} needs exactly input, output and cache_read prices")
    values: dict[str, Decimal] = {}
    for field, raw in entry.items():
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise PricingError(f"{where}.{field} is not a number: {raw!r}") from None
        if not value.is_finite() or value < 0:
            raise PricingError(f"{where}.{field} must be a non-negative number, not {raw!r}")
        values[field] = value
    return ModelPrice(**values)


def estimate_input_tokens(request: LLMRequest) -> int:
    """An upper bound on the prompt's tokens: a token is never shorter than one UTF-8 byte.

    Deliberately pessimistic (about 4x for English): it is what the budget reserves before a
    call, and a reservation below the real usage could let a call spend past the ceiling.
    """
    total = sum(
        utf8_length(message.content) + MESSAGE_OVERHEAD_TOKENS for message in request.messages
    )
    schema = request.output.json_schema
    if schema is not None:  # providers send the schema as prompt tokens
        total += schema_bytes(schema)
    for tool in request.tools:  # tool definitions are prompt tokens too
        total += utf8_length(tool.name) + utf8_length(tool.description)
        total += schema_bytes(tool.parameters) + MESSAGE_OVERHEAD_TOKENS
    for message in request.messages:  # the calls an assistant message carries
        total += sum(
            utf8_length(call.name) + utf8_length(call.arguments) for call in message.tool_calls
        )
    return total


def utf8_length(text: str) -> int:
    """The length of `text` in UTF-8, without encoding it when it is ASCII (one byte a
    character; `isascii` is a flag lookup for a str)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


_SCHEMA_BYTES: dict[int, tuple[Mapping[str, Any], int]] = {}
_SCHEMA_BYTES_KEPT = 256


def schema_bytes(schema: Mapping[str, Any]) -> int:
    """The size of a JSON schema as sent, computed once per schema object.

    Prompts and `json_output` reuse one schema object for every request, and serialising it
    again on every attempt cost more than the rest of the estimate. Keyed by identity (the
    entry keeps the object alive, so its id is not reused) and bounded.
    """
    cached = _SCHEMA_BYTES.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    size = len(json.dumps(schema).encode("utf-8"))
    if len(_SCHEMA_BYTES) >= _SCHEMA_BYTES_KEPT:
        _SCHEMA_BYTES.clear()
    _SCHEMA_BYTES[id(schema)] = (schema, size)
    return size
