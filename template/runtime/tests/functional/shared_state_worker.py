"""One instance of a multi-process run on a shared Redis (test_shared_state_processes.py).

`python shared_state_worker.py '<json options>'`: builds the resilient client as a project's
wiring would (StackConfig with shared=RedisConfig), prints its lease holder id, waits for the
`go` file to appear, makes its calls, and appends one JSON line per call (and per attempt sent)
to its records file. Modes: "spend" (calls until done, refusals counted), "rate-limited" (its
first attempt gets a 429), "watch" (calls the target continuously, to see whether it sends).
"""

# A subprocess talking to its test over stdout and files, with nothing else on its loop.
# ruff: noqa: T201, ASYNC110, ASYNC230, ASYNC240

from __future__ import annotations

import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from airuntime.model.mock import MockLLM, Step
from airuntime.model.mock_faults import Fault, Latency
from airuntime.observability.events import AttemptRecord, CallRecord, ValidationFailure
from airuntime.resilience.assembly import (
    BudgetConfig,
    ProviderClients,
    StackConfig,
    build_resilient_client,
)
from airuntime.resilience.budget import BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, ResilienceConfig
from airuntime.resilience.retry import RetryPolicy
from airuntime.resilience.state import RedisConfig
from airuntime.testing import flat_prices
from airuntime.types import LLMRequest, Message, ModelTarget

TARGET = ModelTarget(provider="mock", model="target")
BACKUP = ModelTarget(provider="mock", model="backup")


class FileObserver:
    """Every call's cost, and every attempt actually sent, as JSON lines (flushed each)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def on_attempt(self, record: AttemptRecord) -> None:
        if record.attempt > 0:  # sent (attempt 0 is a target skipped, nothing sent)
            self._write(
                kind="attempt",
                target=str(record.target),
                sent=record.started_ns / 1e9,
                ended=record.started_ns / 1e9 + record.duration_s,
                outcome=record.outcome,
            )

    def on_call(self, record: CallRecord) -> None:
        self._write(kind="call", cost=str(record.cost), outcome=record.outcome, at=time.time())

    def on_validation_failure(self, failure: ValidationFailure) -> None:
        pass

    def _write(self, **fields: Any) -> None:
        self.out.write(json.dumps(fields) + "\n")
        self.out.flush()


async def run(options: dict[str, Any]) -> None:
    mode = options["mode"]
    script: list[Step] | None = None  # the mock's default answer, every time
    if mode == "rate-limited":  # a 429 first (Retry-After absent: the cooldown holds)
        script = [Fault("rate_limit", retry_after=None), *["fine"] * options["calls"]]
    mock = MockLLM(script, latency=Latency(options["latency_ms"], options["latency_ms"]))
    config = StackConfig(
        resilience=ResilienceConfig(retry=RetryPolicy(max_attempts=1)),
        budget=BudgetConfig(
            per_call=None,
            per_process=None,
            per_day=Decimal(options["ceiling"]),
            lease_seconds=options["lease_seconds"],
        ),
        prices=flat_prices([TARGET, BACKUP], input_usd="10", output_usd="20"),
        cache=None,
        max_concurrency=options["concurrency"],
        breaker_cooldown_seconds=options.get("cooldown", 30.0),
        fallbacks=(BACKUP,),
        shared=RedisConfig(url=options["url"]),
    )
    with Path(options["records"]).open("a", encoding="utf-8") as out:
        client = build_resilient_client(
            config,
            ProviderClients({"mock": mock}, "mock", offline=True),
            observer=FileObserver(out),
        )
        holder = client.budget._ledger.holder  # type: ignore[union-attr]
        print(json.dumps({"holder": holder}), flush=True)
        while not Path(options["go"]).exists():  # every instance starts together
            await asyncio.sleep(0.01)
        await asyncio.sleep(options.get("delay", 0.0))
        refused = await drive(client, options)
        await client.aclose()
    print(json.dumps({"done": True, "refused": refused}), flush=True)


async def drive(client: Any, options: dict[str, Any]) -> int:
    """`concurrency` loops sharing `calls` calls, until they are made or `seconds` pass."""
    refused = 0
    numbers = iter(range(options["calls"]))
    stop_at = time.time() + options.get("seconds", 1e9)

    async def loop() -> None:
        nonlocal refused
        for number in numbers:
            if time.time() > stop_at:
                return
            request = LLMRequest(
                model=TARGET.model,
                messages=(Message(role="user", content=f"call {number}"),),
                max_tokens=16,
            )
            try:
                await client.complete(request)
            except (BudgetExceeded, AllTargetsFailedError):
                refused += 1

    await asyncio.gather(*(loop() for _ in range(options["concurrency"])))
    return refused


if __name__ == "__main__":
    asyncio.run(run(json.loads(sys.argv[1])))
