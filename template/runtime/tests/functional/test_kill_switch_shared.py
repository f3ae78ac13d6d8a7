"""The kill switch shared on a real Redis: two service instances (each its own connection, as
two replicas would have) obey one switch, a change on one holding on the other at its next
refresh; with Redis gone the last state read holds and a change is refused with a 503."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

from collections.abc import Callable, Collection

import httpx
from fastapi import APIRouter

from airuntime.errors import ConfigurationError
from airuntime.evals.feature import EvalFeature
from airuntime.features import FeatureSystem
from airuntime.model.mock import MockLLM
from airuntime.resilience.assembly import build_kill_switch
from airuntime.resilience.shared.connection import connect
from airuntime.resilience.shared.switch import SharedKillSwitch
from airuntime.resilience.state import RedisConfig
from airuntime.service.app import create_service_app
from airuntime.service.auth import ApiKeyring, new_api_key
from airuntime.service.routes import add_feature_route
from airuntime.service.service import Service, ServiceConfig
from airuntime.testing import FakeClock, RedisServer

pytestmark = pytest.mark.functional

KEY, ENTRY = new_api_key("support")
ADMIN, ADMIN_ENTRY = new_api_key("ops")
SYSTEM = Callable[..., FeatureSystem]
BODY = {"text": "One switch for every replica. The next request obeys it.", "max_words": 3}


def replica(
    system: FeatureSystem, switch: SharedKillSwitch, features: dict[str, EvalFeature]
) -> tuple[Service, httpx.AsyncClient]:
    system.generator.switch = switch
    service = Service(
        ServiceConfig(
            title="t",
            version="1",
            keyring=ApiKeyring.parse(ENTRY),
            admin_keyring=ApiKeyring.parse(ADMIN_ENTRY),
        ),
        system,
    )

    def routes(service: Service) -> APIRouter:
        router = APIRouter()
        feature = features["summarize"]
        add_feature_route(
            router,
            service,
            "/v1/summarize",
            input_model=feature.input_model,
            output_model=feature.output_model,
            run=feature.run_case,
            summary="s",
        )
        return router

    app = create_service_app(service, routers=[routes], default_model="gpt-5-mini")
    return service, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")


def shared(url: str, clock: FakeClock, known: Collection[str]) -> SharedKillSwitch:
    """A replica's switch: its own connection; the refresh period passes when the test says."""
    state = connect(RedisConfig(url=url, socket_timeout_seconds=0.2, connect_timeout_seconds=0.2))
    return SharedKillSwitch(state, known=known, refresh_seconds=2, clock=clock)


async def test_two_replicas_obey_one_switch_within_the_refresh(
    redis_url: str, service_system: SYSTEM, eval_features: dict[str, EvalFeature]
) -> None:
    clock = FakeClock()
    one_system, two_system = service_system(MockLLM()), service_system(MockLLM())
    known = one_system.generator.registry.ids
    one, one_client = replica(one_system, shared(redis_url, clock, known), eval_features)
    two, two_client = replica(two_system, shared(redis_url, clock, known), eval_features)
    auth = {"Authorization": f"Bearer {KEY}"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with one_client, two_client:
        first = await two_client.post("/v1/summarize", json=BODY, headers=auth)  # read: all on
        changed = await one_client.post(
            "/admin/switch", json={"feature": "summarize", "off": True}, headers=admin
        )
        on_one = await one_client.post("/v1/summarize", json=BODY, headers=auth)
        before_refresh = await two_client.post("/v1/summarize", json=BODY, headers=auth)
        clock.advance(2)
        after_refresh = await two_client.post("/v1/summarize", json=BODY, headers=auth)
        seen_by_two = await two_client.get("/admin/switch", headers=admin)
        await two_client.post(
            "/admin/switch", json={"feature": "summarize", "off": False}, headers=admin
        )
        clock.advance(2)
        on_again = await one_client.post("/v1/summarize", json=BODY, headers=auth)
        metrics_two = (await two_client.get("/metrics")).text
    await one.aclose()
    await two.aclose()
    await one_system.generator.switch.aclose()
    await two_system.generator.switch.aclose()

    assert first.json()["degraded"] is False
    assert changed.json()["shared"] is True
    assert on_one.json()["degraded"] is True  # the replica that took the change: at once
    assert before_refresh.json()["degraded"] is False  # the other: within the refresh period
    assert after_refresh.json()["degraded"] is True
    assert after_refresh.json()["cost_usd"] == "0"
    summarize = next(f for f in seen_by_two.json()["features"] if f["feature"] == "summarize")
    assert (summarize["off"], summarize["changed_by"]) == (True, "ops")
    assert on_again.json()["degraded"] is False
    assert 'kill_switch_off{feature="summarize"} 0.0' in metrics_two
    assert 'kill_switch_changes_total{feature="summarize",off="false"} 1.0' in metrics_two


async def test_with_redis_gone_the_last_state_holds_and_a_change_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
    service_system: SYSTEM,
    eval_features: dict[str, EvalFeature],
) -> None:
    if RedisServer.missing() is not None:
        pytest.skip(str(RedisServer.missing()))
    clock = FakeClock()
    system = service_system(MockLLM())
    with RedisServer(tmp_path_factory.mktemp("gone")) as server:
        switch = shared(server.url, clock, system.generator.registry.ids)
        service, client = replica(system, switch, eval_features)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        await client.post(
            "/admin/switch", json={"feature": "summarize", "off": True}, headers=admin
        )
    clock.advance(2)
    try:
        still_off = await client.post(
            "/v1/summarize", json=BODY, headers={"Authorization": f"Bearer {KEY}"}
        )
        refused = await client.post(
            "/admin/switch", json={"feature": "summarize", "off": False}, headers=admin
        )
    finally:
        await client.aclose()
        await service.aclose()
        await switch.aclose()

    assert still_off.json()["degraded"] is True
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "switch_unavailable"
    assert refused.headers["retry-after"] == "5"
    assert switch.state.errors["switch"] >= 2


async def test_assembly_builds_the_shared_switch_seeded_from_the_setting(redis_url: str) -> None:
    switch = build_kill_switch({"summarize"}, known={"summarize"}, shared=RedisConfig(redis_url))
    assert isinstance(switch, SharedKillSwitch)
    await switch.refresh()
    assert (switch.shared, switch.off()) == (True, frozenset({"summarize"}))
    await switch.aclose()
    with pytest.raises(ConfigurationError, match=r"^AI_SWITCHED_OFF: 'sumarize' is not a prompt"):
        build_kill_switch({"sumarize"}, known={"summarize"})
