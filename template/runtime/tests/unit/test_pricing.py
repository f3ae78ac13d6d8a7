from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from airuntime.resilience import pricing
from airuntime.resilience.pricing import (
    ModelPrice,
    PriceTable,
    PricingError,
    estimate_input_tokens,
)
from airuntime.types import LLMRequest, Message, OutputFormat, Usage

TABLE = PriceTable.from_toml(
    '[acme."fast-1"]\ninput = "1.00"\ncache_read = "0.10"\noutput = "4.00"\n', source="test"
)


def test_cost_is_exact_and_discounts_cache_reads() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=500, cache_read_tokens=400)

    cost = TABLE.cost("acme", "fast-1", usage)

    # 600 uncached * $1/M + 400 cached * $0.10/M + 500 output * $4/M
    assert cost == Decimal("0.00264")


def test_unknown_model_has_unknown_cost_not_zero() -> None:
    assert TABLE.cost("acme", "slow-9", Usage(input_tokens=10)) is None
    assert TABLE.cost("other", "fast-1", Usage(input_tokens=10)) is None


@pytest.mark.parametrize("snapshot", ["fast-1-2025-08-07", "fast-1-20251001"])
def test_dated_snapshots_use_their_base_price(snapshot: str) -> None:
    assert TABLE.price("acme", snapshot) == TABLE.price("acme", "fast-1")


def test_worst_case_assumes_no_cache_and_every_output_token() -> None:
    price = TABLE.price("acme", "fast-1")
    assert price is not None

    assert price.worst_case(1_000, 2_000) == Decimal("0.009")


def test_packaged_table_prices_the_example_models() -> None:
    table = PriceTable.load()

    assert len(table) >= 5
    assert table.cost("mock", "mock-model", Usage(input_tokens=10, output_tokens=10)) == 0
    assert table.price("openai", "gpt-5-mini") is not None
    assert table.price("anthropic", "claude-haiku-4-5") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "is not valid TOML"),
        ('acme = "x"', "[acme] must be a table of models"),
        ('[acme.m]\ninput = "1"\noutput = "1"', "needs exactly input, output and cache_read"),
        ('[acme.m]\ninput = "x"\noutput = "1"\ncache_read = "0"', "acme.m.input is not a number"),
        ('[acme.m]\ninput = "-1"\noutput = "1"\ncache_read = "0"', "must be a non-negative number"),
        (
            '[acme.m]\ninput = "NaN"\noutput = "1"\ncache_read = "0"',
            "must be a non-negative number",
        ),
    ],
)
def test_bad_price_files_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(PricingError, match=r"prices\.toml") as caught:
        PriceTable.from_toml(text, source="prices.toml")

    assert message in str(caught.value)


def test_missing_price_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match="cannot read the price file"):
        PriceTable.load(tmp_path / "missing.toml")


def test_input_estimate_is_an_upper_bound_per_byte() -> None:
    request = LLMRequest(
        model="m",
        messages=(Message(role="system", content="abc"), Message(role="user", content="日本")),
        output=OutputFormat(type="json_schema", json_schema={"type": "object"}),
    )

    # 3 bytes + 6 bytes (two 3-byte characters) + 8 overhead per message + the schema's JSON
    assert estimate_input_tokens(request) == 3 + 6 + 2 * 8 + len('{"type": "object"}')


def test_a_schema_is_measured_once_per_object_and_the_memo_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    measured: list[object] = []
    real_dumps = json.dumps

    def counting_dumps(value: object) -> str:
        measured.append(value)
        return real_dumps(value)

    monkeypatch.setattr(json, "dumps", counting_dumps)  # what pricing serialises with
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    equal_copy = dict(schema)

    sizes = [pricing.schema_bytes(schema) for _ in range(3)] + [pricing.schema_bytes(equal_copy)]

    assert sizes == [len(real_dumps(schema))] * 4
    assert measured == [schema, equal_copy]  # the same object again is not serialised again
    for number in range(300):
        pricing.schema_bytes({"n": number})
    assert len(pricing._SCHEMA_BYTES) <= 256


# -- a price source behind the table ---------------------------------------------------------


def test_the_fallback_prices_only_what_the_table_lacks_and_is_asked_once() -> None:
    asked: list[tuple[str, str]] = []
    local = ModelPrice(input=Decimal(1), output=Decimal(2), cache_read=Decimal(0))
    known = ModelPrice(input=Decimal(3), output=Decimal(4), cache_read=Decimal(1))

    def source(provider: str, model: str) -> ModelPrice | None:
        asked.append((provider, model))
        return known if model == "new-model" else None

    table = PriceTable({("acme", "old-model"): local}).with_fallback(source)

    assert table.price("acme", "old-model") is local  # the local entry overrides
    assert table.price("acme", "new-model") is known
    assert table.price("acme", "new-model") is known
    assert table.price("acme", "nobody-knows") is None  # unknown stays unknown, never free
    assert asked == [("acme", "new-model"), ("acme", "nobody-knows")]


def test_genai_prices_knows_current_models_and_not_unknown_ones() -> None:
    pytest.importorskip("genai_prices", reason="the prices extra is not installed")
    from airuntime.resilience.genai_pricing import genai_prices_source

    source = genai_prices_source()
    price = source("openai", "gpt-5-mini")

    assert price == ModelPrice(
        input=Decimal("0.25"), output=Decimal("2.00"), cache_read=Decimal("0.025")
    )
    assert source("openai", "no-such-model") is None
    assert source("mock", "mock-model") is None


def test_genai_prices_missing_is_a_one_line_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airuntime.errors import ConfigurationError
    from airuntime.resilience.genai_pricing import genai_prices_source

    monkeypatch.setitem(sys.modules, "genai_prices", None)

    with pytest.raises(ConfigurationError, match=r"^PRICES_SOURCE=genai-prices needs the genai"):
        genai_prices_source()
