"""An app for the slow service tests to serve with a real uvicorn (`create_app`, a factory):
the mock standing in for OpenAI, configured from SERVICE_TEST_* variables, and one route of
its own, /test/state, that shows what the mock and the budget saw; the OpenAI-compatible
routes with the names in SERVICE_TEST_MODELS."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from fastapi import APIRouter, FastAPI

from airuntime.features import FeatureSystem
from airuntime.model.mock import MockLLM
from airuntime.model.mock_faults import Latency
from airuntime.observability.telemetry import Telemetry
from airuntime.prompts import load_registry
from airuntime.resilience.assembly import (
    BudgetConfig,
    ProviderClients,
    StackConfig,
    build_resilient_client,
)
from airuntime.resilience.targets import parse_model_aliases
from airuntime.service.app import create_service_app
from airuntime.service.auth import ApiKeyring
from airuntime.service.openai_routes import openai_router
from airuntime.service.service import Service, ServiceConfig
from airuntime.structured import StructuredGenerator

LIBRARY = Path(__file__).parents[1] / "library"


def create_app() -> FastAPI:
    env = os.environ
    latency = float(env.get("SERVICE_TEST_LATENCY_MS", "0"))
    mock = MockLLM(
        latency=Latency(latency, latency),
        chunk_interval=float(env.get("SERVICE_TEST_CHUNK_INTERVAL", "0")),
    )
    telemetry = Telemetry()
    client = build_resilient_client(
        StackConfig(
            budget=BudgetConfig(
                per_process=Decimal(10),
                per_day=Decimal(50),
                ledger_path=Path(env["SERVICE_TEST_LEDGER"]),
            ),
            cache=None,
            max_concurrency=2_000,
        ),
        ProviderClients({"openai": mock}, "openai", offline=True),
        observer=telemetry,
    )
    system = FeatureSystem(
        telemetry, client, StructuredGenerator(client, load_registry(LIBRARY)), True, None
    )
    service = Service(
        ServiceConfig(
            title="test",
            version="1",
            keyring=ApiKeyring.parse(env.get("SERVICE_TEST_KEYS", "")),
            heartbeat_seconds=float(env.get("SERVICE_TEST_HEARTBEAT", "15")),
            max_body_bytes=int(env.get("SERVICE_TEST_MAX_BODY_BYTES", "10000")),
            max_concurrent_requests=int(env.get("SERVICE_TEST_MAX_REQUESTS", "2000")),
        ),
        system,
    )

    def state(_service: Service) -> APIRouter:
        router = APIRouter()

        @router.get("/test/state")
        async def show() -> dict[str, object]:
            budget = client.budget
            return {
                "cancelled": mock.cancelled,
                "requests": len(mock.requests),
                "spent": str(budget.spent),
                "reserved": str(budget.reserved),
                "calls": dict(telemetry.metrics.calls_by_outcome),
            }

        return router

    aliases = parse_model_aliases(env.get("SERVICE_TEST_MODELS", ""))

    def gateway(service: Service) -> APIRouter:
        return openai_router(service, default_model="gpt-5-mini", aliases=aliases)

    return create_service_app(service, routers=[state, gateway], default_model="gpt-5-mini")
