"""The OpenAI adapter against an OpenAI-compatible server on loopback (vLLM, Ollama, a
gateway): a real HTTP exchange over a socket, no key needed, the output limit under the name
the configuration says (never a guess from the base URL)."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip(
    "openai", reason="the openai extra is not installed: this project did not choose OpenAI"
)

from airuntime.model.factory import OutputLimitParameter, ProviderConfig, build_provider
from airuntime.types import LLMRequest, Message


@pytest.mark.parametrize(
    ("configured", "sent", "not_sent"),
    [
        # The default, the API's own name: what a gateway in front of OpenAI needs.
        (None, "max_completion_tokens", "max_tokens"),
        # For a server that knows only the older name (Ollama, LM Studio).
        ("max_tokens", "max_tokens", "max_completion_tokens"),
    ],
)
async def test_base_url_talks_to_a_local_compatible_server(
    configured: OutputLimitParameter | None, sent: str, not_sent: str
) -> None:
    received: list[dict[str, object]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        received.append(json.loads(await reader.readexactly(length)))
        body = json.dumps(
            {
                "id": "cmpl-local",
                "object": "chat.completion",
                "created": 0,
                "model": "llama-local",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hi from localhost"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            }
        ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = LLMRequest(model="llama-local", messages=(Message(role="user", content="Hello"),))
    config = ProviderConfig("openai", base_url=f"http://127.0.0.1:{port}/v1")
    if configured is not None:
        config = ProviderConfig(
            config.name, base_url=config.base_url, output_limit_parameter=configured
        )
    async with server:
        client = build_provider(config)
        response = await client.complete(request)
        await client.aclose()

    assert (response.provider, response.text) == ("openai", "Hi from localhost")
    assert response.usage.output_tokens == 4
    assert received[0]["model"] == "llama-local"
    assert received[0][sent] == 1024
    assert not_sent not in received[0]
