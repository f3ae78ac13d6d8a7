"""The app factory: a FastAPI app with the service's middleware, its error answers, the
health, readiness and metrics routes, `/v1/ask` and `/v1/ask/stream`, and the project's own
routers (its features)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from opentelemetry.trace import TracerProvider
from starlette.exceptions import HTTPException
from starlette.routing import Match

from airuntime.service.admin import admin_router
from airuntime.service.errors import ServiceError
from airuntime.service.metrics import CONTENT_TYPE
from airuntime.service.middleware import ServiceMiddleware
from airuntime.service.routes import ask_router
from airuntime.service.service import SERVICE_LOGGER, Service, json_response
from airuntime.service.shutdown import drain_on_signals

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
HTTP_ERROR_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def create_service_app(
    service: Service,
    *,
    routers: Sequence[Callable[[Service], APIRouter]] = (),
    default_model: str,
    warning: str | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The service's app. `routers` build the project's routes from the service; `warning`
    is logged at start (serving open on loopback); the server spans go to `tracer_provider`
    (the global one by default), where they parent the runtime's gen_ai spans."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        undo = drain_on_signals(service.drain, asyncio.get_running_loop())
        if warning is not None:
            logging.getLogger(SERVICE_LOGGER).warning(warning)
        freeze_startup_objects()
        try:
            yield
        finally:
            undo()
            service.drain.begin()
            await service.aclose()  # gives the budget's lease back to the ledger

    app = FastAPI(
        title=service.config.title,
        version=service.config.version,
        lifespan=lifespan,
    )
    app.state.service = service
    _install_error_handlers(app)
    app.include_router(_system_router(service))
    app.include_router(ask_router(service, default_model=default_model))
    for build in routers:
        app.include_router(build(service))
    if service.config.admin_keyring:  # no admin keys: no admin routes (a 404)
        app.include_router(admin_router(service))
    _document_security(app, bool(service.config.keyring), bool(service.config.admin_keyring))
    app.add_middleware(
        ServiceMiddleware,
        metrics=service.metrics,
        max_body_bytes=service.config.max_body_bytes,
        tracer_provider=tracer_provider,
    )
    return app


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. Starlette's 405 names only the
    first route that matched the path, so a path served by two routes (GET and POST apart)
    would answer `Allow: GET` although POST is served there too. Each method is tried on the
    app's routes as the router itself would (included routers answer for theirs)."""
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def freeze_startup_objects() -> None:
    """Move everything alive once the app has started (modules, the app, its prompts, schemas
    and settings: hundreds of thousands of objects that live as long as the process) out of
    the garbage collector's reach. Otherwise every full collection walks them all while the
    event loop stands still: 60-90 ms pauses measured under 500 requests/s, which put every
    request in flight at that moment past the latency target. Requests' own garbage is still
    collected as before."""
    gc.collect()
    gc.freeze()


def _document_security(app: FastAPI, keys: bool, admin_keys: bool) -> None:
    """The API keys in the OpenAPI document: `Authorization: Bearer` or `X-API-Key` on every
    /v1 route (read by `Service.admit`, not by a dependency: nothing to run per request), and
    the admin keys, sent the same way, on the /admin routes."""
    if not keys and not admin_keys:
        return
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        for path, operations in schema.get("paths", {}).items():
            if (keys and path.startswith("/v1/")) or path.startswith("/admin/"):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _system_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "Not ready, with the reasons"}})
    async def readyz() -> Response:
        """Ready for traffic: settings, prompts and lock, breakers, budget, not shutting down."""
        ready, checks = service.readiness.report()
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        return json_response(200 if ready else 503, body)

    @router.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return router


def _install_error_handlers(app: FastAPI) -> None:
    async def invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)  # noqa: S101 - registered for it
        fields = [
            {
                "field": ".".join(str(part) for part in item.get("loc", ())),
                "problem": str(item.get("msg", "invalid")),
            }
            for item in error.errors()
        ]
        names = ", ".join(field["field"] for field in fields) or "the body"
        body = {
            "error": {
                "type": "invalid_request",
                "message": f"the request is not valid: check {names}.",
                "request_id": getattr(request.state, "request_id", None),
                "fields": fields,
            }
        }
        return json_response(422, body)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)  # noqa: S101 - registered for it
        body = {
            "error": {
                "type": HTTP_ERROR_TYPES.get(error.status_code, "http_error"),
                "message": str(error.detail),
                "request_id": getattr(request.state, "request_id", None),
            }
        }
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return json_response(error.status_code, body, headers)

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, ServiceError)  # noqa: S101 - registered for it
        body = error.body(getattr(request.state, "request_id", None))
        return json_response(error.status, body, error.headers())

    app.add_exception_handler(ServiceError, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
