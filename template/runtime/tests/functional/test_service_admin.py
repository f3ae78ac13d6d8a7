"""The kill switch's admin routes through ASGI (httpx, no server): GET and POST /admin/switch
behind their own keys, the next request obeying a change, the audit log line and metrics, and
an agent (no degraded answer) refused with a 503."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from airuntime.agents.loop import Agent, AgentConfig
from airuntime.agents.store import RunStore
from airuntime.evals.feature import EvalFeature
from airuntime.features import FeatureSystem
from airuntime.model.mock import MockLLM
from airuntime.observability.logs import configure_logging
from airuntime.resilience.switch import KillSwitch
from airuntime.service.app import create_service_app
from airuntime.service.auth import ApiKeyring, new_api_key
from airuntime.service.errors import ErrorPolicy
from airuntime.service.routes import add_feature_route
from airuntime.service.service import Service, ServiceConfig
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import ModelTarget

pytestmark = pytest.mark.functional

KEY, ENTRY = new_api_key("support")
ADMIN, ADMIN_ENTRY = new_api_key("ops")
SYSTEM = Callable[..., FeatureSystem]
TEXT = "The kill switch turns the AI path off. Degraded answers are served instead."


def config(admin: str = ADMIN_ENTRY) -> ServiceConfig:
    return ServiceConfig(
        title="test",
        version="1",
        keyring=ApiKeyring.parse(ENTRY),
        admin_keyring=ApiKeyring.parse(admin, setting="SERVICE_ADMIN_KEYS"),
        error_policy=ErrorPolicy(unavailable_retry_after=7, switched_off_retry_after=90),
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def agent_routes(agent: Agent) -> Callable[[Service], APIRouter]:
    def build(service: Service) -> APIRouter:
        router = APIRouter()

        @router.post("/v1/agent")
        async def run_agent(request: Request) -> Response:
            async def work() -> tuple[Response, Decimal]:
                run = await agent.run("where is order 7?")
                return JSONResponse({"run_id": run.run_id}), run.cost

            return await service.answer(request, work)

        return router

    return build


def make_app(
    service: Service, features: dict[str, EvalFeature], *extra: Callable[[Service], APIRouter]
) -> httpx.AsyncClient:
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

    app = create_service_app(service, routers=[build, *extra], default_model="gpt-5-mini")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")


@pytest.fixture
async def served(
    service_system: SYSTEM, eval_features: dict[str, EvalFeature]
) -> AsyncIterator[tuple[httpx.AsyncClient, Service, MockLLM]]:
    mock = MockLLM()
    system = service_system(mock)
    system.generator.switch = KillSwitch(known=system.generator.registry.ids)
    service = Service(config(), system)
    async with make_app(service, eval_features) as client:
        yield client, service, mock
    await service.aclose()


def metric(text: str, line_start: str) -> float:
    return float(
        next(line for line in text.splitlines() if line.startswith(line_start)).split()[-1]
    )


async def test_switching_summarize_off_serves_the_degraded_answer_until_it_is_on_again(
    served: tuple[httpx.AsyncClient, Service, MockLLM],
) -> None:
    client, _, mock = served
    body = {"text": TEXT, "max_words": 4}
    before = await client.post("/v1/summarize", json=body, headers=bearer(KEY))
    assert before.json()["degraded"] is False
    calls = len(mock.requests)

    configure_logging(level="WARNING")  # the audit event is at WARNING: the default level keeps it
    with structlog.testing.capture_logs() as logs:
        changed = await client.post(
            "/admin/switch",
            json={"feature": "summarize", "off": True},
            headers={**bearer(ADMIN), "X-Request-ID": "switch-1"},
        )
    off = await client.post("/v1/summarize", json=body, headers=bearer(KEY))

    assert changed.status_code == 200
    state = changed.json()
    assert state["off"] == ["summarize"]
    assert state["shared"] is False
    summarize = next(item for item in state["features"] if item["feature"] == "summarize")
    assert (summarize["off"], summarize["source"], summarize["changed_by"]) == (
        True,
        "admin",
        "ops",
    )
    assert summarize["changed_at"].endswith("Z")
    audit = [entry for entry in logs if entry["event"] == "admin.switch"]
    assert len(audit) == 1
    assert {k: audit[0][k] for k in ("who", "feature", "off", "request_id")} == {
        "who": "ops",
        "feature": "summarize",
        "off": True,
        "request_id": "switch-1",
    }
    assert off.status_code == 200
    answer = off.json()
    assert (answer["degraded"], answer["cost_usd"], answer["attempts"]) == (True, "0", 0)
    assert (answer["model"], answer["served_by"]) == (None, None)
    assert answer["result"]["summary"] == "The kill switch turns"
    assert len(mock.requests) == calls  # no model call for the switched-off feature

    back = await client.post(
        "/admin/switch", json={"feature": "summarize", "off": False}, headers=bearer(ADMIN)
    )
    on = await client.post("/v1/summarize", json=body, headers=bearer(KEY))

    assert back.json()["off"] == []
    assert on.json()["degraded"] is False
    assert on.json()["served_by"] == "mock"
    assert len(mock.requests) == calls + 1
    metrics = (await client.get("/metrics")).text
    assert metric(metrics, 'kill_switch_changes_total{feature="summarize",off="true"}') == 1
    assert metric(metrics, 'kill_switch_changes_total{feature="summarize",off="false"}') == 1
    assert metric(metrics, 'kill_switch_off{feature="summarize"}') == 0
    assert metric(metrics, 'kill_switch_off{feature="classify"}') == 0


async def test_the_gauge_and_the_state_show_what_is_off_and_what_the_setting_seeded(
    service_system: SYSTEM, eval_features: dict[str, EvalFeature]
) -> None:
    system = service_system(MockLLM())
    system.generator.switch = KillSwitch({"classify"}, known=system.generator.registry.ids)
    service = Service(config(), system)
    async with make_app(service, eval_features) as client:
        state = await client.get("/admin/switch", headers={"X-API-Key": ADMIN})
        refused = await client.post(
            "/v1/classify", json={"text": "hi", "labels": ["a", "b"]}, headers=bearer(KEY)
        )
        metrics = (await client.get("/metrics")).text
    await service.aclose()

    assert state.status_code == 200
    assert state.json()["off"] == ["classify"]
    classify = next(item for item in state.json()["features"] if item["feature"] == "classify")
    assert classify == {
        "feature": "classify",
        "off": True,
        "source": "setting",
        "changed_by": None,
        "changed_at": None,
    }
    # classify has no degraded answer: switched off, it is a 503 with Retry-After
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "90"
    assert refused.json()["error"]["type"] == "switched_off"
    assert refused.json()["error"]["request_id"] == refused.headers["x-request-id"]
    assert metric(metrics, 'kill_switch_off{feature="classify"}') == 1
    assert metric(metrics, 'kill_switch_off{feature="summarize"}') == 0


async def test_admin_routes_want_an_admin_key_and_name_the_valid_features(
    served: tuple[httpx.AsyncClient, Service, MockLLM],
) -> None:
    client, _, _ = served
    change = {"feature": "summarize", "off": True}

    missing = await client.post("/admin/switch", json=change)
    service_key = await client.post("/admin/switch", json=change, headers=bearer(KEY))
    service_key_get = await client.get("/admin/switch", headers={"X-API-Key": KEY})
    unknown_key = await client.get("/admin/switch", headers=bearer("ak_wrong"))
    admin_on_v1 = await client.post("/v1/summarize", json={"text": TEXT}, headers=bearer(ADMIN))
    typo = await client.post(
        "/admin/switch", json={"feature": "sumarize", "off": True}, headers=bearer(ADMIN)
    )
    invalid = await client.post(
        "/admin/switch", json={"feature": "summarize"}, headers=bearer(ADMIN)
    )
    state = await client.get("/admin/switch", headers=bearer(ADMIN))

    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "missing_api_key"
    assert (service_key.status_code, service_key.json()["error"]["type"]) == (403, "not_admin")
    assert (service_key_get.status_code, service_key_get.json()["error"]["type"]) == (
        403,
        "not_admin",
    )
    assert (unknown_key.status_code, unknown_key.json()["error"]["type"]) == (
        403,
        "invalid_api_key",
    )
    assert admin_on_v1.status_code == 403  # an admin key is not a service key either
    assert typo.status_code == 422
    assert typo.json()["error"]["type"] == "unknown_feature"
    assert typo.json()["error"]["message"] == (
        "'sumarize' is not a prompt id: use one of classify, summarize."
    )
    assert invalid.status_code == 422
    assert invalid.json()["error"]["type"] == "invalid_request"
    assert state.json()["off"] == []  # nothing refused changed anything


async def test_without_admin_keys_there_are_no_admin_routes(
    service_system: SYSTEM, eval_features: dict[str, EvalFeature]
) -> None:
    service = Service(config(admin=""), service_system(MockLLM()))
    async with make_app(service, eval_features) as client:
        got = await client.get("/admin/switch", headers=bearer(ADMIN))
        posted = await client.post(
            "/admin/switch", json={"feature": "summarize", "off": True}, headers=bearer(KEY)
        )
        schema = (await client.get("/openapi.json")).json()
    await service.aclose()

    assert (got.status_code, posted.status_code) == (404, 404)
    assert not [path for path in schema["paths"] if path.startswith("/admin")]


async def test_the_openapi_document_gives_every_status_of_the_admin_routes(
    served: tuple[httpx.AsyncClient, Service, MockLLM],
) -> None:
    client, _, _ = served
    schema = (await client.get("/openapi.json")).json()

    get = schema["paths"]["/admin/switch"]["get"]
    post = schema["paths"]["/admin/switch"]["post"]
    assert sorted(get["responses"]) == ["200", "401", "403", "500"]
    assert sorted(post["responses"]) == ["200", "400", "401", "403", "413", "422", "500", "503"]
    assert get["security"] == post["security"] == [{"bearer": []}, {"apiKey": []}]
    body = schema["components"]["schemas"]["SwitchBody"]
    assert sorted(body["required"]) == ["feature", "off"]


async def test_feature_answers_carry_the_request_id_of_their_header(
    served: tuple[httpx.AsyncClient, Service, MockLLM],
) -> None:
    client, _, _ = served
    given = await client.post(
        "/v1/summarize", json={"text": TEXT}, headers={**bearer(KEY), "X-Request-ID": "mine-1"}
    )
    made = await client.post("/v1/summarize", json={"text": TEXT}, headers=bearer(KEY))

    assert given.json()["request_id"] == given.headers["x-request-id"] == "mine-1"
    assert made.json()["request_id"] == made.headers["x-request-id"]
    assert made.json()["served_by"] == "mock"


async def test_a_switched_off_agent_is_a_503_and_runs_again_when_switched_on(
    service_system: SYSTEM, eval_features: dict[str, EvalFeature], tmp_path: Path
) -> None:
    target = ModelTarget(provider="mock", model="m")
    mock = MockLLM()
    switch = KillSwitch(known={"triage", "summarize", "classify"})
    agent = Agent(
        resilient_client({"mock": mock}, clock=FakeClock(), pricing=flat_prices([target])),
        [],
        AgentConfig(name="triage", model="m", instructions="Help.", targets=(target,)),
        store=RunStore(tmp_path / "runs"),
        switch=switch,
    )
    system = service_system(MockLLM())
    system.generator.switch = switch
    service = Service(config(), system)
    async with make_app(service, eval_features, agent_routes(agent)) as client:
        await client.post(
            "/admin/switch", json={"feature": "triage", "off": True}, headers=bearer(ADMIN)
        )
        refused = await client.post("/v1/agent", headers=bearer(KEY))
        await client.post(
            "/admin/switch", json={"feature": "triage", "off": False}, headers=bearer(ADMIN)
        )
        ran = await client.post("/v1/agent", headers=bearer(KEY))
    await service.aclose()
    await agent.aclose()

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "90"
    assert refused.json()["error"]["type"] == "switched_off"
    assert ran.status_code == 200
    assert len(mock.requests) == 1  # the refused run called no model
    assert list((tmp_path / "runs").glob("*.json")) != []
