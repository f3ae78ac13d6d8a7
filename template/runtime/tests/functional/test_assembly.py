"""The model stack assembled from configuration objects, as a project's wiring assembles it:
which provider clients exist (offline, online, not configured), and a resilient client whose
budget, cache, prices, breakers, retries and fallbacks are the configured ones."""

from __future__ import annotations

import importlib.util
import random
import re
from decimal import Decimal
from pathlib import Path

import pytest

from airuntime.errors import ConfigurationError
from airuntime.model.factory import MockConfig, ProviderConfig
from airuntime.model.mock import MockLLM, Rule
from airuntime.model.mock_faults import Fault
from airuntime.observability.events import Observer, RecordingObserver
from airuntime.resilience.assembly import (
    BudgetConfig,
    CacheConfig,
    ProviderClients,
    StackConfig,
    build_resilient_client,
    load_prices,
    provider_clients,
)
from airuntime.resilience.budget import BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, ResilienceConfig, UnknownCostError
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.retry import RetryPolicy
from airuntime.testing import FakeClock, flat_prices
from airuntime.types import LLMRequest, LLMResponse, Message, ModelTarget, Usage

needs_openai = pytest.mark.skipif(
    importlib.util.find_spec("openai") is None, reason="the openai extra is not installed"
)
needs_anthropic = pytest.mark.skipif(
    importlib.util.find_spec("anthropic") is None, reason="the anthropic extra is not installed"
)
PRIMARY = ModelTarget(provider="mock", model="model-a")
BACKUP = ModelTarget(provider="mock", model="model-b")
USAGE = Usage(input_tokens=1000, output_tokens=500)
# flat_prices: $1 per million input tokens, $2 per million output tokens.
COST = Decimal("0.002")
NO_DAY_LEDGER = BudgetConfig(per_day=None)


def answer(text: str = "Paris.", model: str = "model-a") -> LLMResponse:
    return LLMResponse(text=text, model=model, provider="mock", usage=USAGE)


def request(text: str = "Capital of France?", model: str = "model-a") -> LLMRequest:
    return LLMRequest(model=model, messages=(Message(role="user", content=text),))


def offline(mock: MockLLM) -> ProviderClients:
    return ProviderClients({"mock": mock}, "mock", offline=True)


def stack(
    config: StackConfig, providers: ProviderClients, observer: Observer | None = None
) -> ResilientClient:
    clock = FakeClock()
    return build_resilient_client(
        config, providers, observer=observer, clock=clock, sleep=clock.sleep, rng=random.Random(0)
    )


# -- provider clients -----------------------------------------------------------------------


async def test_offline_the_mock_answers_for_every_provider_by_its_rules() -> None:
    providers = provider_clients(
        "mock",
        [ProviderConfig("openai", api_key="sk-1"), ProviderConfig("anthropic")],
        mock_rules=[Rule("France", "Paris.")],
    )

    assert (providers.default_provider, providers.offline) == ("mock", True)
    assert set(providers.clients) == {"mock", "openai", "anthropic"}
    assert len({id(client) for client in providers.clients.values()}) == 1
    answered = await providers.clients["openai"].complete(request())
    assert answered.text == "Paris."


async def test_offline_the_mock_is_the_configured_one() -> None:
    providers = provider_clients("mock", [], mock=MockConfig(faults={"content_filter": 1.0}))

    with pytest.raises(Exception, match="content_filtered"):
        await providers.clients["mock"].complete(request())


@needs_openai
async def test_online_every_configured_provider_has_a_client_and_the_others_none() -> None:
    from airuntime.model.providers.openai import OpenAIClient

    providers = provider_clients(
        "openai",
        [
            ProviderConfig("openai", base_url="http://127.0.0.1:9/v1"),
            ProviderConfig("anthropic"),  # no key: left out
        ],
    )

    assert (providers.default_provider, providers.offline) == ("openai", False)
    assert set(providers.clients) == {"mock", "openai"}
    assert isinstance(providers.clients["openai"], OpenAIClient)
    # Where each real provider is served: part of who answers, so of the response cache's key.
    assert providers.endpoints == {"openai": "http://127.0.0.1:9/v1"}
    assert isinstance(providers.clients["mock"], MockLLM)
    await providers.clients["openai"].aclose()


@needs_openai
async def test_a_fallback_to_a_provider_without_a_key_is_skipped_as_not_configured() -> None:
    providers = provider_clients(
        "openai",
        [ProviderConfig("openai", base_url="http://127.0.0.1:9/v1"), ProviderConfig("anthropic")],
    )
    await providers.clients["openai"].aclose()
    # The real provider is down (a failing stand-in, so nothing leaves the machine).
    down = MockLLM([Fault("server_error")] * 3, provider="openai")
    fallback = ModelTarget(provider="anthropic", model="claude-haiku-4-5")
    client = stack(
        StackConfig(budget=NO_DAY_LEDGER, cache=None, fallbacks=(fallback,)),
        ProviderClients({**providers.clients, "openai": down}, "openai", offline=False),
    )

    with pytest.raises(AllTargetsFailedError) as raised:
        await client.run(request(model="gpt-5-mini"))

    assert [(str(f.target), f.attempts, f.reason) for f in raised.value.failures] == [
        ("openai/gpt-5-mini", 3, "server_error"),
        ("anthropic/claude-haiku-4-5", 0, "not_configured"),
    ]
    assert len(down.requests) == 3


@needs_openai
@needs_anthropic
async def test_online_a_fallback_provider_with_its_key_has_a_client_too() -> None:
    from airuntime.model.providers.anthropic import AnthropicClient

    providers = provider_clients(
        "openai",
        [ProviderConfig("openai", api_key="sk-1"), ProviderConfig("anthropic", api_key="sk-ant")],
    )

    assert set(providers.clients) == {"mock", "openai", "anthropic"}
    assert isinstance(providers.clients["anthropic"], AnthropicClient)
    for client in providers.clients.values():
        await client.aclose()


def test_an_unknown_default_provider_lists_the_configured_ones() -> None:
    message = "unknown LLM provider 'nobody': use one of mock, openai (LLM_PROVIDER)."

    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        provider_clients("nobody", [ProviderConfig("openai", api_key="sk-1")])


def test_the_default_provider_without_its_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"^ANTHROPIC_API_KEY is not set but the "):
        provider_clients("anthropic", [ProviderConfig("anthropic")])


# -- the resilient client -------------------------------------------------------------------


async def test_prices_of_ones_own_are_used_instead_of_any_file(tmp_path: Path) -> None:
    mock = MockLLM([answer()])
    config = StackConfig(
        prices=flat_prices([PRIMARY]),
        prices_file=tmp_path / "missing.toml",  # never read: the table wins
        budget=NO_DAY_LEDGER,
        cache=None,
    )

    result = await stack(config, offline(mock)).run(request())

    assert (result.response.text, result.cost) == ("Paris.", COST)


async def test_the_packaged_prices_by_default_and_unknown_costs_refused() -> None:
    client = stack(StackConfig(budget=NO_DAY_LEDGER, cache=None), offline(MockLLM()))

    free = await client.run(request(model="mock-model"))
    with pytest.raises(UnknownCostError, match=r"^no price for mock/model-a in the price table"):
        await client.run(request(model="model-a"))

    assert free.cost == Decimal(0)


async def test_a_price_file_is_read(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[mock."model-a"]\ninput = "3"\noutput = "4"\ncache_read = "0"\n')
    config = StackConfig(prices_file=prices, budget=NO_DAY_LEDGER, cache=None)

    result = await stack(config, offline(MockLLM([answer()]))).run(request())

    assert result.cost == Decimal("0.005")  # 1000 x $3 + 500 x $4, per million


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the price file {path}: No such file or directory"),
        ('[mock."m"]\ninput = "1"\n', "{path}: mock.m needs exactly input, output and cache_read"),
        ('[mock."m"]\ninput = "x"\noutput = "1"\ncache_read = "0"\n', "{path}: mock.m.input is"),
        ("[mock\n", "{path} is not valid TOML: "),
    ],
)
def test_a_bad_price_file_is_a_one_line_configuration_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "prices.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigurationError) as raised:
        build_resilient_client(StackConfig(prices_file=path), offline(MockLLM()))

    assert str(raised.value).startswith(message.format(path=path))
    assert "\n" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert not (tmp_path / "var").exists(), "nothing is opened before the configuration is good"


def test_load_prices_without_a_file_is_the_packaged_table() -> None:
    prices = load_prices(None)

    assert prices.price("mock", "mock-model") is not None
    assert prices.price("openai", "gpt-5-mini") is not None


async def test_the_per_call_ceiling_refuses_before_sending() -> None:
    mock = MockLLM([answer()])
    config = StackConfig(
        prices=flat_prices([PRIMARY]),
        budget=BudgetConfig(per_call=Decimal("0.001"), per_day=None),
        cache=None,
    )

    with pytest.raises(BudgetExceeded) as raised:
        await stack(config, offline(mock)).run(request("hi"))

    # 2 bytes + 8 framing tokens at $1/M, and 1024 output tokens at $2/M.
    assert str(raised.value) == (
        "budget exceeded: this attempt could cost up to $0.002058 but only $0.001000 is left "
        "of the per-call ceiling ($0.001); the call was not sent. Raise BUDGET_PER_CALL_USD or "
        "wait for the budget to reset."
    )
    assert mock.requests == []


async def test_the_per_process_ceiling_counts_what_was_spent(tmp_path: Path) -> None:
    mock = MockLLM([answer(), answer()])
    config = StackConfig(
        prices=flat_prices([PRIMARY]),
        budget=BudgetConfig(per_call=None, per_process=Decimal("0.004"), per_day=None),
        cache=None,
    )
    client = stack(config, offline(mock))

    first = await client.run(request("hi"))
    with pytest.raises(BudgetExceeded, match="of the per-process ceiling"):
        await client.run(request("hi"))

    assert first.cost == COST
    assert len(mock.requests) == 1


async def test_the_day_ledger_lives_where_configured_and_only_with_a_day_ceiling(
    tmp_path: Path,
) -> None:
    with_day = BudgetConfig(per_day=Decimal(5), ledger_path=tmp_path / "day" / "budget.sqlite3")
    without_day = BudgetConfig(per_day=None, ledger_path=tmp_path / "none" / "budget.sqlite3")
    (tmp_path / "day").mkdir()

    for budget in (with_day, without_day):
        client = stack(
            StackConfig(prices=flat_prices([PRIMARY]), budget=budget, cache=None),
            offline(MockLLM([answer()])),
        )
        assert (await client.run(request())).cost == COST
        await client.aclose()

    assert with_day.ledger_path.is_file()
    assert not without_day.ledger_path.exists()


async def test_the_cache_answers_a_repeated_request_until_closed(tmp_path: Path) -> None:
    mock = MockLLM([answer(), answer("Lyon.")])
    config = StackConfig(
        prices=flat_prices([PRIMARY]),
        budget=NO_DAY_LEDGER,
        cache=CacheConfig(tmp_path / "cache" / "responses.sqlite3", ttl_seconds=60),
    )
    client = stack(config, offline(mock))
    asked = request()

    first = await client.run(asked)
    again = await client.run(asked.model_copy(update={"request_id": "another"}))
    await client.aclose()

    assert (first.cache_hit, again.cache_hit) == (False, True)
    assert again.response.text == "Paris."
    assert (first.cost, again.cost) == (COST, Decimal(0))
    assert len(mock.requests) == 1
    assert (tmp_path / "cache" / "responses.sqlite3").is_file()


async def test_no_cache_asks_the_model_every_time(tmp_path: Path) -> None:
    mock = MockLLM([answer(), answer("Lyon.")])
    config = StackConfig(prices=flat_prices([PRIMARY]), budget=NO_DAY_LEDGER, cache=None)
    client = stack(config, offline(mock))

    texts = [(await client.run(request())).response.text for _ in range(2)]

    assert texts == ["Paris.", "Lyon."]
    assert len(mock.requests) == 2
    assert not (tmp_path / "var").exists()


async def test_retries_fallbacks_and_the_observer_are_the_configured_ones() -> None:
    mock = MockLLM([Fault("server_error"), Fault("server_error"), answer(model="model-b")])
    observer = RecordingObserver()
    config = StackConfig(
        resilience=ResilienceConfig(retry=RetryPolicy(max_attempts=2)),
        prices=flat_prices([PRIMARY, BACKUP]),
        budget=NO_DAY_LEDGER,
        cache=None,
        fallbacks=(BACKUP,),
    )

    result = await stack(config, offline(mock), observer=observer).run(request())

    assert (str(result.target), result.fallback_index, result.attempts) == ("mock/model-b", 1, 1)
    assert [sent.model for sent in mock.requests] == ["model-a", "model-a", "model-b"]
    assert [(str(a.target), a.outcome) for a in observer.attempts] == [
        ("mock/model-a", "server_error"),
        ("mock/model-a", "server_error"),
        ("mock/model-b", "ok"),
    ]
    assert [(call.outcome, call.cost) for call in observer.calls] == [("fallback", COST)]


async def test_the_breaker_opens_after_the_configured_failures() -> None:
    mock = MockLLM([Fault("server_error")])
    config = StackConfig(
        resilience=ResilienceConfig(retry=RetryPolicy(max_attempts=1)),
        breaker_failure_threshold=1,
        breaker_cooldown_seconds=60,
        prices=flat_prices([PRIMARY]),
        budget=NO_DAY_LEDGER,
        cache=None,
    )
    client = stack(config, offline(mock))

    with pytest.raises(AllTargetsFailedError):
        await client.run(request())
    with pytest.raises(AllTargetsFailedError) as raised:
        await client.run(request())

    assert [(f.attempts, f.reason) for f in raised.value.failures] == [(0, "breaker_open")]
    assert len(mock.requests) == 1
