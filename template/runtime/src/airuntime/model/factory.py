"""Build model clients from the settings.

`build_provider` makes one bare client for a provider name: no retries, no fallbacks, so a
wrapper can build one per (provider, model) target. `build_client` makes the client for the
configured provider (`LLM_PROVIDER`, or the first provider with a key when it is `auto`).
Vendor SDKs are imported only when their provider is built, so the mock starts fast.
"""

from __future__ import annotations

from collections.abc import Iterable

from {{ package_name }}.llm.client import LLMClient
from {{ package_name }}.llm.mock import MockLLM, Rule
from {{ package_name }}.llm.mock_faults import parse_fault_spec, parse_latency_spec
from {{ package_name }}.settings import ConfigurationError, Settings

PROVIDERS = ("mock"{% for provider in llm_providers %}, "{{ provider }}"{% endfor %}{% if not llm_providers %},{% endif %})
# A running service keeps only the latest requests the mock saw, so memory stays flat.
MAX_RECORDED_REQUESTS = 100
{%- if 'openai' in llm_providers %}
# OpenAI-compatible local servers usually ignore the key, but the SDK insists on one.
LOCAL_SERVER_KEY = "not-needed"
{%- endif %}


def build_client(settings: Settings) -> LLMClient:
    """The client of the configured provider."""
    return build_provider(settings.resolved_provider(), settings)


def build_provider(name: str, settings: Settings) -> LLMClient:
    """One provider's client. A bad name or a missing key is a one-line ConfigurationError."""
    if name == "mock":
        return build_mock(settings)
{%- if 'openai' in llm_providers %}
    if name == "openai":
        return _build_openai(settings)
{%- endif %}
{%- if 'anthropic' in llm_providers %}
    if name == "anthropic":
        return _build_anthropic(settings)
{%- endif %}
    raise ConfigurationError(
        f"unknown LLM provider {name!r}: use one of {', '.join(PROVIDERS)} (LLM_PROVIDER)."
    )


def build_mock(settings: Settings, *, rules: Iterable[Rule] = ()) -> MockLLM:
    """The mock provider with the chaos, seed and latency of MOCK_FAULTS, MOCK_SEED and
    MOCK_LATENCY_MS; a timeout fault takes LLM_TIMEOUT_SECONDS, as a real one would.

    `rules` let a caller (a feature) say how the mock answers its prompts offline."""
    return MockLLM(
        rules=rules,
        faults=parse_fault_spec(settings.mock_faults),
        seed=settings.mock_seed,
        latency=parse_latency_spec(settings.mock_latency_ms),
        timeout_seconds=settings.llm_timeout_seconds,
        max_recorded=MAX_RECORDED_REQUESTS,
    )
{%- if 'openai' in llm_providers %}


def _build_openai(settings: Settings) -> LLMClient:
    from {{ package_name }}.llm.providers.openai import OpenAIClient

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if not key and settings.openai_base_url is None:
        raise _missing_key("OPENAI_API_KEY", "openai")
    return OpenAIClient(
        api_key=key or LOCAL_SERVER_KEY,
        base_url=settings.openai_base_url,
        timeout_seconds=settings.llm_timeout_seconds,
    )
{%- endif %}
{%- if 'anthropic' in llm_providers %}


def _build_anthropic(settings: Settings) -> LLMClient:
    from {{ package_name }}.llm.providers.anthropic import AnthropicClient

    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else ""
    if not key:
        raise _missing_key("ANTHROPIC_API_KEY", "anthropic")
    return AnthropicClient(api_key=key, timeout_seconds=settings.llm_timeout_seconds)
{%- endif %}
{%- if llm_providers %}


def _missing_key(variable: str, provider: str) -> ConfigurationError:
    return ConfigurationError(
        f"{variable} is not set but the {provider} provider needs it: set it in the environment "
        "or .env, or choose another provider with LLM_PROVIDER (mock runs offline)."
    )
{%- endif %}
