"""Bare model clients from configuration objects: each real provider with its key, endpoint and
timeout (SDK retries off), a one-line ConfigurationError naming what to set when it cannot be
built, and the mock configured for chaos drills."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest

from airuntime.errors import ConfigurationError, ProviderTimeoutError, ServerError
from airuntime.model.factory import (
    LOCAL_SERVER_KEY,
    MAX_RECORDED_REQUESTS,
    PROVIDERS,
    MockConfig,
    ProviderConfig,
    build_mock,
    build_provider,
    resolve_provider,
)
from airuntime.model.mock import MockLLM, Rule
from airuntime.model.mock_faults import Latency
from airuntime.types import LLMRequest, Message

# A project installs only the SDKs of the providers it chose: building one needs its SDK.
needs_openai = pytest.mark.skipif(
    importlib.util.find_spec("openai") is None, reason="the openai extra is not installed"
)
needs_anthropic = pytest.mark.skipif(
    importlib.util.find_spec("anthropic") is None, reason="the anthropic extra is not installed"
)


@pytest.fixture(autouse=True)
def no_vendor_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDKs read these when not given a value: only the configuration may count here."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def missing(name: str) -> str:
    return (
        f"{name.upper()}_API_KEY is not set but the {name} provider needs it: set it in the "
        "environment or .env, or choose another provider with LLM_PROVIDER (mock runs offline)."
    )


def request(text: str = "hello") -> LLMRequest:
    return LLMRequest(model="m", messages=(Message(role="user", content=text),))


def test_a_provider_config_names_its_key_variable_and_hides_the_key() -> None:
    config = ProviderConfig("openai", api_key="sk-secret")

    assert config.key_variable == "OPENAI_API_KEY"
    assert ProviderConfig("anthropic").key_variable == "ANTHROPIC_API_KEY"
    assert "sk-secret" not in repr(config)


@pytest.mark.parametrize(
    ("config", "configured"),
    [
        (ProviderConfig("openai", api_key="sk-1"), True),
        (ProviderConfig("openai"), False),
        (ProviderConfig("openai", api_key=""), False),
        (ProviderConfig("openai", base_url="http://127.0.0.1:8000/v1"), True),
        (ProviderConfig("anthropic", api_key="sk-ant"), True),
        (ProviderConfig("anthropic", base_url="http://127.0.0.1:8000"), False),
    ],
)
def test_configured_means_a_key_or_an_openai_compatible_server(
    config: ProviderConfig, configured: bool
) -> None:
    assert config.configured is configured


@needs_openai
async def test_openai_gets_its_key_timeout_and_no_sdk_retries() -> None:
    from airuntime.model.providers.openai import OpenAIClient

    client = build_provider(ProviderConfig("openai", api_key="sk-1", timeout_seconds=7.5))

    assert isinstance(client, OpenAIClient)
    assert client.provider == "openai"
    sdk = client._client
    assert (sdk.api_key, sdk.timeout, sdk.max_retries) == ("sk-1", 7.5, 0)
    assert str(sdk.base_url) == "https://api.openai.com/v1/"
    await client.aclose()


@needs_openai
async def test_an_openai_compatible_server_needs_no_key() -> None:
    from airuntime.model.providers.openai import OpenAIClient

    client = build_provider(ProviderConfig("openai", base_url="http://127.0.0.1:8000/v1"))

    assert isinstance(client, OpenAIClient)
    sdk = client._client
    assert sdk.api_key == LOCAL_SERVER_KEY == "not-needed"
    assert str(sdk.base_url) == "http://127.0.0.1:8000/v1/"
    await client.aclose()


@needs_openai
def test_an_unknown_output_limit_parameter_is_a_one_line_configuration_error() -> None:
    unknown: Any = "max_new_tokens"  # what a config built in code, unchecked, could hold
    config = ProviderConfig("openai", api_key="sk-1", output_limit_parameter=unknown)

    with pytest.raises(ConfigurationError) as caught:
        build_provider(config)

    assert str(caught.value) == (
        "unknown OpenAI output limit parameter 'max_new_tokens': use one of "
        "max_completion_tokens, max_tokens (OPENAI_OUTPUT_LIMIT_PARAMETER)."
    )


@needs_anthropic
async def test_anthropic_goes_to_its_base_url_when_one_is_configured() -> None:
    from airuntime.model.providers.anthropic import AnthropicClient

    gateway = ProviderConfig("anthropic", api_key="sk-ant", base_url="http://127.0.0.1:4000")
    client = build_provider(gateway)
    default = build_provider(ProviderConfig("anthropic", api_key="sk-ant"))

    assert isinstance(client, AnthropicClient)
    assert str(client._client.base_url) == "http://127.0.0.1:4000"
    assert isinstance(default, AnthropicClient)
    assert str(default._client.base_url) == "https://api.anthropic.com"
    await client.aclose()
    await default.aclose()


@needs_anthropic
async def test_anthropic_gets_its_key_timeout_and_no_sdk_retries() -> None:
    from airuntime.model.providers.anthropic import AnthropicClient

    client = build_provider(ProviderConfig("anthropic", api_key="sk-ant", timeout_seconds=12))

    assert isinstance(client, AnthropicClient)
    assert client.provider == "anthropic"
    sdk = client._client
    assert (sdk.api_key, sdk.timeout, sdk.max_retries) == ("sk-ant", 12, 0)
    await client.aclose()


@pytest.mark.parametrize(
    "config",
    [
        ProviderConfig("openai"),
        ProviderConfig("openai", api_key=""),
        ProviderConfig("anthropic"),
        # A server of one's own stands in for a key only for OpenAI-compatible servers.
        ProviderConfig("anthropic", base_url="http://127.0.0.1:8000"),
    ],
)
def test_a_provider_without_its_key_is_a_configuration_error_naming_the_variable(
    config: ProviderConfig,
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{re.escape(missing(config.name))}$"):
        build_provider(config)


@pytest.mark.parametrize("name", ["nobody", "OpenAI", ""])
def test_an_unknown_provider_is_a_configuration_error_listing_the_known_ones(name: str) -> None:
    message = f"unknown LLM provider {name!r}: use one of mock, openai, anthropic (LLM_PROVIDER)."

    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        build_provider(ProviderConfig(name, api_key="k"))
    assert PROVIDERS == ("mock", "openai", "anthropic")


def test_the_mock_is_not_built_from_a_provider_config() -> None:
    with pytest.raises(ConfigurationError, match=r"build it with build_mock\(MockConfig"):
        build_provider(ProviderConfig("mock"))


async def test_the_default_mock_answers_without_faults_and_keeps_the_latest_requests() -> None:
    mock = build_mock()

    answers = [(await mock.complete(request(f"call {n}"))).text for n in range(3)]

    assert isinstance(mock, MockLLM)
    assert answers == ["Mock answer to: call 0", "Mock answer to: call 1", "Mock answer to: call 2"]
    assert MockConfig().max_recorded == MAX_RECORDED_REQUESTS == 100
    assert len(mock.requests) == 3


async def outcomes(mock: MockLLM, calls: int) -> list[str]:
    ended = []
    for number in range(calls):
        try:
            await mock.complete(request(f"call {number}"))
        except ServerError:
            ended.append("server_error")
        else:
            ended.append("ok")
    return ended


async def test_the_mock_draws_its_faults_from_the_configured_seed() -> None:
    config = MockConfig(faults={"server_error": 0.5}, seed=3)

    first = await outcomes(build_mock(config), 20)
    again = await outcomes(build_mock(config), 20)
    other_seed = await outcomes(build_mock(MockConfig(faults={"server_error": 0.5}, seed=4)), 20)

    assert first == again
    assert set(first) == {"ok", "server_error"}
    assert other_seed != first


async def test_the_mock_keeps_only_the_configured_number_of_requests() -> None:
    mock = build_mock(MockConfig(max_recorded=2))

    await outcomes(mock, 3)

    assert [sent.last_user_message for sent in mock.requests] == ["call 1", "call 2"]


async def test_the_mock_simulates_the_configured_latency() -> None:
    mock = build_mock(MockConfig(latency=Latency(2, 2)))

    response = await mock.complete(request())

    assert response.latency_ms == 2.0


async def test_mock_rules_answer_what_they_match() -> None:
    mock = build_mock(rules=[Rule("^ping$", "pong")])

    assert (await mock.complete(request("ping"))).text == "pong"
    assert (await mock.complete(request("ping?"))).text == "Mock answer to: ping?"


async def test_a_timeout_fault_takes_the_configured_timeout() -> None:
    mock = build_mock(MockConfig(faults={"timeout": 1.0}, timeout_seconds=0.002))

    with pytest.raises(ProviderTimeoutError, match="timed out"):
        await mock.complete(request())


# -- which provider requests go to (LLM_PROVIDER), and never a silent mock in production -----

KEYLESS = [ProviderConfig("openai"), ProviderConfig("anthropic")]


@pytest.mark.parametrize("production", [False, True])
def test_a_provider_chosen_by_name_is_itself_and_mock_is_always_allowed(production: bool) -> None:
    assert resolve_provider("anthropic", KEYLESS, production=production) == "anthropic"
    assert resolve_provider("mock", KEYLESS, production=production) == "mock"
    assert resolve_provider("mock", [], production=production) == "mock"


@pytest.mark.parametrize("production", [False, True])
def test_auto_is_the_first_configured_provider(production: bool) -> None:
    keyed = [ProviderConfig("openai"), ProviderConfig("anthropic", api_key="sk-ant-1")]
    local = [ProviderConfig("openai", base_url="http://127.0.0.1:11434/v1"), *keyed[1:]]

    assert resolve_provider("auto", keyed, production=production) == "anthropic"
    # An OpenAI-compatible server of one's own needs no key: it is a real provider too.
    assert resolve_provider("auto", local, production=production) == "openai"


def test_auto_without_a_configured_provider_runs_offline_outside_production() -> None:
    assert resolve_provider("auto", KEYLESS) == "mock"
    assert resolve_provider("auto", [], production=False) == "mock"


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        (
            [ProviderConfig("openai")],
            "OPENAI_API_KEY is not set, and ENVIRONMENT=production never answers from the "
            "offline mock: set it in the environment or .env, or set LLM_PROVIDER=mock to run "
            "on the mock on purpose.",
        ),
        (
            # An Anthropic gateway without a key is not configured: it still needs the key.
            [ProviderConfig("openai"), ProviderConfig("anthropic", base_url="http://gw/v1")],
            "neither OPENAI_API_KEY nor ANTHROPIC_API_KEY is set, and ENVIRONMENT=production "
            "never answers from the offline mock: set one in the environment or .env, or set "
            "LLM_PROVIDER=mock to run on the mock on purpose.",
        ),
        (
            [],
            "ENVIRONMENT=production never answers from the offline mock unless asked, and this "
            "project has no real provider: set LLM_PROVIDER=mock to run on the mock on purpose.",
        ),
    ],
)
def test_in_production_auto_without_a_key_is_a_configuration_error_naming_it(
    providers: list[ProviderConfig], message: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        resolve_provider("auto", providers, production=True)

    assert str(refused.value) == message
