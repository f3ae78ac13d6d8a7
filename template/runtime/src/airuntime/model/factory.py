"""Build bare model clients from configuration objects.

`build_provider` makes one bare client for a provider: no retries, no fallbacks, so the
resilient client can wrap it (and so `ask --raw` can show what the provider alone does).
Vendor SDKs are imported only when their provider is built, so the mock starts fast and a
project that installed only one SDK never imports the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from airuntime.errors import ConfigurationError
from airuntime.model.client import LLMClient
from airuntime.model.mock import MockLLM, Rule
from airuntime.model.mock_faults import NO_LATENCY, FaultKind, Latency

if TYPE_CHECKING:
    import httpx2

MOCK = "mock"
# Every provider the runtime has an adapter for (a project installs the SDKs it chose).
PROVIDERS = (MOCK, "openai", "anthropic")
# A running service keeps only the latest requests the mock saw, so memory stays flat.
MAX_RECORDED_REQUESTS = 100
# OpenAI-compatible local servers usually ignore the key, but the SDK insists on one.
LOCAL_SERVER_KEY = "not-needed"
# How an OpenAI-compatible request names its output limit: `max_completion_tokens` is the
# Chat Completions API's own (its reasoning models refuse the other); `max_tokens` is the older
# name some compatible servers (Ollama, LM Studio, older vLLM) still need.
OutputLimitParameter = Literal["max_completion_tokens", "max_tokens"]
OUTPUT_LIMIT_PARAMETERS: tuple[OutputLimitParameter, ...] = get_args(OutputLimitParameter)


@dataclass(frozen=True, slots=True)
class MockConfig:
    """The offline mock provider: chaos faults, seed, simulated latency."""

    faults: Mapping[FaultKind, float] = field(default_factory=dict)
    seed: int = 0
    latency: Latency = NO_LATENCY
    # A timeout fault takes this long, as a real one would.
    timeout_seconds: float = 30.0
    max_recorded: int | None = MAX_RECORDED_REQUESTS


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One real provider: its key (None when not configured), endpoint and timeout.

    `base_url` is the provider's endpoint when it is not the vendor's own: an OpenAI-compatible
    server, or a gateway or proxy in front of either vendor. `output_limit_parameter` is read by
    the OpenAI adapter only, and never follows from `base_url`: a proxy in front of OpenAI
    needs the API's own name as much as api.openai.com does.
    """

    name: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    timeout_seconds: float = 30.0
    output_limit_parameter: OutputLimitParameter = "max_completion_tokens"

    @property
    def key_variable(self) -> str:
        """The environment variable a person sets to configure it."""
        return f"{self.name.upper()}_API_KEY"

    @property
    def configured(self) -> bool:
        """Whether a client can be built: a key, or (OpenAI) a server of one's own."""
        return bool(self.api_key) or (self.name == "openai" and self.base_url is not None)


AUTO = "auto"


def resolve_provider(
    choice: str, providers: Sequence[ProviderConfig], *, production: bool = False
) -> str:
    """The provider requests go to, from LLM_PROVIDER (`choice`).

    A provider's name is itself (a missing key is refused when it is built), and `mock` is
    the mock: asked for by name. `auto` is the first provider that is configured (a key, or
    an OpenAI-compatible server of one's own), else the offline mock, but only outside
    production: in production a stand-in would pass its answers off as a real model's, so
    there `auto` without a configured provider is a ConfigurationError naming what to set.
    """
    if choice != AUTO:
        return choice
    for config in providers:
        if config.configured:
            return config.name
    if not production:
        return MOCK
    if not providers:
        raise ConfigurationError(
            "ENVIRONMENT=production never answers from the offline mock unless asked, and this "
            "project has no real provider: set LLM_PROVIDER=mock to run on the mock on purpose."
        )
    keys = [config.key_variable for config in providers]
    unset = f"{keys[0]} is not set" if len(keys) == 1 else f"neither {' nor '.join(keys)} is set"
    raise ConfigurationError(
        f"{unset}, and ENVIRONMENT=production never answers from the offline mock: set "
        f"{'it' if len(keys) == 1 else 'one'} in the environment or .env, or set "
        "LLM_PROVIDER=mock to run on the mock on purpose."
    )


def build_provider(
    config: ProviderConfig, *, http_client: httpx2.AsyncClient | None = None
) -> LLMClient:
    """One provider's client. An unknown name or a missing key is a one-line
    ConfigurationError naming what to set.

    `http_client` (an `httpx2.AsyncClient`) is the HTTP client the adapter sends through: the
    recorder's tap, or the replay's in-memory transport; None is the SDK's own."""
    if config.name == "openai":
        return _build_openai(config, http_client)
    if config.name == "anthropic":
        return _build_anthropic(config, http_client)
    if config.name == MOCK:
        raise ConfigurationError(
            "the mock provider takes no ProviderConfig: build it with build_mock(MockConfig(...))."
        )
    raise ConfigurationError(
        f"unknown LLM provider {config.name!r}: use one of {', '.join(PROVIDERS)} (LLM_PROVIDER)."
    )


def build_mock(config: MockConfig = MockConfig(), *, rules: Iterable[Rule] = ()) -> MockLLM:
    """The mock provider. `rules` let a caller (a feature) say how it answers offline."""
    return MockLLM(
        rules=rules,
        faults=config.faults,
        seed=config.seed,
        latency=config.latency,
        timeout_seconds=config.timeout_seconds,
        max_recorded=config.max_recorded,
    )


def _build_openai(
    config: ProviderConfig, http_client: httpx2.AsyncClient | None = None
) -> LLMClient:
    if not config.configured:
        raise missing_key(config)
    from airuntime.model.providers.openai import OpenAIClient

    if config.output_limit_parameter not in OUTPUT_LIMIT_PARAMETERS:
        raise ConfigurationError(
            f"unknown OpenAI output limit parameter {config.output_limit_parameter!r}: use one "
            f"of {', '.join(OUTPUT_LIMIT_PARAMETERS)} (OPENAI_OUTPUT_LIMIT_PARAMETER)."
        )
    return OpenAIClient(
        api_key=config.api_key or LOCAL_SERVER_KEY,
        base_url=config.base_url,
        timeout_seconds=config.timeout_seconds,
        output_limit_parameter=config.output_limit_parameter,
        http_client=http_client,
    )


def _build_anthropic(
    config: ProviderConfig, http_client: httpx2.AsyncClient | None = None
) -> LLMClient:
    if not config.configured or config.api_key is None:
        raise missing_key(config)
    from airuntime.model.providers.anthropic import AnthropicClient

    return AnthropicClient(
        api_key=config.api_key,
        base_url=config.base_url,
        timeout_seconds=config.timeout_seconds,
        http_client=http_client,
    )


def missing_key(config: ProviderConfig) -> ConfigurationError:
    return ConfigurationError(
        f"{config.key_variable} is not set but the {config.name} provider needs it: set it in "
        "the environment or .env, or choose another provider with LLM_PROVIDER (mock runs "
        "offline)."
    )
