"""The model routes: `/v1/ask` and `/v1/ask/stream` (a prompt through the resilient client),
and `add_feature_route` for a project's features (their input model as the body, their output
inside a `FeatureResponse`)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from airuntime.features import FeatureOutput, FeatureResult, FeatureSystem
from airuntime.resilience.chain import failure_outcome, result_outcome
from airuntime.resilience.client import ResilientStream
from airuntime.service.errors import ServiceError
from airuntime.service.service import Service, Ticket, json_response
from airuntime.service.sse import HEADERS, HEARTBEAT, MEDIA_TYPE, Signal, StreamReader, sse_event
from airuntime.types import Chunk, LLMRequest, Message

OutputT = TypeVar("OutputT", bound=FeatureOutput)
InputT = TypeVar("InputT", bound=BaseModel)


class ErrorDetail(BaseModel):
    type: str
    message: str
    request_id: str | None = None
    fields: list[dict[str, str]] | None = None
    code: str | None = None
    param: str | None = None


class ErrorBody(BaseModel):
    """Every error answer: its type (stable), one line, and the request id."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Unreadable body (not UTF-8 JSON)"),
        (401, "No API key"),
        (403, "Unknown API key"),
        (413, "Body too large"),
        (422, "Invalid body or input refused"),
        (429, "Refused by a rate limit, a budget or the concurrency limit (see Retry-After)"),
        (500, "Internal error"),
        (502, "The model's answer was unusable"),
        (503, "Every model provider is unavailable (see Retry-After)"),
        (504, "Request timeout"),
    )
}


class AskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="The user message.")
    system: str | None = Field(default=None, description="A system message to send first.")
    model: str | None = Field(default=None, min_length=1, description="Model name.")


class UsageBody(BaseModel):
    input_tokens: int
    output_tokens: int


class AskAnswer(BaseModel):
    text: str
    finish_reason: str
    model: str = Field(description="provider/model that answered.")
    served_by: str = Field(description="The client that really answered (mock offline).")
    usage: UsageBody
    cost_usd: str
    attempts: int
    fallback_index: int
    cache_hit: bool
    request_id: str


class FeatureResponse(BaseModel, Generic[OutputT]):
    result: OutputT
    request_id: str
    model: str | None = Field(description="provider/model that answered; null when degraded.")
    served_by: str | None = Field(description="The client that really answered.")
    degraded: bool
    needs_review: bool
    review_reason: str | None
    attempts: int
    repairs: int
    fallback_index: int | None
    cache_hit: bool
    cost_usd: str


def ask_request(service: Service, body: AskBody, default_model: str) -> LLMRequest:
    """The request the CLI's `ask` would send, through the input guardrails."""
    system = service.system
    messages = [Message(role="user", content=system.clean(body.prompt, (), what="prompt"))]
    if body.system is not None:
        messages.insert(
            0, Message(role="system", content=system.clean(body.system, (), what="system"))
        )
    return LLMRequest(model=body.model or default_model, messages=tuple(messages))


def ask_router(service: Service, *, default_model: str) -> APIRouter:
    router = APIRouter(tags=["ask"])

    @router.post("/v1/ask", response_model=AskAnswer, responses=ERROR_RESPONSES)
    async def ask(body: AskBody, request: Request) -> Response:
        """A prompt through the resilient client (retries, fallbacks, budgets)."""

        async def run() -> tuple[Response, Decimal]:
            return await _ask(service, ask_request(service, body, default_model))

        return await service.answer(request, run)

    @router.post(
        "/v1/ask/stream",
        responses={
            **ERROR_RESPONSES,
            200: {"content": {MEDIA_TYPE: {}}, "description": "Server-Sent Events"},
        },
    )
    async def ask_stream(body: AskBody, request: Request) -> Response:
        """Server-Sent Events: `delta` per text piece, comment heartbeats while waiting, then
        `done` (usage, cost, served_by, finish reason) or `error`."""
        ticket = service.admit(request)
        try:
            stream = service.system.client.stream(ask_request(service, body, default_model))
            reader = StreamReader(stream, service.drain.event)
            first = await reader.next(service.config.heartbeat_seconds)
        except Exception as error:  # noqa: BLE001 - every failure becomes an answer
            ticket.close(Decimal(0))
            return service.error_response(request, error)
        events = _events(service, stream, reader, first, ticket, request.state.request_id)
        return StreamingResponse(events, media_type=MEDIA_TYPE, headers=HEADERS)

    return router


async def _ask(service: Service, request: LLMRequest) -> tuple[Response, Decimal]:
    client = service.system.client
    call = client.begin_call(request)
    try:
        result = await client.run(request, call=call)
    except BaseException as error:
        client.finish_call(
            call, failure_outcome(error) if isinstance(error, Exception) else "cancelled", error
        )
        raise
    client.finish_call(call, result_outcome(result))
    response = result.response
    body = {
        "text": response.text,
        "finish_reason": response.finish_reason,
        "model": str(result.target),
        "served_by": result.served_by,
        "usage": {
            "input_tokens": call.usage.input_tokens,
            "output_tokens": call.usage.output_tokens,
        },
        "cost_usd": str(call.cost),
        "attempts": call.attempts,
        "fallback_index": result.fallback_index,
        "cache_hit": result.cache_hit,
        "request_id": request.request_id,
    }
    return json_response(200, body), call.cost


async def _events(
    service: Service,
    stream: ResilientStream,
    reader: StreamReader[Chunk],
    first: Chunk | Signal,
    ticket: Ticket,
    request_id: str,
) -> AsyncIterator[bytes]:
    heartbeat = service.config.heartbeat_seconds
    item = first
    finish_reason: str | None = None
    service.metrics.open_streams.inc()
    try:
        while True:
            if item is Signal.IDLE:
                yield HEARTBEAT
            elif item is Signal.END or item is Signal.STOPPED:
                if item is Signal.STOPPED:  # settled first, so the final event has the cost
                    await reader.stop()
                    finish_reason = "shutdown"
                yield sse_event("done", _final(stream, finish_reason, request_id))
                return
            else:
                assert isinstance(item, Chunk)  # noqa: S101 - narrows the signals away
                if item.finish_reason is not None:
                    finish_reason = item.finish_reason
                if item.text:
                    yield sse_event("delta", {"text": item.text})
            try:
                item = await reader.next(heartbeat)
            except Exception as error:  # noqa: BLE001 - after the first delta: an event, not a cut
                mapped = service.map_error(error)
                yield sse_event("error", mapped.body(request_id)["error"])  # type: ignore[arg-type]
                return
    finally:
        reader.abandon()  # the client went away (or we are done): settles what is in flight
        service.metrics.open_streams.dec()
        ticket.close(stream.call.cost)


def _final(stream: ResilientStream, finish_reason: str | None, request_id: str) -> dict[str, Any]:
    call = stream.call
    target = call.target
    return {
        "finish_reason": finish_reason,
        "model": None if target is None else str(target),
        "served_by": None if target is None else call.served_by,
        "usage": {
            "input_tokens": call.usage.input_tokens,
            "output_tokens": call.usage.output_tokens,
        },
        "cost_usd": str(call.cost),
        "attempts": call.attempts,
        "request_id": request_id,
    }


def feature_body(result: FeatureResult[Any]) -> dict[str, Any]:
    """The answer and its provenance, as the runtime gives it (`served_by`: who really
    answered, "mock" when it stood in; None when degraded)."""
    generated = result.generated
    target = generated.target
    return {
        "result": generated.value.model_dump(mode="json"),
        "request_id": generated.request_id,
        "model": None if target is None else str(target),
        "served_by": generated.served_by,
        "degraded": generated.degraded,
        "needs_review": result.needs_review,
        "review_reason": result.review_reason,
        "attempts": generated.attempts,
        "repairs": generated.repairs,
        "fallback_index": generated.fallback_index,
        "cache_hit": generated.cache_hit,
        "cost_usd": str(generated.cost),
    }


def add_feature_route(
    router: APIRouter,
    service: Service,
    path: str,
    *,
    input_model: type[InputT],
    output_model: type[OutputT],
    run: Callable[[FeatureSystem, InputT], Awaitable[FeatureResult[OutputT]]],
    summary: str,
) -> None:
    """POST `path`: `input_model` as the body, `FeatureResponse[output_model]` as the answer
    (200, `degraded: true` when no model answered and the feature has a degraded answer)."""

    async def endpoint(body: Any, request: Request) -> Response:
        async def work() -> tuple[Response, Decimal]:
            result = await run(service.system, body)
            return json_response(200, feature_body(result)), result.generated.cost

        return await service.answer(request, work)

    # FastAPI reads the body's model from the signature: give it the feature's own.
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=input_model
            ),
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            ),
        ]
    )
    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        response_model=FeatureResponse[output_model],  # type: ignore[valid-type]
        responses=ERROR_RESPONSES,
        summary=summary,
    )


__all__ = ["ServiceError"]
