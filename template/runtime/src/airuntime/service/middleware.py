"""The ASGI middleware around every request: its id (the caller's X-Request-ID when usable,
else a new one; returned on the response and carried by every model call made for it), the
body size limit (413), an OpenTelemetry server span that parents the runtime's gen_ai spans,
the HTTP metrics and one JSON access log line.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: that one copies every response body
through a queue, which costs more than the rest of a fast request.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from starlette.exceptions import HTTPException

from airuntime.observability.logs import EventLog
from airuntime.service.errors import ServiceError
from airuntime.service.metrics import ServiceMetrics
from airuntime.types import CURRENT_REQUEST_ID, new_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ACCESS_LOGGER = "airuntime.http"
ACCESS_EVENT = "http.request"
REQUEST_ID_HEADER = b"x-request-id"
SERVER_TIMING_HEADER = b"server-timing"
# An id a caller sends is used only when it is short and plain (it goes into logs).
_USABLE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


class BodyTooLargeError(HTTPException):
    """A body that grew past the limit while it was read (a chunked one has no length). An
    HTTPException, so FastAPI's body reading lets it through to the error handlers."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit:,} bytes: send less.")


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._log = EventLog(ACCESS_LOGGER)
        self._tracer = trace.get_tracer("airuntime.service", tracer_provider=tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = CURRENT_REQUEST_ID.set(request_id)
        started = time.perf_counter()
        exchange = _Exchange(send, request_id.encode(), started)
        try:
            if _declared_length(scope) > self.max_body_bytes:
                await self._too_large(exchange, request_id)
            else:
                await self._serve(scope, receive, exchange, request_id)
        finally:
            CURRENT_REQUEST_ID.reset(token)
            self._account(scope, exchange.status, time.perf_counter() - started, request_id)

    async def _serve(
        self, scope: Scope, receive: Receive, exchange: _Exchange, request_id: str
    ) -> None:
        limit = self.max_body_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLargeError(limit)
            return message

        name = f"{scope['method']} {scope['path']}"
        with self._tracer.start_as_current_span(name, kind=SpanKind.SERVER) as span:
            self.metrics.in_flight.inc()
            try:
                await self.app(scope, limited_receive, exchange.send)
            except BodyTooLargeError:
                if exchange.started:
                    raise
                await self._too_large(exchange, request_id)
            finally:
                self.metrics.in_flight.dec()
                if span.is_recording():
                    span.set_attribute("http.request.method", scope["method"])
                    span.set_attribute("http.response.status_code", exchange.status)
                    span.set_attribute("request_id", request_id)
                    if exchange.status >= 500:
                        span.set_status(Status(StatusCode.ERROR))

    async def _too_large(self, exchange: _Exchange, request_id: str) -> None:
        error = ServiceError(
            413,
            "body_too_large",
            f"the request body is over {self.max_body_bytes:,} bytes: send less.",
        )
        await send_json(exchange.send, error.status, error.body(request_id))

    def _account(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        self.metrics.observe(path, scope["method"], status, seconds)
        level = logging.INFO if status < 500 else logging.ERROR
        sink = self._log.at(level)
        if sink is not None:
            sink.emit(
                level,
                ACCESS_EVENT,
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "api_key": scope.get("state", {}).get("api_key"),
                },
            )


class _Exchange:
    """The response as it goes out: its status, and the request id added to its headers."""

    __slots__ = ("_began", "_request_id", "_send", "started", "status")

    def __init__(self, send: Send, request_id: bytes, began: float) -> None:
        self._send = send
        self._request_id = request_id
        self._began = began
        self.started = False
        self.status = 500  # until a response starts: a request that dies without one

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            # Server-Timing: the time in this server until the answer starts (browsers' dev
            # tools show it; the service benchmark reads it).
            took = f"app;dur={(time.perf_counter() - self._began) * 1000:.3f}".encode()
            message["headers"] = [
                *message.get("headers", ()),
                (REQUEST_ID_HEADER, self._request_id),
                (SERVER_TIMING_HEADER, took),
            ]
        await self._send(message)


async def send_json(
    send: Send, status: int, body: object, headers: dict[str, str] | None = None
) -> None:
    payload = orjson.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _USABLE_ID.match(value):
                return str(value.decode())
            break
    return new_request_id()


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
