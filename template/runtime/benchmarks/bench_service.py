"""Benchmarks of the HTTP service: `make bench-service` in a project with the service.

A real server (uvicorn, 2 workers, httptools and uvloop) on a free loopback port serves the
project's app on the offline mock; the load comes from this script run again as a separate
process (`--load ...`), over raw HTTP/1.1 keep-alive connections (an HTTP client library
would cost more than the server it measures). Every loop is bounded in count and in time.

- added latency at 500 requests/s (`/v1/ask`, then the OpenAI-compatible
  `/v1/chat/completions` with the request the openai SDK sends, headers and body, captured from
  the SDK itself; the mock answering in 0 ms and in 200 ms): the server's own time (its
  `Server-Timing` header, up to the answer's first byte) minus the upstream's, and the same seen
  from the client (loopback and the load generator included); open loop, latency counted from
  each request's scheduled time, p50 and p99. Target p99 <= 3 ms.
- maximum sustained requests/s of `/v1/classify` with a 0 ms upstream, closed loop on 64
  connections, no error allowed. Target >= 2,000 on 2 cores.
- time to the first SSE delta of `/v1/ask/stream` minus the upstream's first delta (0 ms),
  one stream at a time, p50. Target <= 2 ms.
- 1,000 streams open at once, each 5 s long upstream: every one must end with its `done`
  event; the workers' resident memory (RSS) growth from idle to the peak. Target <= 200 MB.

`--tiny` runs every measure on a few requests, one worker and short streams: a check that the
script works end to end (the template's fast tier runs it), its figures meaningless.

Output: reports/bench-service.json and .md (the Markdown is printed too), with the load
average next to the figures. Exit status 1 when a target is missed, 2 when a measure cannot
run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airuntime.service.auth import hash_api_key, new_api_key

# One key for the server and the load generator (a child process: it inherits the variable).
KEY = os.environ.get("BENCH_SERVICE_KEY") or new_api_key("bench")[0]
os.environ["BENCH_SERVICE_KEY"] = KEY
ENTRY = f"bench:{hash_api_key(KEY)}"
START_TIMEOUT = 60.0
UPSTREAMS_MS = (0, 200)
SERVICE_ENV = {
    "ENVIRONMENT": "production",
    "LLM_PROVIDER": "mock",
    "LOG_LEVEL": "WARNING",
    "CACHE_ENABLED": "false",
    "BUDGET_PER_CALL_USD": "none",
    "BUDGET_PER_PROCESS_USD": "none",
    "BUDGET_PER_DAY_USD": "none",
    "SERVICE_API_KEYS": ENTRY,
    "SERVICE_RATE_LIMIT_PER_MINUTE": "none",
    "SERVICE_KEY_SPEND_USD_PER_DAY": "none",
    "SERVICE_MAX_CONCURRENT_REQUESTS": "5000",
    "MAX_CONCURRENCY": "5000",
    "REVIEW_CONFIDENCE_THRESHOLD": "0",
}


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str
    target: str
    met: bool
    detail: str


# -- the load generator (its own process) ------------------------------------------------------


def request_bytes(path: str, body: Mapping[str, Any], *, close: bool = False) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode() + payload


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> tuple[int, float]:
    """Send one request on a kept-alive connection: (status, Server-Timing ms)."""
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    server_ms = float("nan")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lowered = name.lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"server-timing":
            server_ms = float(value.strip().removeprefix(b"app;dur="))
    await reader.readexactly(length)
    return status, server_ms


CHAT_PATH = "/v1/chat/completions"
CHAT_MESSAGES: list[Any] = [{"role": "user", "content": "hello there"}]
CHAT_BODY = {"model": "default", "messages": CHAT_MESSAGES}
# What the SDK is given back while its request is captured (it is never parsed).
CAPTURED_REPLY = {
    "id": "chatcmpl-0",
    "object": "chat.completion",
    "created": 0,
    "model": "default",
    "choices": [],
}


def sdk_request_bytes() -> bytes:
    """A chat completion as the openai SDK sends it: its own request (User-Agent, the
    X-Stainless-* headers, its JSON), captured from the SDK through a mock transport; the same
    body with our usual headers when the project has no openai SDK."""
    try:
        import httpx2
        import openai
    except ImportError:
        return request_bytes(CHAT_PATH, CHAT_BODY)
    captured: list[httpx2.Request] = []

    def capture(request: httpx2.Request) -> httpx2.Response:
        captured.append(request)
        return httpx2.Response(200, json=CAPTURED_REPLY)

    transport = httpx2.Client(transport=httpx2.MockTransport(capture))
    sdk = openai.OpenAI(
        base_url="http://bench/v1", api_key=KEY, max_retries=0, http_client=transport
    )
    sdk.chat.completions.create(model="default", messages=CHAT_MESSAGES)
    request = captured[0]
    body = request.read()
    head = [f"POST {CHAT_PATH} HTTP/1.1", "Host: bench"]
    for name, value in request.headers.raw:
        if name.lower() not in (b"host", b"content-length", b"connection"):
            head.append(f"{name.decode()}: {value.decode()}")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def target_payload(target: str) -> bytes:
    if target == "chat":
        return sdk_request_bytes()
    return request_bytes("/v1/ask", {"prompt": "hello there"})


async def open_loop(
    port: int, rate: int, seconds: float, connections: int, payload: bytes
) -> dict[str, Any]:
    """`rate` requests/s for `seconds` of `payload`: client and server latency of each,
    counted from when it was due (a request waiting for a free connection is late, not
    skipped)."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    client: list[float] = []
    server: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        connection = await pool.get()
        try:
            status, server_ms = await exchange(*connection, payload)
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            return
        pool.put_nowait(connection)
        if status != 200:
            errors += 1
            return
        client.append((time.perf_counter() - due) * 1000)
        server.append(server_ms)

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    for index in range(total):  # bounded: `total` requests
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    achieved = total / (time.perf_counter() - start)
    return {"client_ms": client, "server_ms": server, "errors": errors, "achieved_rps": achieved}


async def closed_loop(port: int, seconds: float, connections: int) -> dict[str, Any]:
    """As many /v1/classify requests as `connections` keep in flight, for `seconds`."""
    payload = request_bytes(
        "/v1/classify", {"text": "I was charged twice this month", "labels": ["billing", "bug"]}
    )
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:  # bounded in time
            status, _ = await exchange(reader, writer, payload)
            done += 1
            errors += status != 200
        writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(connections))), timeout=seconds + 60
    )
    return {"requests": done, "errors": errors, "rps": done / (time.perf_counter() - started)}


async def one_stream(port: int) -> tuple[float, bool]:
    """(ms to the first delta, ended with its done event) of one /v1/ask/stream."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    writer.write(request_bytes("/v1/ask/stream", {"prompt": "tell me a story"}, close=True))
    seen = b""
    first = float("nan")
    while True:
        data = await reader.read(65_536)
        if not data:
            break
        seen += data
        if first != first and b"event: delta" in seen:  # NaN until the first delta
            first = (time.perf_counter() - started) * 1000
    writer.close()
    return first, b"event: done" in seen and b'"finish_reason":"stop"' in seen


async def first_deltas(port: int, count: int) -> dict[str, Any]:
    times = []
    for _ in range(count):  # bounded: `count` streams, one at a time
        first, _ = await asyncio.wait_for(one_stream(port), timeout=30)
        times.append(first)
    return {"first_delta_ms": times}


async def many_streams(port: int, count: int, pids: list[int]) -> dict[str, Any]:
    """`count` streams at once; the workers' RSS sampled while they are open."""
    peak = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_bytes(pids))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    results = await asyncio.wait_for(
        asyncio.gather(*(one_stream(port) for _ in range(count)), return_exceptions=True),
        timeout=120,
    )
    stop.set()
    await sampler
    completed = sum(1 for item in results if isinstance(item, tuple) and item[1])
    return {"completed": completed, "peak_rss": peak}


def load_main(arguments: argparse.Namespace) -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is in the service extra
        pass
    if arguments.load == "open":
        payload = target_payload(arguments.target)
        result = asyncio.run(
            open_loop(
                arguments.port, arguments.rate, arguments.seconds, arguments.connections, payload
            )
        )
    elif arguments.load == "closed":
        result = asyncio.run(closed_loop(arguments.port, arguments.seconds, arguments.connections))
    elif arguments.load == "first":
        result = asyncio.run(first_deltas(arguments.port, arguments.count))
    else:
        pids = [int(pid) for pid in arguments.pids.split(",")]
        result = asyncio.run(many_streams(arguments.port, arguments.count, pids))
    # To a file, not stdout: the event loop leaves stdout non-blocking, and a result bigger
    # than the pipe's buffer was cut short there.
    Path(arguments.out).write_text(json.dumps(result), encoding="utf-8")
    return 0


# -- the server and the driver -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def worker_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return [int(pid) for pid in children.read_text(encoding="utf-8").split()]


@contextmanager
def server(app: str, env: Mapping[str, str], workers: int) -> Iterator[tuple[int, list[int]]]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", app,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
        "--backlog", "4096", "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip
    process = subprocess.Popen(command, env={**os.environ, **SERVICE_ENV, **env})
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:  # bounded in time
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                    if probe.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("the server did not become ready")
        pids = worker_pids(process.pid) if workers > 1 else [process.pid]
        yield port, pids
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def load(kind: str, port: int, **options: object) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "result.json"
        command = [sys.executable, __file__, "--load", kind, "--port", str(port), "--out", str(out)]
        for name, value in options.items():
            command += [f"--{name}", str(value)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0 or not out.is_file():
            raise RuntimeError(f"the load generator failed: {result.stderr[-2000:]}")
        parsed: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return parsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(value for value in values if value == value)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# The routes the added latency is measured on: the service's own, then the gateway's.
LATENCY_TARGETS = {"ask": "/v1/ask", "chat": f"{CHAT_PATH} (openai SDK's request)"}


def added_latency(app: str, args: argparse.Namespace) -> list[Figure]:
    figures = []
    for upstream in UPSTREAMS_MS:
        env = {"MOCK_LATENCY_MS": str(upstream)}
        results = {}
        with server(app, env, args.workers) as (port, _):
            for target in LATENCY_TARGETS:
                options = {"rate": args.rate, "connections": args.connections, "target": target}
                load("open", port, seconds=args.warm_up, **options)
                results[target] = load("open", port, seconds=args.seconds, **options)
        for target, route in LATENCY_TARGETS.items():
            figures.append(_added(results[target], route, upstream, args))
    return figures


def _added(result: dict[str, Any], route: str, upstream: int, args: argparse.Namespace) -> Figure:
    server_added = [value - upstream for value in result["server_ms"]]
    client_added = [value - upstream for value in result["client_ms"]]
    p50, p99 = percentile(server_added, 0.5), percentile(server_added, 0.99)
    detail = (
        f"p50 {p50:.2f} ms; seen by the client p50 {percentile(client_added, 0.5):.2f} / "
        f"p99 {percentile(client_added, 0.99):.2f} ms; {len(server_added)} requests at "
        f"{result['achieved_rps']:.0f}/s, {result['errors']} errors"
    )
    return Figure(
        f"added latency p99, {route}, {args.rate}/s, upstream {upstream} ms",
        p99,
        "ms",
        "<= 3",
        p99 <= 3 and result["errors"] == 0,
        detail,
    )


def classify_throughput(app: str, args: argparse.Namespace) -> Figure:
    with server(app, {"MOCK_LATENCY_MS": "0"}, args.workers) as (port, _):
        load("closed", port, seconds=args.warm_up, connections=args.connections_closed)
        result = load("closed", port, seconds=args.seconds, connections=args.connections_closed)
    rps = result["rps"]
    return Figure(
        "max requests/s, /v1/classify, upstream 0 ms",
        rps,
        "req/s",
        ">= 2000",
        rps >= 2000 and result["errors"] == 0,
        f"{result['requests']} requests in {args.seconds} s on {args.connections_closed} "
        "connections, "
        f"{result['errors']} errors",
    )


def first_delta(app: str, args: argparse.Namespace) -> Figure:
    with server(app, {"MOCK_LATENCY_MS": "0"}, args.workers) as (port, _):
        load("first", port, count=args.warm_up_streams)
        result = load("first", port, count=args.streams)
    times = result["first_delta_ms"]
    p50 = statistics.median(times)
    return Figure(
        "first SSE delta minus upstream first delta, p50",
        p50,
        "ms",
        "<= 2",
        p50 <= 2,
        f"p99 {percentile(times, 0.99):.2f} ms over {len(times)} streams (upstream 0 ms)",
    )


def open_streams(app: str, args: argparse.Namespace) -> Figure:
    count = args.open_streams
    # The mock answers this prompt in 7 chunks: 6 intervals make the stream last 5 s.
    env = {"MOCK_LATENCY_MS": "0", "MOCK_CHUNK_INTERVAL_MS": str(round(args.stream_ms / 6))}
    with server(app, env, args.workers) as (port, pids):
        load("first", port, count=args.warm_up_streams)  # what every worker loads once
        idle = rss_bytes(pids)
        started = time.perf_counter()
        result = load("many", port, count=count, pids=",".join(map(str, pids)))
        took = time.perf_counter() - started
    growth_mb = (result["peak_rss"] - idle) / 1e6
    lost = count - result["completed"]
    return Figure(
        f"{count} streams open at once: RSS growth",
        growth_mb,
        "MB",
        "<= 200, none lost",
        growth_mb <= 200 and lost == 0,
        f"{result['completed']}/{count} ended with their done event in {took:.1f} s; "
        f"workers' RSS {idle / 1e6:.0f} MB idle, {result['peak_rss'] / 1e6:.0f} MB at the peak",
    )


def report(figures: list[Figure], args: argparse.Namespace, reports: Path) -> str:
    load1, load5, load15 = os.getloadavg()
    lines = [
        "# bench-service",
        "",
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {args.workers} uvicorn workers, load average "
        f"{load1:.2f} {load5:.2f} {load15:.2f} at the end "
        f"(PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}).",
        "",
        "| measure | value | target | met | detail |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {f.name} | {f.value:.2f} {f.unit} | {f.target} | {'yes' if f.met else 'NO'} | "
        f"{f.detail} |"
        for f in figures
    ]
    text = "\n".join(lines) + "\n"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench-service.md").write_text(text, encoding="utf-8")
    payload = {
        "format": "copier-ai-system/bench/1",
        "load_average": [load1, load5, load15],
        "figures": [asdict(f) for f in figures],
    }
    (reports / "bench-service.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", help="the app factory, module:function")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--open-streams", type=int, default=1000)
    parser.add_argument("--only", default="latency,throughput,ttfb,streams")
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    # The load generator's own options (when this script is the load).
    parser.add_argument("--load", choices=["open", "closed", "first", "many"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--pids", default="")
    parser.add_argument(
        "--tiny", action="store_true", help="a few requests per measure: checks the script only"
    )
    parser.add_argument("--target", choices=sorted(LATENCY_TARGETS), default="ask")
    parser.add_argument("--out", default="", help="where the load generator writes its result")
    args = parser.parse_args(argv)
    # Warm-ups, the closed loop's connections and the length of an open stream (5 s upstream).
    args.warm_up, args.connections_closed, args.warm_up_streams, args.stream_ms = 2.0, 64, 20, 5000
    if args.tiny:
        args.workers, args.rate, args.seconds, args.connections = 1, 50, 0.3, 16
        args.streams, args.open_streams = 3, 5
        args.warm_up, args.connections_closed, args.warm_up_streams, args.stream_ms = 0.1, 4, 1, 300
    if args.load:
        return load_main(args)
    if not args.app:
        parser.error("--app module:function is required")
    chosen = set(args.only.split(","))
    figures: list[Figure] = []
    try:
        if "latency" in chosen:
            figures += added_latency(args.app, args)
        if "throughput" in chosen:
            figures.append(classify_throughput(args.app, args))
        if "ttfb" in chosen:
            figures.append(first_delta(args.app, args))
        if "streams" in chosen:
            figures.append(open_streams(args.app, args))
    except RuntimeError as error:
        print(f"bench-service: {error}", file=sys.stderr)
        return 2
    print(report(figures, args, args.reports_dir))
    return 0 if all(figure.met for figure in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
