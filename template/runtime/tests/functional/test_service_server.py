"""The service under a real uvicorn on a free loopback port: JSON answers and auth over a
socket, SSE read as it arrives, a client that disconnects mid-stream (the upstream call is
cancelled and its reservation settled), a chunked body over the limit, and SIGTERM (requests
in flight finish, open streams end with a final event, the budget's lease goes back)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx

from airuntime.resilience.budget import DailyLedger
from airuntime.service.auth import new_api_key

pytestmark = pytest.mark.slow

SERVERS = Path(__file__).parent / "servers"
KEY, ENTRY = new_api_key("team-a")
AUTH = {"Authorization": f"Bearer {KEY}"}
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, ledger: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.ledger = ledger

    def state(self) -> dict[str, object]:
        reply = httpx.get(f"{self.url}/test/state", timeout=5)
        data: dict[str, object] = reply.json()
        return data


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(**env: str) -> Server:
        port = free_port()
        ledger = tmp_path / f"budget-{port}.sqlite3"
        environment = {
            **os.environ,
            "SERVICE_TEST_LEDGER": str(ledger),
            "SERVICE_TEST_KEYS": ENTRY,
            **env,
        }
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(SERVERS),
            "--factory",
            "service_server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--timeout-graceful-shutdown",
            "5",
            "--log-level",
            "warning",
        ]
        process = subprocess.Popen(command, env=environment, cwd=tmp_path)
        server = Server(process, port, ledger)
        started.append(server)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the server did not start")

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=10)


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """(event, data) as each event arrives; ("comment", {}) for a heartbeat."""
    event = ""
    async for line in lines:
        if line.startswith(":"):
            yield "comment", {}
        elif line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, json.loads(line.removeprefix("data: "))


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the condition never held")


async def test_json_answers_and_auth_over_a_socket(start_server: Callable[..., Server]) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        answered = await client.post("/v1/ask", json={"prompt": "hi"}, headers=AUTH)
        missing = await client.post("/v1/ask", json={"prompt": "hi"})
        unknown = await client.post(
            "/v1/ask", json={"prompt": "hi"}, headers={"X-API-Key": "ak_nope"}
        )

    assert answered.status_code == 200
    assert answered.json()["served_by"] == "mock"
    assert answered.headers["x-request-id"] == answered.json()["request_id"]
    assert (missing.status_code, unknown.status_code) == (401, 403)


async def test_a_chunked_body_over_the_limit_is_a_413(start_server: Callable[..., Server]) -> None:
    server = start_server()

    async def body() -> AsyncIterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(30):
            yield b"x" * 1_000
        yield b'"}'

    async with httpx.AsyncClient(base_url=server.url) as client:
        reply = await client.post(
            "/v1/ask", content=body(), headers={**AUTH, "Content-Type": "application/json"}
        )

    assert reply.status_code == 413
    assert reply.json()["error"]["type"] == "body_too_large"


async def test_sse_arrives_incrementally(start_server: Callable[..., Server]) -> None:
    server = start_server(SERVICE_TEST_CHUNK_INTERVAL="0.2")
    arrivals: list[tuple[str, float]] = []
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        client.stream("POST", "/v1/ask/stream", json={"prompt": "hello"}, headers=AUTH) as reply,
    ):
        assert reply.status_code == 200
        async for event, _data in sse_events(reply.aiter_lines()):
            arrivals.append((event, time.monotonic()))

    kinds = [kind for kind, _ in arrivals]
    assert kinds[-1] == "done"
    deltas = [moment for kind, moment in arrivals if kind == "delta"]
    assert len(deltas) >= 3
    # Each delta came when the model wrote it (0.2 s apart), not all at the end.
    assert deltas[-1] - deltas[0] >= 0.2 * (len(deltas) - 1) * 0.8


async def test_a_client_that_disconnects_cancels_the_upstream_and_settles(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(SERVICE_TEST_CHUNK_INTERVAL="0.5")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with client.stream(
            "POST", "/v1/ask/stream", json={"prompt": "tell me a long story"}, headers=AUTH
        ) as reply:
            request_id = reply.headers["x-request-id"]
            seen = 0
            async for event, _data in sse_events(reply.aiter_lines()):
                seen += event == "delta"
                if seen == 2:
                    break  # the client goes away mid-stream

        def settled() -> bool:
            state = server.state()
            cancelled = request_id in state["cancelled"]  # type: ignore[operator]
            return cancelled and Decimal(str(state["reserved"])) == 0

        wait_for(settled)
        state = server.state()
        metrics = (await client.get("/metrics")).text

    # The model was writing: the attempt is charged at its reservation, nothing stays held.
    assert Decimal(str(state["spent"])) > 0
    assert state["calls"] == {"cancelled": 1}
    assert 'llm_calls_total{outcome="cancelled"} 1.0' in metrics
    assert "budget_reserved_usd 0.0" in metrics
    assert "http_open_streams 0.0" in metrics


async def test_sigterm_drains_finishes_in_flight_work_and_ends_streams(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(SERVICE_TEST_CHUNK_INTERVAL="0.3", SERVICE_TEST_LATENCY_MS="800")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with client.stream(
            "POST", "/v1/ask/stream", json={"prompt": "tell me a long story"}, headers=AUTH
        ) as reply:
            events = sse_events(reply.aiter_lines())
            first = await anext(events)  # the stream is open and writing
            import asyncio

            in_flight = asyncio.create_task(
                client.post("/v1/ask", json={"prompt": "a slow one"}, headers=AUTH)
            )
            await asyncio.sleep(0.2)  # the JSON request is waiting on its model (800 ms)
            server.process.send_signal(signal.SIGTERM)
            rest = [item async for item in events]
        answered = await in_flight

    assert first[0] == "delta"
    final_event, final = rest[-1]
    assert final_event == "done"
    assert final["finish_reason"] == "shutdown"
    assert answered.status_code == 200
    server.process.wait(timeout=15)
    # The lease of the per-day budget went back: the ledger holds exactly what was spent.
    ledger = DailyLedger(server.ledger)
    try:
        spent_today = ledger.spent_today()
    finally:
        ledger.close()
    assert spent_today == Decimal(answered.json()["cost_usd"]) + Decimal(str(final["cost_usd"]))


def test_the_openapi_document_is_true_of_every_route(start_server: Callable[..., Server]) -> None:
    """schemathesis generates requests from /openapi.json (valid ones and broken ones) and
    checks every answer against it: documented status codes, content types and schemas, no
    5xx, auth enforced. `positive_data_acceptance` is left out: a schema-valid body can still
    be refused on purpose (a model with no price, a blank prompt), with a documented 422.
    The body limit is the default one: schemathesis does not count a 413 as the refusal of a
    broken body, and its broken chat requests are often over the other tests' small limit."""
    server = start_server(SERVICE_TEST_MAX_BODY_BYTES="1000000")
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(cli),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {KEY}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4_000:]
    # /healthz, /readyz, /metrics, /v1/ask, /v1/ask/stream, /test/state, and the gateway's
    # /v1/chat/completions, /v1/models and /v1/models/{model}
    assert "9 selected" in result.stdout.lower() or "Selected: 9/9" in result.stdout


async def test_the_openai_sdk_talks_to_the_gateway_over_a_socket(
    start_server: Callable[..., Server],
) -> None:
    """The real SDK over a real socket: a completion, a stream read as it arrives (usage in
    its last chunk), the model list, and an error raised as the SDK's own class."""
    openai = pytest.importorskip("openai", reason="the openai extra is not installed")
    server = start_server(
        SERVICE_TEST_MODELS="fast=openai:gpt-5-nano", SERVICE_TEST_CHUNK_INTERVAL="0.01"
    )
    sdk = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    async with sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="default", messages=[{"role": "user", "content": "hello there"}]
        )
        stream = await sdk.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "hello there"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        listed = await sdk.models.list()
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.create(
                model="slow", messages=[{"role": "user", "content": "hi"}]
            )
        with pytest.raises(openai.PermissionDeniedError):
            await sdk.with_options(api_key="ak_unknown").models.list()

    completion = raw.parse()
    assert completion.choices[0].message.content == "Mock answer to: hello there"
    assert raw.headers["x-served-by"] == "mock"
    assert raw.headers["x-attempts"] == "1"
    assert Decimal(raw.headers["x-cost-usd"]) > 0
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == completion.choices[0].message.content
    assert {chunk.model for chunk in chunks} == {"gpt-5-nano"}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens
    assert [model.id for model in listed.data] == ["fast", "default", "gpt-5-mini"]
    state = server.state()
    assert state["requests"] == 2
    assert Decimal(str(state["reserved"])) == 0
