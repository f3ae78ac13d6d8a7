"""Model prices from `genai-prices` (Pydantic's maintained price list, bundled, so offline):
the source behind the local price table, for the models the table does not list.

The local table (the packaged `prices.toml`, or `PRICES_FILE`) stays the override: a price it
has is the price, so a negotiated rate, or a model the package does not know yet, is one entry
there. The package is the runtime's `prices` extra; a project turns it on with
`PRICES_SOURCE=genai-prices`.
"""

from __future__ import annotations

from decimal import Decimal

from airuntime.errors import ConfigurationError
from airuntime.resilience.pricing import PER_MILLION, ModelPrice, PriceSource

# Prices are asked for this many tokens and scaled: below every tier threshold the package
# knows (128k, 200k tokens), so a tiered model gets its first tier's price.
_PROBE = 1000


def genai_prices_source() -> PriceSource:
    """The package as a price source; a one-line ConfigurationError when it is not installed
    (at start-up, not at the first call)."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        raise ConfigurationError(
            "PRICES_SOURCE=genai-prices needs the genai-prices package: install the runtime's "
            "`prices` extra (uv add 'airuntime[prices]'), or set PRICES_SOURCE=file."
        ) from None

    def per_million(provider: str, model: str, usage: Usage) -> Decimal:
        price = calc_price(usage, model_ref=model, provider_id=provider).total_price
        return Decimal(price) * PER_MILLION / _PROBE

    def source(provider: str, model: str) -> ModelPrice | None:
        try:
            return ModelPrice(
                input=per_million(provider, model, Usage(input_tokens=_PROBE)),
                output=per_million(provider, model, Usage(output_tokens=_PROBE)),
                cache_read=per_million(
                    provider, model, Usage(input_tokens=_PROBE, cache_read_tokens=_PROBE)
                ),
            )
        except LookupError:  # an unknown provider or model: its cost stays unknown
            return None

    return source
