"""The service's app through ASGI (httpx, no server): routes, auth, limits, error answers,
SSE framing and metrics, on the mock provider."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
from fastapi import APIRouter

from airuntime.evals.feature import EvalFeature
from airuntime.features import FeatureSystem
from airuntime.model.mock import MockLLM
from airuntime.model.mock_faults import Fault, Latency
from airuntime.service.app import create_service_app
from airuntime.service.auth import ApiKeyring, new_api_key
from airuntime.service.errors import ErrorPolicy
from airuntime.service.routes import add_feature_route
from airuntime.service.service import Service, ServiceConfig

pytestmark = pytest.mark.functional

KEY_A, ENTRY_A = new_api_key("team-a")
KEY_B, ENTRY_B = new_api_key("team-b")
SYSTEM = Callable[..., FeatureSystem]


def config(**changes: object) -> ServiceConfig:
    values: dict[str, object] = {
        "title": "test",
        "version": "1",
        "keyring": ApiKeyring.parse(f"{ENTRY_A},{ENTRY_B}"),
        "heartbeat_seconds": 0.05,
        "error_policy": ErrorPolicy(unavailable_retry_after=7),
    }
    values.update(changes)
    return ServiceConfig(**values)  # type: ignore[arg-type]


def feature_routers(features: dict[str, EvalFeature]) -> list[Callable[[Service], APIRouter]]:
    def build(service: Service) -> APIRouter:
        router = APIRouter()
        for feature in features.values():
            add_feature_route(
                router,
                service,
                f"/v1/{feature.name}",
                input_model=feature.input_model,
                output_model=feature.output_model,
                run=feature.run_case,
                summary=feature.name,
            )
        return router

    return [build]


@pytest.fixture
async def make_client(
    service_system: SYSTEM, eval_features: dict[str, EvalFeature]
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    opened: list[tuple[httpx.AsyncClient, Service]] = []

    def make(
        mock: MockLLM | None = None, *, per_process: Decimal | None = Decimal(10), **changes: object
    ) -> httpx.AsyncClient:
        system = service_system(mock or MockLLM(), per_process=per_process)
        service = Service(config(**changes), system, checks=[("prompts", lambda: None)])
        app = create_service_app(
            service, routers=feature_routers(eval_features), default_model="gpt-5-mini"
        )
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://service"
        )
        client.service = service  # type: ignore[attr-defined]
        opened.append((client, service))
        return client

    yield make
    for client, service in opened:
        await client.aclose()
        await service.aclose()


def auth(key: str = KEY_A) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def events(body: str) -> list[tuple[str, object]]:
    """(event, data) of each SSE event; ("comment", text) for heartbeats."""
    found: list[tuple[str, object]] = []
    for block in body.split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            found.append(("comment", block[1:].strip()))
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        found.append((lines["event"], json.loads(lines["data"])))
    return found


async def test_ask_answers_with_its_provenance_and_the_request_id(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client()
    reply = await client.post(
        "/v1/ask", json={"prompt": "hello there"}, headers={**auth(), "X-Request-ID": "req-1"}
    )

    assert reply.status_code == 200
    body = reply.json()
    assert body["model"] == "openai/gpt-5-mini"
    assert body["served_by"] == "mock"
    assert body["attempts"] == 1
    assert body["request_id"] == "req-1"
    assert reply.headers["x-request-id"] == "req-1"
    assert reply.headers["server-timing"].startswith("app;dur=")
    assert Decimal(body["cost_usd"]) > 0
    service: Service = client.service  # type: ignore[attr-defined]
    assert service.spend.total == {"team-a": Decimal(body["cost_usd"])}


async def test_without_a_key_401_with_an_unknown_one_403(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client()
    missing = await client.post("/v1/ask", json={"prompt": "hi"})
    unknown = await client.post("/v1/ask", json={"prompt": "hi"}, headers=auth("ak_wrong"))
    by_header = await client.post("/v1/ask", json={"prompt": "hi"}, headers={"X-API-Key": KEY_B})

    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "missing_api_key"
    assert unknown.status_code == 403
    assert unknown.json()["error"]["type"] == "invalid_api_key"
    assert by_header.status_code == 200


async def test_a_wrong_field_is_a_422_naming_it(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client()
    wrong = await client.post("/v1/ask", json={"prompt": 3, "extra": 1}, headers=auth())
    malformed = await client.post(
        "/v1/ask", content=b"{not json", headers={**auth(), "Content-Type": "application/json"}
    )

    assert wrong.status_code == 422
    fields = {item["field"] for item in wrong.json()["error"]["fields"]}
    assert fields == {"body.prompt", "body.extra"}
    assert "body.prompt" in wrong.json()["error"]["message"]
    assert malformed.status_code == 422
    assert malformed.json()["error"]["type"] == "invalid_request"


async def test_input_guardrails_and_body_size(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(max_body_bytes=2_000)
    blank = await client.post("/v1/ask", json={"prompt": " \x00 "}, headers=auth())
    large = await client.post("/v1/ask", json={"prompt": "x" * 5_000}, headers=auth())

    assert blank.status_code == 422
    assert blank.json()["error"]["type"] == "input_rejected"
    assert large.status_code == 413
    assert large.json()["error"]["type"] == "body_too_large"


async def test_per_key_rate_limit_is_a_429_with_retry_after(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(rate_limit_per_minute=2)
    statuses = [
        (await client.post("/v1/ask", json={"prompt": "hi"}, headers=auth())).status_code
        for _ in range(3)
    ]
    refused = await client.post("/v1/ask", json={"prompt": "hi"}, headers=auth())
    other_key = await client.post("/v1/ask", json={"prompt": "hi"}, headers=auth(KEY_B))

    assert statuses == [200, 200, 429]
    assert refused.json()["error"]["type"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert other_key.status_code == 200


async def test_per_key_spend_ceiling_refuses_before_the_call(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    mock = MockLLM()
    client = make_client(
        mock,
        key_spend_ceiling_usd=Decimal("0.00061"),
        per_call_ceiling_usd=Decimal("0.0006"),
    )
    first = await client.post("/v1/ask", json={"prompt": "hi"}, headers=auth())
    second = await client.post("/v1/ask", json={"prompt": "hi"}, headers=auth())

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json()["error"]["type"] == "key_spend_exceeded"
    assert len(mock.requests) == 1  # refused before the model was called
    metrics = (await client.get("/metrics")).text
    assert 'api_key_spend_usd_total{key="team-a"}' in metrics
    assert 'http_refusals_total{type="key_spend_exceeded"} 1.0' in metrics


async def test_budget_refusal_is_a_429_and_an_outage_a_503(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    broke = make_client(per_process=Decimal(0))
    refused = await broke.post("/v1/ask", json={"prompt": "hi"}, headers=auth())
    down = make_client(MockLLM([Fault("server_error")] * 3))
    outage = await down.post("/v1/ask", json={"prompt": "hi"}, headers=auth())

    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "budget_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert outage.status_code == 503
    assert outage.json()["error"]["type"] == "unavailable"
    assert outage.headers["retry-after"] == "7"
    assert "Traceback" not in outage.text
    assert "/" not in outage.json()["error"]["message"]


async def test_a_feature_degrades_to_200_with_degraded_true(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(MockLLM([Fault("server_error")] * 3))
    reply = await client.post(
        "/v1/summarize", json={"text": "The server failed. Then it came back."}, headers=auth()
    )

    assert reply.status_code == 200
    body = reply.json()
    assert body["degraded"] is True
    assert body["needs_review"] is True
    assert body["model"] is None
    # The primary and the prompt's OpenAI fallback each failed once; Anthropic is skipped
    # (not configured).
    assert body["attempts"] == 2


async def test_a_feature_answers_with_its_model_inside_the_envelope(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client()
    reply = await client.post(
        "/v1/classify", json={"text": "refund please", "labels": ["billing", "bug"]}, headers=auth()
    )

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body["result"]) == {"label", "confidence"}
    assert body["model"] == "openai/gpt-5-mini"
    assert body["served_by"] == "mock"
    assert body["degraded"] is False


async def test_the_stream_sends_deltas_then_a_final_event(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client()
    reply = await client.post("/v1/ask/stream", json={"prompt": "tell me more"}, headers=auth())

    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    found = events(reply.text)
    kinds = [kind for kind, _ in found]
    assert kinds[-1] == "done"
    assert set(kinds[:-1]) == {"delta"}
    final = found[-1][1]
    assert isinstance(final, dict)
    assert final["finish_reason"] == "stop"
    assert final["served_by"] == "mock"
    assert Decimal(final["cost_usd"]) > 0
    assert final["usage"]["output_tokens"] > 0


async def test_the_stream_sends_heartbeats_while_the_model_is_quiet(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async def slow_sleep(seconds: float) -> None:
        await asyncio.sleep(0.2)

    mock = MockLLM(chunk_interval=1.0, sleep=slow_sleep)
    client = make_client(mock)
    reply = await client.post("/v1/ask/stream", json={"prompt": "a b c"}, headers=auth())

    kinds = [kind for kind, _ in events(reply.text)]
    assert "comment" in kinds
    assert kinds[-1] == "done"


async def test_an_error_after_the_first_delta_is_an_error_event(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(MockLLM([Fault("server_error", at_chunk=2)]))
    reply = await client.post("/v1/ask/stream", json={"prompt": "hello"}, headers=auth())

    found = events(reply.text)
    assert [kind for kind, _ in found] == ["delta", "delta", "error"]
    assert found[-1][1]["type"] == "unavailable"  # type: ignore[index]


async def test_a_stream_refused_before_its_first_chunk_gets_an_http_status(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    client = make_client(MockLLM([Fault("server_error")] * 3))
    reply = await client.post("/v1/ask/stream", json={"prompt": "hello"}, headers=auth())

    assert reply.status_code == 503
    assert reply.json()["error"]["type"] == "unavailable"


async def test_health_readiness_and_metrics(make_client: Callable[..., httpx.AsyncClient]) -> None:
    client = make_client()
    await client.post("/v1/ask", json={"prompt": "hi"}, headers=auth())
    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    client.service.drain.begin()  # type: ignore[attr-defined]
    draining = await client.get("/readyz")
    metrics = await client.get("/metrics")

    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "prompts": "ok",
        "breakers": "ok",
        "budget": "ok",
        "shutdown": "ok",
    }
    assert draining.status_code == 503
    assert draining.json()["checks"]["shutdown"] == "shutting down"
    text = metrics.text
    assert 'http_requests_total{method="POST",route="/v1/ask",status="200"} 1.0' in text
    assert 'llm_calls_total{outcome="ok"} 1.0' in text
    assert "llm_attempt_latency_seconds" in text
    assert "budget_spent_usd" in text


async def test_the_concurrency_limit_refuses_with_429(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async def slow_sleep(seconds: float) -> None:
        await asyncio.sleep(0.3)

    client = make_client(
        MockLLM(latency=Latency(300, 300), sleep=slow_sleep), max_concurrent_requests=1
    )
    first, second = await asyncio.gather(
        client.post("/v1/ask", json={"prompt": "one"}, headers=auth()),
        client.post("/v1/ask", json={"prompt": "two"}, headers=auth()),
    )

    assert sorted([first.status_code, second.status_code]) == [200, 429]
    refused = first if first.status_code == 429 else second
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "overloaded"


async def test_unknown_routes_are_json_404s(make_client: Callable[..., httpx.AsyncClient]) -> None:
    reply = await make_client().get("/nope")

    assert reply.status_code == 404
    assert reply.json()["error"]["type"] == "not_found"


async def test_the_server_span_parents_the_model_spans_and_the_access_log_has_the_id(
    service_system: SYSTEM,
) -> None:
    import structlog
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from airuntime.observability.logs import configure_logging
    from airuntime.observability.otel import GenAIInstruments
    from airuntime.observability.telemetry import Telemetry

    configure_logging(level="INFO")  # the access log is at INFO
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry(instruments=GenAIInstruments(tracer_provider=provider))
    service = Service(config(), service_system(MockLLM(), telemetry=telemetry))
    app = create_service_app(service, default_model="gpt-5-mini", tracer_provider=provider)
    transport = httpx.ASGITransport(app=app)
    with structlog.testing.capture_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            await client.post(
                "/v1/ask", json={"prompt": "hi"}, headers={**auth(), "X-Request-ID": "trace-me"}
            )
            await client.post(
                "/v1/ask", json={"prompt": "hi"}, headers={**auth(), "X-Request-ID": "bad id!"}
            )
    await service.aclose()
    provider.shutdown()

    finished = spans.get_finished_spans()
    server = next(span for span in finished if span.kind is SpanKind.SERVER)
    model = next(span for span in finished if span.kind is SpanKind.CLIENT)
    assert server.name == "POST /v1/ask"
    assert model.parent is not None
    assert model.parent.span_id == server.context.span_id
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    access = [entry for entry in logs if entry["event"] == "http.request"]
    assert access[0]["request_id"] == "trace-me"
    assert access[0]["api_key"] == "team-a"
    assert access[0]["route"] == "/v1/ask"
    assert access[1]["request_id"] != "bad id!"  # an unusable id is replaced, not logged


async def test_a_request_past_its_timeout_is_a_504_and_frees_its_slot(
    make_client: Callable[..., httpx.AsyncClient],
) -> None:
    async def slow_sleep(seconds: float) -> None:
        await asyncio.sleep(5)

    mock = MockLLM(latency=Latency(5_000, 5_000), sleep=slow_sleep)
    client = make_client(mock, request_timeout_seconds=0.05)
    reply = await client.post("/v1/ask", json={"prompt": "hi"}, headers=auth())

    assert reply.status_code == 504
    assert reply.json()["error"]["type"] == "timeout"
    service: Service = client.service  # type: ignore[attr-defined]
    assert service.gate.in_flight == 0
    assert service.system.client.budget.reserved == 0  # the attempt's reservation is freed


async def test_startup_moves_what_lives_as_long_as_the_process_out_of_the_collector(
    service_system: SYSTEM,
) -> None:
    service = Service(config(), service_system(MockLLM()), checks=[])
    app = create_service_app(service, default_model="gpt-5-mini")
    gc.unfreeze()

    def collected() -> bool:  # is the app among the objects a full collection walks?
        return any(o is app for generation in range(3) for o in gc.get_objects(generation))

    assert collected()
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 1_000
            assert not collected()
    finally:
        gc.unfreeze()


async def test_a_method_not_served_lists_every_method_of_the_path_in_allow(
    service_system: SYSTEM,
) -> None:
    def two_routes(_: Service) -> APIRouter:  # one path, GET and POST as separate routes
        router = APIRouter()

        @router.get("/v1/thing")
        async def read() -> dict[str, str]:
            return {}

        @router.post("/v1/thing")
        async def write() -> dict[str, str]:
            return {}

        return router

    service = Service(config(), service_system(MockLLM()), checks=[])
    app = create_service_app(service, routers=[two_routes], default_model="gpt-5-mini")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.request(
            "DELETE", "/v1/thing", headers={"Authorization": f"Bearer {KEY_A}"}
        )

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["error"]["type"] == "method_not_allowed"
