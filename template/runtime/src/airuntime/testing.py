"""Helpers for testing code that calls models: a clock that only moves when slept, and a
resilient client assembled around mock providers with everything injectable.

Shipped with the package (not only in tests/) so feature tests, chaos drills and benchmarks
build the same stack the way the project's own tests do.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from airuntime.model.client import LLMClient
from airuntime.observability.events import Observer
from airuntime.resilience.breaker import BreakerBoard
from airuntime.resilience.budget import Budget
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.limits import Limits
from airuntime.resilience.pricing import ModelPrice, PriceTable
from airuntime.types import ModelTarget


class FakeClock:
    """Monotonic time that advances only when something sleeps on it.

    Pass `clock` as the clock and `clock.sleep` as the sleep: backoff delays are recorded in
    `sleeps` instead of waited out, and deadlines and breaker cooldowns still see time pass.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # still let other tasks run, as a real sleep would


def flat_prices(
    targets: Sequence[ModelTarget], *, input_usd: str = "1", output_usd: str = "2"
) -> PriceTable:
    """The same price (US dollars per million tokens) for every target."""
    price = ModelPrice(input=Decimal(input_usd), output=Decimal(output_usd), cache_read=Decimal(0))
    return PriceTable({(target.provider, target.model): price for target in targets})


def resilient_client(
    clients: Mapping[str, LLMClient],
    *,
    clock: FakeClock,
    default_provider: str | None = None,
    fallbacks: Sequence[ModelTarget] = (),
    config: ResilienceConfig | None = None,
    pricing: PriceTable | None = None,
    budget: Budget | None = None,
    failure_threshold: int = 3,
    cooldown_seconds: float = 30.0,
    max_concurrency: int = 20,
    observer: Observer | None = None,
    seed: int = 0,
) -> ResilientClient:
    """A ResilientClient on a fake clock with a seeded jitter source and no cache."""
    return ResilientClient(
        clients,
        default_provider=default_provider or next(iter(clients)),
        config=config or ResilienceConfig(),
        pricing=pricing or PriceTable({}),
        budget=budget or Budget(),
        breakers=BreakerBoard(
            failure_threshold=failure_threshold, cooldown_seconds=cooldown_seconds, clock=clock
        ),
        limits=Limits(max_concurrency=max_concurrency),
        fallbacks=fallbacks,
        observer=observer,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(seed),  # noqa: S311 - jitter in tests, not crypto
    )


class RedisServer:
    """A throwaway redis-server (Debian's package) on a free loopback port, with its files in
    `directory`: for tests of the shared state (`airuntime.resilience.shared`).

    `RedisServer.missing()` says, in one line, why none can start (for pytest.skip).
    """

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def missing() -> str | None:
        if shutil.which("redis-server") is None:
            return "redis-server is not installed (apt-get install -y redis-server)"
        return None

    def start(self, *, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(self.missing())
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no", "--logfile", "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
