"""The OpenAI adapter's `embed` drives the real SDK against a mocked HTTP transport (no
network), with bodies shaped as the Embeddings API documents them (object "list" of
"embedding" items with an index, the model, and usage in prompt_tokens)."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "openai", reason="the openai extra is not installed: this project did not choose OpenAI"
)

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2

from airuntime.errors import AuthenticationError, BadRequestError, RateLimitedError, ServerError
from airuntime.model.client import EmbeddingClient
from airuntime.model.providers.openai import OpenAIClient
from airuntime.types import EmbeddingRequest, Usage

Reply = Callable[[httpx2.Request], httpx2.Response]


class FakeEmbeddingsAPI:
    def __init__(self) -> None:
        self.sent: list[httpx2.Request] = []
        self.replies: list[Reply] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append(request)
        return self.replies.pop(0)(request)

    def respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.replies.append(lambda _: httpx2.Response(status, json=body, headers=headers))

    def body(self) -> dict[str, Any]:
        sent: dict[str, Any] = json.loads(self.sent[-1].content)
        return sent


def embeddings_body(vectors: list[list[float]], order: list[int] | None = None) -> dict[str, Any]:
    """The documented response of POST /v1/embeddings."""
    indexes = order if order is not None else list(range(len(vectors)))
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": vectors[index]}
            for index in indexes
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }


@pytest.fixture
def api() -> FakeEmbeddingsAPI:
    return FakeEmbeddingsAPI()


@pytest.fixture
async def client(api: FakeEmbeddingsAPI) -> AsyncIterator[OpenAIClient]:
    built = OpenAIClient(
        api_key="sk-test",
        timeout_seconds=5,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(api.handle)),
    )
    yield built
    await built.aclose()


def request(*texts: str, dimensions: int | None = None) -> EmbeddingRequest:
    return EmbeddingRequest(
        model="text-embedding-3-small",
        texts=texts or ("The food was delicious", "and the waiter was kind"),
        dimensions=dimensions,
        request_id="req-1",
    )


async def test_the_adapter_is_an_embedding_client(client: OpenAIClient) -> None:
    assert isinstance(client, EmbeddingClient)


async def test_embed_sends_the_texts_and_maps_vectors_and_usage(
    api: FakeEmbeddingsAPI, client: OpenAIClient
) -> None:
    api.respond(200, embeddings_body([[0.1, -0.2, 0.3], [0.0, 0.5, -0.5]]))
    response = await client.embed(request(dimensions=3))
    sent = api.body()
    assert api.sent[-1].url.path == "/v1/embeddings"
    assert sent == {
        "model": "text-embedding-3-small",
        "input": ["The food was delicious", "and the waiter was kind"],
        "encoding_format": "float",
        "dimensions": 3,
    }
    assert api.sent[-1].headers["X-Client-Request-Id"] == "req-1"
    assert response.vectors == ((0.1, -0.2, 0.3), (0.0, 0.5, -0.5))
    assert response.usage == Usage(input_tokens=8)
    assert (response.provider, response.model, response.request_id) == (
        "openai",
        "text-embedding-3-small",
        "req-1",
    )


async def test_dimensions_are_left_out_unless_asked(
    api: FakeEmbeddingsAPI, client: OpenAIClient
) -> None:
    api.respond(200, embeddings_body([[1.0]]))
    await client.embed(request("one"))
    assert "dimensions" not in api.body()


async def test_items_are_put_back_in_the_order_of_their_index(
    api: FakeEmbeddingsAPI, client: OpenAIClient
) -> None:
    api.respond(200, embeddings_body([[1.0, 0.0], [0.0, 1.0]], order=[1, 0]))
    response = await client.embed(request("a", "b"))
    assert response.vectors == ((1.0, 0.0), (0.0, 1.0))


async def test_a_response_missing_an_embedding_is_a_server_error(
    api: FakeEmbeddingsAPI, client: OpenAIClient
) -> None:
    api.respond(200, embeddings_body([[1.0]]))
    with pytest.raises(ServerError, match="1 embeddings for 2 texts"):
        await client.embed(request("a", "b"))


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (
            429,
            {
                "error": {
                    "message": "Rate limit reached. Please try again in 2s.",
                    "type": "tokens",
                    "code": "rate_limit_exceeded",
                }
            },
            RateLimitedError,
            True,
        ),
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            AuthenticationError,
            False,
        ),
        (
            400,
            {
                "error": {
                    "message": "'$.input' is invalid.",
                    "type": "invalid_request_error",
                    "code": None,
                }
            },
            BadRequestError,
            False,
        ),
        (
            500,
            {"error": {"message": "oops", "type": "server_error", "code": None}},
            ServerError,
            True,
        ),
    ],
)
async def test_errors_map_to_the_taxonomy_after_one_request(
    api: FakeEmbeddingsAPI,
    client: OpenAIClient,
    status: int,
    body: dict[str, Any],
    error: type[Exception],
    retryable: bool,
) -> None:
    api.respond(status, body)
    with pytest.raises(error) as raised:
        await client.embed(request("a"))
    assert getattr(raised.value, "retryable", None) is retryable
    assert len(api.sent) == 1  # SDK retries are off


async def test_a_rate_limit_carries_the_wait_it_names(
    api: FakeEmbeddingsAPI, client: OpenAIClient
) -> None:
    api.respond(
        429,
        {"error": {"message": "Please try again in 1.5s.", "type": "requests", "code": None}},
    )
    with pytest.raises(RateLimitedError) as raised:
        await client.embed(request("a"))
    assert raised.value.retry_after == 1.5
