"""The OpenAI-compatible gateway through ASGI, with the real openai SDK as the client: what
the SDK parses (answers, JSON schema, streams with usage), the exception class it raises for
each error status, a fallback and a budget refusal behind the scenes, model aliases."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")
openai = pytest.importorskip("openai", reason="the openai extra is not installed")

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2

from airuntime.features import FeatureSystem
from airuntime.model.mock import MockLLM
from airuntime.model.mock_faults import Fault
from airuntime.observability.telemetry import Telemetry
from airuntime.prompts import load_registry
from airuntime.resilience.assembly import (
    BudgetConfig,
    CacheConfig,
    ProviderClients,
    StackConfig,
    build_resilient_client,
)
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.retry import RetryPolicy
from airuntime.resilience.targets import parse_model_aliases
from airuntime.service.app import create_service_app
from airuntime.service.auth import ApiKeyring, new_api_key
from airuntime.service.errors import ErrorPolicy
from airuntime.service.openai_routes import openai_router
from airuntime.service.service import Service, ServiceConfig
from airuntime.structured import StructuredGenerator
from airuntime.types import ModelTarget

pytestmark = pytest.mark.functional

LIBRARY = Path(__file__).parent / "library"
KEY, ENTRY = new_api_key("team-a")
HELLO = [{"role": "user", "content": "hello there"}]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
FALLBACK = ModelTarget(provider="anthropic", model="claude-haiku-4-5")


class Gateway:
    """An app on mocks, and SDK clients for it."""

    def __init__(self, app: Any, service: Service, mocks: dict[str, MockLLM]) -> None:
        self.app = app
        self.service = service
        self.mocks = mocks
        self.transports: list[httpx2.AsyncClient] = []

    def sdk(self, key: str = KEY) -> Any:
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=self.app))
        self.transports.append(http)
        # max_retries=0: the SDK's own retries would hide the statuses under test.
        return openai.AsyncOpenAI(
            base_url="http://gateway/v1", api_key=key, max_retries=0, http_client=http
        )


@pytest.fixture
async def make_gateway(quiet_logs: None, tmp_path: Path) -> AsyncIterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(
        primary: MockLLM | None = None,
        *,
        fallback: MockLLM | None = None,
        aliases: str = "",
        per_process: Decimal | None = Decimal(10),
        attempts: int = 1,
        cache: bool = False,
        **config: Any,
    ) -> Gateway:
        mocks = {"openai": primary or MockLLM()}
        fallbacks: tuple[ModelTarget, ...] = ()
        if fallback is not None:
            mocks["anthropic"] = fallback
            fallbacks = (FALLBACK,)
        telemetry = Telemetry()
        client = build_resilient_client(
            StackConfig(
                resilience=ResilienceConfig(
                    retry=RetryPolicy(max_attempts=attempts, base_delay=0.001, max_delay=0.001)
                ),
                budget=BudgetConfig(
                    per_process=per_process, ledger_path=tmp_path / f"budget-{len(made)}.sqlite3"
                ),
                cache=CacheConfig(path=tmp_path / f"cache-{len(made)}.sqlite3") if cache else None,
                fallbacks=fallbacks,
            ),
            ProviderClients(dict(mocks), "openai", offline=True),
            observer=telemetry,
            rng=random.Random(0),
        )
        system = FeatureSystem(
            telemetry, client, StructuredGenerator(client, load_registry(LIBRARY)), True, None
        )
        settings: dict[str, Any] = {
            "title": "test",
            "version": "1",
            "keyring": ApiKeyring.parse(ENTRY),
            "heartbeat_seconds": 0.05,
            "error_policy": ErrorPolicy(unavailable_retry_after=7),
            **config,
        }
        service = Service(ServiceConfig(**settings), system)
        chains = parse_model_aliases(aliases)
        app = create_service_app(
            service,
            routers=[lambda s: openai_router(s, default_model="gpt-5-mini", aliases=chains)],
            default_model="gpt-5-mini",
        )
        gateway = Gateway(app, service, mocks)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        for http in gateway.transports:
            await http.aclose()
        await gateway.service.aclose()


async def test_a_completion_parses_in_the_sdk_with_who_answered_in_its_headers(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway()
    raw = await gateway.sdk().chat.completions.with_raw_response.create(
        model="default",
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}],
            },
        ],
        temperature=0.2,
        max_completion_tokens=50,
        seed=7,
        stop=["\n\n"],
    )
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.id == f"chatcmpl-{raw.headers['x-request-id']}"
    assert completion.model == "gpt-5-mini"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Mock answer to: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 7)
    assert completion.usage.total_tokens == 13
    assert raw.headers["x-served-by"] == "mock"
    assert raw.headers["x-model"] == "openai/gpt-5-mini"
    assert raw.headers["x-attempts"] == "1"
    assert raw.headers["x-fallback-index"] == "0"
    cost = Decimal(raw.headers["x-cost-usd"])
    assert cost > 0
    assert gateway.service.spend.total == {"team-a": cost}
    sent = gateway.mocks["openai"].requests[0]
    assert [message.role for message in sent.messages] == ["system", "user"]
    assert (sent.temperature, sent.max_tokens, sent.seed, sent.stop) == (0.2, 50, 7, ("\n\n",))


async def test_a_json_schema_answer_is_validated_and_a_bad_one_is_a_502(
    make_gateway: Callable[..., Gateway],
) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}
    good = make_gateway()
    completion = await good.sdk().chat.completions.create(
        model="default", messages=HELLO, response_format=response_format
    )
    bad = make_gateway(MockLLM(["Paris, roughly two million people"]))

    answer = json.loads(completion.choices[0].message.content or "")
    assert set(answer) == {"city", "population"}
    sent = good.mocks["openai"].requests[0].output
    assert (sent.type, sent.schema_name, sent.json_schema) == ("json_schema", "city", SCHEMA)
    with pytest.raises(openai.InternalServerError) as refused:
        await bad.sdk().chat.completions.create(
            model="default", messages=HELLO, response_format=response_format
        )
    assert refused.value.status_code == 502
    assert refused.value.code == "invalid_output"
    assert refused.value.param == "response_format"


async def test_json_object_mode_and_a_schema_that_is_not_one(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway()
    sdk = gateway.sdk()
    completion = await sdk.chat.completions.create(
        model="default", messages=HELLO, response_format={"type": "json_object"}
    )
    with pytest.raises(openai.BadRequestError) as invalid:
        await sdk.chat.completions.create(
            model="default",
            messages=HELLO,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "nonsense"}},
            },
        )

    assert json.loads(completion.choices[0].message.content or "") == {"echo": "hello there"}
    assert invalid.value.param == "response_format.json_schema.schema"
    assert len(gateway.mocks["openai"].requests) == 1  # the bad schema never reached it


async def test_a_stream_has_the_same_text_and_usage_in_its_last_chunk(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway()
    sdk = gateway.sdk()
    whole = await sdk.chat.completions.create(model="default", messages=HELLO)
    stream = await sdk.chat.completions.create(
        model="default", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].message.content
    assert [chunk.choices[0].finish_reason for chunk in chunks[:-1]][-1] == "stop"
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert gateway.service.gate.in_flight == 0
    assert gateway.service.system.client.budget.reserved == 0


async def test_a_stream_without_usage_ends_with_done_and_no_usage_chunk(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway()
    transport = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=gateway.app), base_url="http://gateway"
    )
    async with transport:
        reply = await transport.post(
            "/v1/chat/completions",
            json={"model": "gpt-5-mini", "messages": HELLO, "stream": True},
            headers={"Authorization": f"Bearer {KEY}"},
        )

    events = [block for block in reply.text.split("\n\n") if block]
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["x-served-by"] == "mock"
    assert events[-1] == "data: [DONE]"
    last = json.loads(events[-2].removeprefix("data: "))
    assert last["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in last


async def test_each_error_status_raises_the_sdks_own_class(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(max_body_bytes=2_000)
    sdk = gateway.sdk()
    create = sdk.chat.completions.create
    cases: list[tuple[type[Exception], int, str | None, dict[str, Any]]] = [
        (
            openai.AuthenticationError,
            401,
            "missing_api_key",
            {"extra_headers": {"Authorization": ""}},
        ),
        (openai.NotFoundError, 404, "model_not_found", {"model": "gpt-nope"}),
        (openai.BadRequestError, 400, "unsupported_parameter", {"n": 2}),
        (openai.BadRequestError, 400, "unsupported_parameter", {"logprobs": True}),
        (openai.BadRequestError, 400, "invalid_value", {"temperature": 3}),
        (openai.BadRequestError, 400, "unknown_parameter", {"extra_body": {"best_of": 2}}),
        (
            openai.UnprocessableEntityError,
            422,
            "input_rejected",
            {"messages": [{"role": "user", "content": " \x00 "}]},
        ),
        (
            openai.APIStatusError,
            413,
            "body_too_large",
            {"messages": [{"role": "user", "content": "x" * 5_000}]},
        ),
    ]
    for error_class, status, code, changes in cases:
        arguments: dict[str, Any] = {"model": "default", "messages": HELLO, **changes}
        with pytest.raises(error_class) as raised:
            await create(**arguments)
        assert raised.value.status_code == status, changes  # type: ignore[attr-defined]
        assert raised.value.code == code, changes  # type: ignore[attr-defined]
        assert "Traceback" not in str(raised.value)
    with pytest.raises(openai.PermissionDeniedError) as unknown:
        await gateway.sdk("ak_unknown").chat.completions.create(model="default", messages=HELLO)
    with pytest.raises(openai.BadRequestError) as tools:
        await create(
            model="default",
            messages=HELLO,
            tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        )
    with pytest.raises(openai.BadRequestError) as image:
        await create(
            model="default",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
                }
            ],
        )

    assert unknown.value.status_code == 403
    assert tools.value.param == "tools"
    assert image.value.param == "messages[0].content[0].type"
    assert gateway.mocks["openai"].requests == []  # nothing refused reached the model
    assert gateway.service.gate.in_flight == 0


async def test_limits_and_outages_are_429_and_503_with_retry_after(
    make_gateway: Callable[..., Gateway],
) -> None:
    limited = make_gateway(rate_limit_per_minute=1)
    sdk = limited.sdk()
    await sdk.chat.completions.create(model="default", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as rate:
        await sdk.chat.completions.create(model="default", messages=HELLO)
    down = make_gateway(MockLLM([Fault("server_error")]))
    with pytest.raises(openai.InternalServerError) as outage:
        await down.sdk().chat.completions.create(model="default", messages=HELLO)

    assert rate.value.code == "rate_limited"
    assert int(rate.value.response.headers["retry-after"]) >= 1
    assert outage.value.status_code == 503
    assert isinstance(outage.value, openai.APIStatusError)
    assert outage.value.code == "unavailable"
    assert outage.value.response.headers["retry-after"] == "7"
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=limited.app)) as http:
        metrics = (await http.get("http://gateway/metrics")).text
    assert 'http_refusals_total{type="rate_limited"} 1.0' in metrics
    assert 'route="/v1/chat/completions",status="429"' in metrics


async def test_a_budget_refusal_is_a_rate_limit_error_before_the_model_is_called(
    make_gateway: Callable[..., Gateway],
) -> None:
    broke = make_gateway(per_process=Decimal(0))
    with pytest.raises(openai.RateLimitError) as refused:
        await broke.sdk().chat.completions.create(model="default", messages=HELLO)
    spent = make_gateway(
        key_spend_ceiling_usd=Decimal("0.00061"), per_call_ceiling_usd=Decimal("0.0006")
    )
    sdk = spent.sdk()
    await sdk.chat.completions.create(model="default", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as ceiling:
        await sdk.chat.completions.create(model="default", messages=HELLO)

    assert refused.value.code == "budget_exceeded"
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert broke.mocks["openai"].requests == []
    assert ceiling.value.code == "key_spend_exceeded"
    assert len(spent.mocks["openai"].requests) == 1


async def test_a_fallback_is_taken_behind_the_scenes_and_shows_in_the_headers(
    make_gateway: Callable[..., Gateway],
) -> None:
    primary = MockLLM([Fault("server_error")] * 4, provider="mock-primary")
    fallback = MockLLM(provider="mock-fallback")
    gateway = make_gateway(primary, fallback=fallback, attempts=2)
    sdk = gateway.sdk()
    raw = await sdk.chat.completions.with_raw_response.create(model="default", messages=HELLO)
    stream = await sdk.chat.completions.with_raw_response.create(
        model="default", messages=HELLO, stream=True
    )
    streamed = [chunk async for chunk in stream.parse()]

    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock answer to: hello there"
    assert completion.model == "claude-haiku-4-5"
    # two attempts on the primary (retried once), then one on the fallback
    assert raw.headers["x-attempts"] == "3"
    assert raw.headers["x-served-by"] == "mock-fallback"
    assert raw.headers["x-model"] == "anthropic/claude-haiku-4-5"
    assert raw.headers["x-fallback-index"] == "1"
    assert stream.headers["x-attempts"] == "3"
    assert stream.headers["x-served-by"] == "mock-fallback"
    assert {chunk.model for chunk in streamed} == {"claude-haiku-4-5"}
    assert len(primary.requests) == 4
    assert len(fallback.requests) == 2


async def test_model_aliases_name_their_chains_and_are_listed(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(aliases="fast=openai:gpt-5-nano>openai:gpt-4.1-mini")
    sdk = gateway.sdk()
    listed = await sdk.models.list()
    raw = await sdk.chat.completions.with_raw_response.create(model="fast", messages=HELLO)
    card = await sdk.models.retrieve("fast")
    with pytest.raises(openai.NotFoundError) as unknown:
        await sdk.models.retrieve("slow")
    with pytest.raises(openai.AuthenticationError):
        await sdk.models.list(extra_headers={"Authorization": ""})

    assert [model.id for model in listed.data] == ["fast", "default", "gpt-5-mini"]
    assert {model.owned_by for model in listed.data} == {"openai"}
    assert raw.headers["x-model"] == "openai/gpt-5-nano"
    assert raw.parse().model == "gpt-5-nano"
    assert card.id == "fast"
    assert unknown.value.code == "model_not_found"


async def test_a_repeated_request_is_answered_from_the_cache(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(cache=True)
    sdk = gateway.sdk()
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}
    first = await sdk.chat.completions.with_raw_response.create(model="default", messages=HELLO)
    second = await sdk.chat.completions.with_raw_response.create(model="default", messages=HELLO)
    json_first = await sdk.chat.completions.with_raw_response.create(
        model="default", messages=HELLO, response_format=response_format
    )
    json_second = await sdk.chat.completions.with_raw_response.create(
        model="default", messages=HELLO, response_format=response_format
    )

    assert first.headers["x-cache-hit"] == "false"
    assert second.headers["x-cache-hit"] == "true"
    assert Decimal(second.headers["x-cost-usd"]) == 0
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert json_first.headers["x-cache-hit"] == "false"
    assert json_second.headers["x-cache-hit"] == "true"
    assert len(gateway.mocks["openai"].requests) == 2


async def test_an_error_mid_stream_reaches_the_sdk_as_an_api_error(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(MockLLM([Fault("server_error", at_chunk=2)]))
    stream = await gateway.sdk().chat.completions.create(
        model="default", messages=HELLO, stream=True
    )
    received: list[str] = []

    async def read() -> None:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError) as failed:
        await read()

    assert received == ["Mock ", "answer "]
    assert failed.value.code == "unavailable"
    assert gateway.service.system.client.budget.reserved == 0


async def test_a_stream_refused_before_its_first_chunk_gets_an_http_status(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(MockLLM([Fault("server_error")]))
    with pytest.raises(openai.InternalServerError) as refused:
        await gateway.sdk().chat.completions.create(model="default", messages=HELLO, stream=True)

    assert refused.value.status_code == 503
    assert refused.value.response.headers["retry-after"] == "7"
    assert gateway.service.gate.in_flight == 0


async def test_a_streamed_json_answer_that_fails_its_schema_ends_with_an_error(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway(MockLLM(["not json at all"]))
    stream = await gateway.sdk().chat.completions.create(
        model="default",
        messages=HELLO,
        stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}},
    )
    with pytest.raises(openai.APIError) as failed:
        _ = [chunk async for chunk in stream]

    assert failed.value.code == "invalid_output"


def test_the_catalog_serves_the_default_chain_under_two_names() -> None:
    from airuntime.service.openai_routes import ModelCatalog

    primary = ModelTarget(provider="openai", model="gpt-5-mini")
    catalog = ModelCatalog.build((primary, FALLBACK))
    redefined = ModelCatalog.build((primary,), {"default": (FALLBACK,)})
    chains: Sequence[str] = list(catalog.chains)

    assert chains == ["default", "gpt-5-mini"]
    assert catalog.chain("gpt-5-mini") == (primary, FALLBACK)
    assert list(redefined.chains) == ["default", "claude-haiku-4-5"]


async def test_bodies_the_sdk_would_not_send_are_400s_naming_the_parameter(
    make_gateway: Callable[..., Gateway],
) -> None:
    gateway = make_gateway()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    bodies: list[tuple[object, str | None, str]] = [
        (b"{not json", None, "invalid_json"),
        ({"model": "default"}, "messages", "missing_required_parameter"),
        (
            {"model": "default", "messages": [{"role": "user", "content": 3}]},
            "messages[0].content",
            "invalid_value",
        ),
        (
            {"model": "default", "messages": [{"role": "tool", "content": "42"}]},
            "messages[0].role",
            "unsupported_parameter",
        ),
        (
            {
                "model": "default",
                "messages": [
                    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
                    {"role": "user", "content": "and?"},
                ],
            },
            "messages[0].tool_calls",
            "unsupported_parameter",
        ),
        (
            {"model": "default", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]},
            "stop",
            "invalid_value",
        ),
        (
            {
                "model": "default",
                "messages": HELLO,
                "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
            },
            "response_format.json_schema.schema",
            "invalid_value",
        ),
        ({"model": "default", "messages": HELLO, "top_p": 0.5}, "top_p", "unsupported_parameter"),
        (
            {"model": "default", "messages": HELLO, "tool_choice": "auto"},
            "tool_choice",
            "unsupported_parameter",
        ),
    ]
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=gateway.app), base_url="http://gateway"
    ) as http:
        for body, param, code in bodies:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            reply = await http.post("/v1/chat/completions", content=content, headers=headers)
            assert reply.status_code == 400, body
            error = reply.json()["error"]
            assert (error["param"], error["code"], error["type"]) == (
                param,
                code,
                "invalid_request_error",
            ), body
    assert gateway.mocks["openai"].requests == []


async def test_a_quiet_stream_gets_heartbeats_and_a_drain_ends_it_with_an_error_event(
    make_gateway: Callable[..., Gateway],
) -> None:
    async def slow_sleep(seconds: float) -> None:
        await asyncio.sleep(0.2)  # 0.2 s between chunks, four heartbeats' time

    mock = MockLLM(chunk_interval=1.0, sleep=slow_sleep)
    gateway = make_gateway(mock)

    async def sigterm_mid_stream() -> None:
        for _ in range(500):  # bounded: 5 s for the request to reach the model
            if mock.requests:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the first chunks and heartbeats are out
        gateway.service.drain.begin()

    drain = asyncio.create_task(sigterm_mid_stream())
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=gateway.app), base_url="http://gateway"
    ) as http:
        reply = await http.post(
            "/v1/chat/completions",
            json={"model": "default", "messages": HELLO, "stream": True},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    await drain
    blocks = [block for block in reply.text.split("\n\n") if block]

    assert blocks[0].startswith("data: ")  # the first chunk
    assert ": heartbeat" in blocks
    last = json.loads(blocks[-1].removeprefix("data: "))
    assert last["error"]["code"] == "shutting_down"
    assert "data: [DONE]" not in blocks
    assert gateway.service.system.client.budget.reserved == 0
    assert gateway.service.gate.in_flight == 0
