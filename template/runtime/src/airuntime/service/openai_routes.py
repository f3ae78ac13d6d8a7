"""The OpenAI-compatible gateway: `POST /v1/chat/completions` and `GET /v1/models` on the
service, so any OpenAI SDK or tool gets the resilient stack by changing its base URL.

Every request goes the way `/v1/ask` goes: the service's API key (`Authorization: Bearer`,
as the SDKs send it), its per-key rate and spend, the concurrency limit, then the resilient
client on the chain the requested model names (fallbacks, breakers, limits, budget, cache).
Errors come back as OpenAI error objects with the status the SDKs map to their exception
classes; the response headers say who answered, after how many attempts, at what cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from airuntime.observability.events import ValidationFailure
from airuntime.resilience.chain import CallState, ChainResult, failure_outcome, result_outcome
from airuntime.resilience.client import ResilientClient, ResilientStream
from airuntime.service.errors import ServiceError
from airuntime.service.openai_compat import (
    ChatCompletion,
    ChatCompletionRequest,
    ErrorResponse,
    ModelCard,
    ModelList,
    OpenAIError,
    Shape,
    answer_shape,
    chunk_body,
    completion_body,
    error_body,
    finish_reason,
    to_llm_request,
)
from airuntime.service.service import Service, Ticket, json_response
from airuntime.service.sse import (
    DONE,
    HEADERS,
    HEARTBEAT,
    MEDIA_TYPE,
    Signal,
    StreamReader,
    sse_data,
)
from airuntime.types import Chunk, LLMRequest, ModelTarget

DEFAULT_MODEL = "default"

OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "Invalid or unsupported parameter, or an unreadable body (`param` names it)"),
        (401, "No API key (send it as Authorization: Bearer)"),
        (403, "Unknown API key"),
        (404, "Unknown model (`code`: model_not_found; GET /v1/models lists them)"),
        (413, "Body too large"),
        (422, "Input refused by the guardrails, or by the model (context length, filter)"),
        (429, "A rate limit, spend ceiling, budget or the concurrency limit (see Retry-After)"),
        (500, "Internal error"),
        (502, "The model's answer was unusable (not the JSON asked for) or refused upstream"),
        (503, "Every model provider is unavailable (see Retry-After)"),
        (504, "Request timeout"),
    )
}


@dataclass(frozen=True, slots=True)
class ModelCatalog:
    """The model names the gateway serves, each with its target chain."""

    chains: Mapping[str, tuple[ModelTarget, ...]]
    created: int

    @classmethod
    def build(
        cls,
        default: Sequence[ModelTarget],
        aliases: Mapping[str, Sequence[ModelTarget]] | None = None,
    ) -> ModelCatalog:
        """`aliases` (SERVICE_MODELS), and `default`: its entry there, or else the project's
        default chain; `default`'s primary model name is served as `default` too."""
        chains = {name: tuple(chain) for name, chain in (aliases or {}).items()}
        chains.setdefault(DEFAULT_MODEL, tuple(default))
        chains.setdefault(chains[DEFAULT_MODEL][0].model, chains[DEFAULT_MODEL])
        return cls(chains, int(time.time()))

    def chain(self, name: str) -> tuple[ModelTarget, ...]:
        found = self.chains.get(name)
        if found is None:
            raise OpenAIError(
                404,
                "model_not_found",
                f"The model '{name[:128]}' is not served here: GET /v1/models lists the "
                "models this gateway serves.",
                param="model",
            )
        return found

    def card(self, name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": self.created,
            "owned_by": self.chain(name)[0].provider,
        }

    def listing(self) -> dict[str, Any]:
        return {"object": "list", "data": [self.card(name) for name in self.chains]}


class OpenAIRoute(APIRoute):
    """A route whose own refusals (an invalid body, a body too large) are OpenAI error
    objects too, not the service's `{"error": {"type": ...}}` answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                return openai_response(invalid_request(error))
            except HTTPException as error:
                refused = ServiceError(error.status_code, "invalid_request", str(error.detail))
                return openai_response(refused)

        return route


def invalid_request(error: RequestValidationError) -> OpenAIError:
    """The first problem of an invalid body, as OpenAI words it (a 400 naming the param)."""
    problems = error.errors()
    first = problems[0] if problems else {}
    kind = str(first.get("type", ""))
    param = _param([part for part in first.get("loc", ()) if part != "body"])
    if kind == "json_invalid" or not param:
        return OpenAIError(
            400,
            "invalid_json",
            "We could not parse the JSON body of your request: send a JSON object.",
        )
    if kind == "extra_forbidden":
        return OpenAIError(
            400,
            "unknown_parameter",
            f"Unrecognized request argument supplied: {param}.",
            param=param,
        )
    if kind == "missing":
        return OpenAIError(
            400,
            "missing_required_parameter",
            f"Missing required parameter: '{param}'.",
            param=param,
        )
    message = " ".join(str(first.get("msg", "invalid")).split())
    return OpenAIError(400, "invalid_value", f"Invalid '{param}': {message}.", param=param)


# What pydantic puts in a location for the member of a union that failed (`str`,
# `list[ContentPart]`): not a parameter's name.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list"})


def _param(location: Sequence[object]) -> str:
    """`messages.0.content` as OpenAI names it: `messages[0].content`."""
    text = ""
    for part in location:
        if isinstance(part, str) and (part in _TYPE_TAGS or "[" in part):
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def openai_response(error: ServiceError, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(error.status, error_body(error), {**error.headers(), **(headers or {})})


def openai_router(
    service: Service,
    *,
    default_model: str,
    aliases: Mapping[str, Sequence[ModelTarget]] | None = None,
) -> APIRouter:
    """The gateway's routes: `default` (and its primary's model name) is `default_model`'s
    chain on the default provider with the fallbacks, unless `aliases` names it."""
    client = service.system.client
    catalog = ModelCatalog.build(client.chain_for(default_model), aliases)
    gateway = _Gateway(service, client, catalog)
    router = APIRouter(tags=["openai"], route_class=OpenAIRoute)

    @router.post(
        "/v1/chat/completions",
        summary="OpenAI Chat Completions, through the resilient client",
        response_model=None,  # documented below, for both content types
        responses={
            200: {
                "model": ChatCompletion,
                "content": {MEDIA_TYPE: {}},
                "description": "The answer; with stream: true, chat.completion.chunk events "
                "ending with data: [DONE]",
            },
            **OPENAI_ERROR_RESPONSES,
        },
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        """Headers: x-request-id, x-served-by, x-model, x-attempts, x-fallback-index,
        x-cache-hit and (without stream) x-cost-usd."""
        return await gateway.chat(body, request)

    @router.get("/v1/models", response_model=ModelList, responses=OPENAI_ERROR_RESPONSES)
    async def models(request: Request) -> Response:
        """The model names served here (SERVICE_MODELS, and `default`)."""
        try:
            gateway.authenticate(request)
        except ServiceError as error:
            return openai_response(error)
        return json_response(200, catalog.listing())

    @router.get("/v1/models/{model}", response_model=ModelCard, responses=OPENAI_ERROR_RESPONSES)
    async def model(model: str, request: Request) -> Response:
        """One model name, or a 404."""
        try:
            gateway.authenticate(request)
            return json_response(200, catalog.card(model))
        except ServiceError as error:
            return openai_response(error)

    return router


class _Gateway:
    def __init__(self, service: Service, client: ResilientClient, catalog: ModelCatalog) -> None:
        self.service = service
        self.client = client
        self.catalog = catalog

    def authenticate(self, request: Request) -> None:
        keyring = self.service.config.keyring
        if keyring:
            headers = request.headers
            request.state.api_key = keyring.authenticate(
                headers.get("authorization"), headers.get("x-api-key")
            )

    def error(self, error: BaseException) -> Response:
        """The OpenAI error object for `error` (the limits' own refusals were counted when
        they were raised; a bug is logged and is a 500)."""
        mapped = error if isinstance(error, ServiceError) else self.service.account_error(error)
        return openai_response(mapped)

    async def chat(self, body: ChatCompletionRequest, request: Request) -> Response:
        try:
            ticket = self.service.admit(request)
        except ServiceError as error:
            return openai_response(error)
        try:
            chain = self.catalog.chain(body.model)
            shape = answer_shape(body.response_format)
            llm = to_llm_request(self.service.system, body, chain, shape)
        except Exception as error:  # noqa: BLE001 - every refusal becomes an answer
            ticket.close(Decimal(0))
            return self.error(error)
        if body.stream:
            return await self.stream(body, llm, chain, shape, ticket)
        return await self.complete(llm, chain, shape, ticket)

    # -- a whole answer ---------------------------------------------------------------------

    async def complete(
        self, llm: LLMRequest, chain: tuple[ModelTarget, ...], shape: Shape, ticket: Ticket
    ) -> Response:
        """The answer names the model that answered (a fallback's when one did)."""
        client = self.client
        call = client.begin_call(llm)
        try:
            async with asyncio.timeout(self.service.config.request_timeout_seconds):
                result = await self.run(llm, chain, shape, call)
        except Exception as error:  # noqa: BLE001 - every failure becomes an answer
            client.finish_call(call, failure_outcome(error), error)
            return self.error(error)
        except BaseException as error:  # the client went away
            client.finish_call(call, "cancelled", error)
            raise
        finally:
            ticket.close(call.cost)  # what the call spent, answered or not
        client.finish_call(call, result_outcome(result))
        response = result.response
        answer = completion_body(
            f"chatcmpl-{llm.request_id}",
            int(time.time()),
            result.target.model,
            response.text,
            response.finish_reason,
            call.usage,
        )
        headers = _headers(call, cache_hit=result.cache_hit)
        headers["x-cost-usd"] = str(call.cost)
        return json_response(200, answer, headers)

    async def run(
        self, llm: LLMRequest, chain: tuple[ModelTarget, ...], shape: Shape, call: CallState
    ) -> ChainResult:
        """The answer from the chain; a JSON answer is checked before it is cached, so a bad
        one is neither served again nor counted as good."""
        client = self.client
        if not shape.checked:
            return await client.run(llm, targets=chain, call=call)
        cached = await client.lookup(llm, targets=chain)
        if cached is not None and shape.problem(cached.response.text) is None:
            call.target, call.fallback_index = cached.target, cached.fallback_index
            call.served_by = cached.served_by
            return cached
        result = await client.run(llm, targets=chain, use_cache=False, call=call)
        problem = shape.problem(result.response.text)
        if problem is not None:
            client.report_validation_failure(
                ValidationFailure(
                    request_id=call.request_id,
                    prompt=None,
                    target=result.target,
                    repair_attempt=0,
                    errors=(problem,),
                    raw_text=result.response.text,
                )
            )
            raise OpenAIError(
                502,
                "invalid_output",
                f"the model's answer is not what response_format asked for: {problem}.",
                param="response_format",
            )
        await client.remember(llm, None, result, targets=chain)
        return result

    # -- a stream -----------------------------------------------------------------------------

    async def stream(
        self,
        body: ChatCompletionRequest,
        llm: LLMRequest,
        chain: tuple[ModelTarget, ...],
        shape: Shape,
        ticket: Ticket,
    ) -> Response:
        stream = self.client.stream(llm, targets=chain)
        reader = StreamReader(stream, self.service.drain.event)
        try:
            first = await reader.next(self.service.config.heartbeat_seconds)
        except Exception as error:  # noqa: BLE001 - before the first chunk: a status
            ticket.close(stream.call.cost)
            return self.error(error)
        with_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _Chunks(self, stream, reader, ticket, shape, body.model, with_usage)
        headers = {**HEADERS, **_headers(stream.call, cache_hit=False)}
        return StreamingResponse(chunks.events(first), media_type=MEDIA_TYPE, headers=headers)


class _Chunks:
    """The SSE body of a streamed completion, in OpenAI's framing: `data:` lines of
    chat.completion.chunk, the finish reason, the usage chunk when asked, `data: [DONE]`."""

    def __init__(
        self,
        gateway: _Gateway,
        stream: ResilientStream,
        reader: StreamReader[Chunk],
        ticket: Ticket,
        shape: Shape,
        requested: str,
        with_usage: bool,
    ) -> None:
        self.gateway = gateway
        self.stream = stream
        self.reader = reader
        self.ticket = ticket
        self.shape = shape
        self.requested = requested
        self.with_usage = with_usage
        self.id = f"chatcmpl-{stream.call.request_id}"
        self.created = int(time.time())

    @property
    def model(self) -> str:
        target = self.stream.call.target
        return self.requested if target is None else target.model

    def chunk(self, delta: Mapping[str, Any] | None, reason: str | None = None) -> bytes:
        body = chunk_body(
            self.id, self.created, self.model, delta, reason, with_usage=self.with_usage
        )
        return sse_data(body)

    async def events(self, first: Chunk | Signal) -> AsyncIterator[bytes]:
        service = self.gateway.service
        heartbeat = service.config.heartbeat_seconds
        texts: list[str] | None = [] if self.shape.checked else None
        reason: str | None = None
        started = False
        item = first
        service.metrics.open_streams.inc()
        try:
            while True:
                if item is Signal.IDLE:
                    yield HEARTBEAT
                elif item is Signal.STOPPED:
                    await self.reader.stop()  # settled before the client is told
                    yield sse_data(error_body(SHUTDOWN))
                    return
                elif item is Signal.END:
                    for event in self.ending(reason, texts):
                        yield event
                    return
                else:
                    assert isinstance(item, Chunk)  # noqa: S101 - narrows the signals away
                    if item.finish_reason is not None:
                        reason = item.finish_reason
                    if item.text or not started:
                        delta: dict[str, str] = {"content": item.text}
                        if not started:
                            delta["role"] = "assistant"
                            started = True
                        if texts is not None:
                            texts.append(item.text)
                        yield self.chunk(delta)
                try:
                    item = await self.reader.next(heartbeat)
                except Exception as error:  # noqa: BLE001 - after the first chunk: an event
                    yield sse_data(error_body(service.account_error(error)))
                    return
        finally:
            self.reader.abandon()  # the client went away (or we are done): settles in flight
            service.metrics.open_streams.dec()
            self.ticket.close(self.stream.call.cost)

    def ending(self, reason: str | None, texts: list[str] | None) -> list[bytes]:
        if texts is not None:
            problem = self.gateway_problem("".join(texts))
            if problem is not None:
                return [sse_data(error_body(problem))]
        events = [self.chunk({}, finish_reason(reason))]
        if self.with_usage:
            usage = chunk_body(
                self.id,
                self.created,
                self.model,
                None,
                usage=self.stream.call.usage,
                with_usage=True,
            )
            events.append(sse_data(usage))
        events.append(DONE)
        return events

    def gateway_problem(self, text: str) -> OpenAIError | None:
        problem = self.shape.problem(text)
        if problem is None:
            return None
        return OpenAIError(
            502,
            "invalid_output",
            f"the model's answer is not what response_format asked for: {problem}.",
            param="response_format",
        )


SHUTDOWN = ServiceError(
    503, "shutting_down", "the server is shutting down: the answer was cut short; send it again."
)


def _headers(call: CallState, *, cache_hit: bool) -> dict[str, str]:
    """What a gateway's user wants to see of the call (x-request-id comes from the
    middleware): who answered, the chain position, the attempts."""
    headers = {"x-attempts": str(call.attempts), "x-cache-hit": "true" if cache_hit else "false"}
    if call.target is not None:
        headers["x-model"] = str(call.target)
        headers["x-served-by"] = call.served_by or call.target.provider
        headers["x-fallback-index"] = str(call.fallback_index)
    return headers
