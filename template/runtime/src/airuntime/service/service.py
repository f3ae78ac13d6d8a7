"""The service's per-process state: the feature system and the limits every model route
passes before the model is called (auth, per-key rate, concurrency, per-key spend), and how
a request is turned into an answer or a mapped error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeVar

from fastapi import Request
from fastapi.responses import Response

from airuntime.errors import ConfigurationError
from airuntime.features import FeatureSystem
from airuntime.observability.logs import EventLog
from airuntime.service.auth import ApiKeyring
from airuntime.service.errors import ErrorPolicy, ServiceError
from airuntime.service.mapping import service_error_for
from airuntime.service.metrics import ModelStack, ServiceMetrics
from airuntime.service.quotas import AdmissionGate, KeyRateLimit, KeySpend, SpendHold
from airuntime.service.readiness import (
    Check,
    Readiness,
    breakers_check,
    budget_check,
    draining_check,
)
from airuntime.service.shutdown import Drain

T = TypeVar("T")
OPEN_ACCESS = "anonymous"  # the key name of requests to a service without keys (development)
SERVICE_LOGGER = "airuntime.service"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# The error types that are the service's own limits refusing (counted in http_refusals).
REFUSALS = frozenset({"budget_exceeded", "rate_limited", "overloaded", "key_spend_exceeded"})


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """What the project's settings say about the service."""

    title: str
    version: str
    environment: Literal["development", "production"] = "development"
    keyring: ApiKeyring = field(default_factory=lambda: ApiKeyring(()))
    # The keys of the admin routes (SERVICE_ADMIN_KEYS); none: there are no admin routes.
    admin_keyring: ApiKeyring = field(
        default_factory=lambda: ApiKeyring((), setting="SERVICE_ADMIN_KEYS")
    )
    rate_limit_per_minute: int | None = None
    key_spend_ceiling_usd: Decimal | None = None
    # The most one call may spend (the per-call budget ceiling): what a call holds of its
    # key's spend ceiling while it runs.
    per_call_ceiling_usd: Decimal | None = None
    max_body_bytes: int = 1_000_000
    request_timeout_seconds: float = 60.0
    max_concurrent_requests: int = 100
    heartbeat_seconds: float = 15.0
    error_policy: ErrorPolicy = field(default_factory=ErrorPolicy)


def check_exposure(config: ServiceConfig, host: str) -> str | None:
    """Refuse to serve without keys in production, or open beyond loopback; returns the
    warning to log when serving open on loopback (development)."""
    if config.keyring:
        return None
    if config.environment == "production":
        raise ConfigurationError(
            "no API keys are configured (SERVICE_API_KEYS), and in production the service "
            "refuses to run open: make a key with `api-key NAME` and set its entry."
        )
    if host not in LOOPBACK:
        raise ConfigurationError(
            f"no API keys are configured (SERVICE_API_KEYS), so the service runs open, and it "
            f"does so only on loopback: set HOST=127.0.0.1 or configure keys (not {host})."
        )
    return "no API keys are configured: the service is open to anyone on this machine."


class Service:
    def __init__(
        self,
        config: ServiceConfig,
        system: FeatureSystem,
        *,
        checks: Sequence[tuple[str, Check]] = (),
    ) -> None:
        self.config = config
        self.system = system
        client = system.client
        self.spend = KeySpend(config.key_spend_ceiling_usd, hold=config.per_call_ceiling_usd)
        self.rate = (
            KeyRateLimit(config.rate_limit_per_minute) if config.rate_limit_per_minute else None
        )
        self.gate = AdmissionGate(config.max_concurrent_requests)
        self.drain = Drain()
        self.metrics = ServiceMetrics(
            ModelStack(
                system.telemetry.metrics, client.breakers, client.budget, client.shared_errors
            ),
            self.spend,
            switch=system.generator.switch,
        )
        self.readiness = Readiness(
            (
                *checks,
                ("breakers", breakers_check(client.breakers)),
                ("budget", budget_check(client.budget)),
                ("shutdown", draining_check(lambda: self.drain.draining)),
            )
        )
        self.log = EventLog(SERVICE_LOGGER)

    # -- admission ------------------------------------------------------------------------

    def admit(self, request: Request) -> Ticket:
        """Who is calling and whether they may, before anything is spent: 401/403, then 429s."""
        headers = request.headers
        if self.config.keyring:
            key = self.config.keyring.authenticate(
                headers.get("authorization"), headers.get("x-api-key")
            )
        else:
            key = OPEN_ACCESS
        request.state.api_key = key
        try:
            if self.rate is not None:
                self.rate.admit(key)
            self.gate.enter()
        except ServiceError as error:
            self.metrics.refusals.labels(error.type).inc()
            raise
        try:
            hold = self.spend.reserve(key)
        except ServiceError as error:
            self.gate.leave()
            self.metrics.refusals.labels(error.type).inc()
            raise
        return Ticket(self, hold)

    # -- answers ------------------------------------------------------------------------------

    async def answer(
        self, request: Request, run: Callable[[], Awaitable[tuple[Response, Decimal]]]
    ) -> Response:
        """Admit the request, run it within the request timeout, map what goes wrong."""
        ticket = self.admit(request)
        cost = Decimal(0)
        try:
            async with asyncio.timeout(self.config.request_timeout_seconds):
                response, cost = await run()
        except Exception as error:  # noqa: BLE001 - every failure becomes an answer
            return self.error_response(request, error)
        finally:
            ticket.close(cost)
        return response

    def error_response(self, request: Request, error: BaseException) -> Response:
        """The JSON answer for an error: mapped when known; a logged 500 for a bug."""
        mapped = self.account_error(error)
        return json_response(
            mapped.status,
            mapped.body(getattr(request.state, "request_id", None)),
            mapped.headers(),
        )

    def account_error(self, error: BaseException) -> ServiceError:
        """The mapped error, counted in the metrics when it is a refusal of the limits."""
        mapped = self.map_error(error)
        if mapped.type in REFUSALS:
            self.metrics.refusals.labels(mapped.type).inc()
        return mapped

    def map_error(self, error: BaseException) -> ServiceError:
        mapped = service_error_for(error, self.config.error_policy)
        if mapped is None:
            sink = self.log.at(logging.ERROR)
            if sink is not None:
                sink.emit(
                    logging.ERROR,
                    "http.unhandled_error",
                    {"error_type": type(error).__name__, "error": str(error)},
                )
            logging.getLogger(SERVICE_LOGGER).error("unhandled error", exc_info=error)
            return ServiceError(
                500, "internal_error", "the service failed: quote the request id to its operators."
            )
        return mapped

    async def aclose(self) -> None:
        await self.system.aclose()


class Ticket:
    """A request's hold on the limits: released, with the spend recorded, when it ends."""

    __slots__ = ("_closed", "_hold", "_service")

    def __init__(self, service: Service, hold: SpendHold) -> None:
        self._service = service
        self._hold = hold
        self._closed = False

    def close(self, cost: Decimal) -> None:
        if self._closed:
            return
        self._closed = True
        self._service.gate.leave()
        self._service.spend.settle(self._hold, cost)


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    import orjson

    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )
