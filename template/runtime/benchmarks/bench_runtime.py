"""Benchmarks of the model stack: `make bench` (or `uv run python benchmarks/bench_runtime.py`).

What is measured, on the offline MockLLM with no latency, in this process:

- overhead: the whole path of one structured call (prompt render, resilient client with its
  breaker, budget, limits and retry loop, JSON parse and pydantic validation, metrics and a log
  event per attempt and per call) against the bare `MockLLM.complete` of the same request.
  Calls are timed one by one with `time.perf_counter_ns`, a bare call and a whole call in turn
  (the order alternates), and the overhead of a call is the difference of the pair. With logs at
  INFO (the JSON events `stats` reads) and at WARNING (the default level), each with and without
  the per-day budget ledger.
- throughput: calls per second through the whole path with 1, 10, 100 and 1,000 calls in flight
  (MAX_CONCURRENCY raised above the highest so the limit never queues them); the mock gives the
  event loop one turn per call, as a network call would, so the calls really overlap.
- memory: RSS growth over 10,000 calls after a warm-up, and the objects still alive (gc) after a
  second and a third batch of 10,000: a leak shows as growth between the two.
- start-up: `import airuntime` and the import of the whole model stack in a fresh interpreter,
  less the interpreter's own start-up (median of the pairwise differences). (A project's
  command-line start-up is measured by the template's `make bench`.)

Output: reports/bench-runtime.json and reports/bench-runtime.md (the Markdown is also printed),
in the report format `copier-ai-system/bench/1`. Exit status 1 when a median misses its target
by more than 2x, 2 when a measurement cannot run, else 0. When the overhead misses its target,
the whole path runs under cProfile: the biggest costs are in the report and every function in
reports/bench-runtime-profile.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import gc
import importlib.util
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from airuntime.model.client import LLMClient
from airuntime.model.factory import PROVIDERS, MockConfig, build_mock
from airuntime.model.mock import MockLLM
from airuntime.observability.events import Observer
from airuntime.observability.logs import configure_logging, reset_logging
from airuntime.observability.telemetry import Telemetry
from airuntime.prompts import PromptRegistry, RenderedPrompt, load_registry
from airuntime.resilience.assembly import (
    BudgetConfig,
    ProviderClients,
    StackConfig,
    build_resilient_client,
)
from airuntime.resilience.client import ResilientClient
from airuntime.structured import StructuredGenerator
from airuntime.types import LLMRequest, LLMResponse

PACKAGE = "airuntime"
LIBRARY = Path(__file__).resolve().parents[1] / "tests" / "functional" / "library"
SCHEMA = "copier-ai-system/bench/1"
SUITE = "runtime"
GATE_FACTOR = 2.0  # exit non-zero only when a median is worse than GATE_FACTOR x its target

OVERHEAD_TARGET_US = 50.0  # p50 of (whole path - bare mock) per call, INFO logs + ledger
QUIET_OVERHEAD_TARGET_US = 40.0  # the same at WARNING (the default level)
VERSUS_TARGET = 40.0  # pydantic-ai's Agent.run per call / ours, p50
THROUGHPUT_TARGET = 5_000.0  # calls per second with 1,000 in flight
RSS_TARGET_MB = 50.0  # growth over 10,000 calls
RETAINED_TARGET = 100.0  # objects still alive after batch 3 and not after batch 2
IMPORT_TARGET_S = 0.3

OVERHEAD = "overhead"
THROUGHPUT = "throughput"
MEMORY = "memory"
STARTUP = "startup"
VERSUS = "pydantic-ai"
MEASURE_GROUPS = (OVERHEAD, VERSUS, THROUGHPUT, MEMORY, STARTUP)
CONCURRENCY_LEVELS = (1, 10, 100, 1_000)

MET = "pass"
MISSED = "missed"
MISSED_GATE = "missed by more than 2x"
NO_TARGET = "no target"
Better = Literal["lower", "higher"]

PROMPT_ID = "classify"
INPUTS: Mapping[str, Any] = {
    "text": (
        "Hello, I was charged twice for my subscription this month: once on the 3rd and again "
        "on the 5th, both for the full amount. I only have one account and one plan. Could you "
        "refund the second charge and tell me why it happened? The invoice numbers are on the "
        "statement I downloaded this morning. Thanks, a long-time customer."
    ),
    "labels": ["billing", "bug report", "feature request", "account access"],
}
# The large default ceilings keep tens of thousands of calls under budget; the checks still run.
HIGH_CEILING = Decimal(1_000_000)
STACK_IMPORT = (
    "import airuntime.resilience.assembly, airuntime.structured, airuntime.observability.setup, "
    "airuntime.prompts"
)


class Classification(BaseModel):
    """The output the classify prompt asks for."""

    label: str
    confidence: float = Field(ge=0, le=1)


class BenchError(Exception):
    """A measurement could not run: the figures would mean nothing."""


# --- pure parts: statistics, targets, the report ---------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One figure: its samples and optionally a target its median must meet."""

    name: str
    unit: str  # "us", "calls/s", "MB", "objects", "s"
    samples: tuple[float, ...]
    target: float | None = None
    better: Better = "lower"
    note: str = ""

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError(f"measure {self.name!r} has no samples")

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)

    @property
    def result(self) -> str:
        return judge(self.median, self.target, self.better)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "runs": len(self.samples),
            "samples": list(self.samples),
            "min": self.minimum,
            "median": self.median,
            "max": self.maximum,
            "target": self.target,
            "better": self.better,
            "result": self.result,
            "note": self.note,
        }


def judge(
    median: float, target: float | None, better: Better = "lower", factor: float = GATE_FACTOR
) -> str:
    """pass when the median meets its target; a miss beyond `factor` x fails the run."""
    if target is None:
        return NO_TARGET
    if better == "higher":
        if median >= target:
            return MET
        return MISSED if median * factor >= target else MISSED_GATE
    if median <= target:
        return MET
    return MISSED if median <= target * factor else MISSED_GATE


def exit_status(measures: Iterable[Measure]) -> int:
    return 1 if any(measure.result == MISSED_GATE for measure in measures) else 0


def percentile(ordered: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]


def pairwise_differences(whole: Sequence[int], bare: Sequence[int]) -> list[float]:
    """whole[i] - bare[i] in microseconds, for calls made in turn."""
    if len(whole) != len(bare):
        raise ValueError("pairwise differences need as many calls of each")
    return sorted((w - b) / 1000 for w, b in zip(whole, bare, strict=True))


def cpu_model(cpuinfo: str) -> str:
    """The first `model name` of /proc/cpuinfo, or "unknown"."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "us":
        return f"{value:.1f} us"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "x":
        return f"{value:.1f}x"
    return f"{value:,.0f} {unit}"


def target_text(measure: Mapping[str, Any]) -> str:
    if measure["target"] is None:
        return "-"
    sign = ">=" if measure["better"] == "higher" else "<="
    return f"{sign} {format_value(measure['target'], measure['unit'])}"


def build_report(
    machine: Mapping[str, Any],
    measures: Sequence[Measure],
    *,
    command: str,
    date: str,
    notes: Sequence[str] = (),
    profile: str = "",
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "suite": SUITE,
        "date": date,
        "command": command,
        "machine": dict(machine),
        "gate": {
            "rule": f"exit 1 when a median misses its target by more than {GATE_FACTOR:g}x",
            "factor": GATE_FACTOR,
        },
        "measures": [measure.as_dict() for measure in measures],
        "steps": [],
        "notes": list(notes),
        "profile": profile,
        "exit_status": exit_status(measures),
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    machine = report["machine"]
    tools = ", ".join(f"{name} {number}" for name, number in machine["tools"].items())
    lines = [
        f"# Benchmarks: {report['suite']}",
        "",
        f"`{report['command']}` on {report['date']}.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"{machine['os']}; load average {machine['load_before']} before, "
        f"{machine['load_after']} after; bytecode {machine.get('bytecode', 'unknown')}.",
        "",
        f"Libraries: {tools}.",
        "",
        "| measure | runs | min | median | max | target | result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for measure in report["measures"]:
        unit = measure["unit"]
        lines.append(
            f"| {measure['name']} | {measure['runs']} | {format_value(measure['min'], unit)} | "
            f"{format_value(measure['median'], unit)} | {format_value(measure['max'], unit)} | "
            f"{target_text(measure)} | {measure['result']} |"
        )
    notes = [
        f"Gate: {report['gate']['rule']}; this run exited {report['exit_status']}.",
        *report["notes"],
        *(f"{m['name']}: {m['note']}." for m in report["measures"] if m["note"]),
    ]
    lines += ["", *(f"- {note}" for note in notes)]
    if report["profile"]:
        lines += ["", "Profile of the whole path (the overhead missed its target):", ""]
        lines += ["```", report["profile"], "```"]
    return "\n".join(lines) + "\n"


# --- the stack under test ---------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """How the stack is configured for one set of measures."""

    log_level: Literal["INFO", "WARNING"]
    ledger: bool

    @property
    def label(self) -> str:
        logs = "INFO, JSON to a file" if self.log_level == "INFO" else "WARNING"
        return f"logs {logs}, per-day ledger {'on' if self.ledger else 'off'}"


PRODUCTION = Setup("INFO", ledger=True)
SETUPS = (PRODUCTION, Setup("INFO", ledger=False), Setup("WARNING", True), Setup("WARNING", False))


def overhead_target(setup: Setup) -> float | None:
    """The p50 target of a set-up: INFO with the ledger (production), and WARNING either way."""
    if setup == PRODUCTION:
        return OVERHEAD_TARGET_US
    return QUIET_OVERHEAD_TARGET_US if setup.log_level == "WARNING" else None


def bench_config(setup: Setup, workdir: Path, concurrency: int) -> StackConfig:
    """A production configuration with every value that touches the hot path given
    explicitly: no cache, the packaged prices, no rate limits, no fallbacks."""
    return StackConfig(
        max_concurrency=max(concurrency, 20),
        budget=BudgetConfig(
            per_call=Decimal("0.50"),
            per_process=HIGH_CEILING,
            per_day=HIGH_CEILING if setup.ledger else None,
            ledger_path=workdir / f"budget-{time.monotonic_ns()}.sqlite3",
        ),
        cache=None,
    )


class YieldingClient:
    """A provider that gives the event loop one turn, then answers from the mock at once: no
    latency, but calls in flight overlap as they would on a network."""

    def __init__(self, inner: MockLLM) -> None:
        self.inner = inner

    @property
    def provider(self) -> str:
        return self.inner.provider

    async def complete(self, request: LLMRequest) -> LLMResponse:
        await asyncio.sleep(0)
        return await self.inner.complete(request)

    def stream(self, request: LLMRequest) -> Any:
        return self.inner.stream(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Stack:
    setup: Setup
    log_file: Path
    generator: StructuredGenerator
    client: ResilientClient
    mock: MockLLM
    request: LLMRequest  # the request the whole path sends, for the bare calls

    def activate(self) -> None:
        """Logging as this set-up has it (logging is configured for the whole process)."""
        configure_logging(level=self.setup.log_level, log_format="json", log_file=self.log_file)

    async def call(self) -> None:
        await self.generator.generate(PROMPT_ID, INPUTS, Classification)

    async def bare(self) -> None:
        await self.mock.complete(self.request)


@contextmanager
def stack(
    setup: Setup, registry: PromptRegistry, *, concurrency: int = 1, yielding: bool = False
) -> Iterator[Stack]:
    """The stack as `build_resilient_client` assembles it, observed by Telemetry, with logs and
    the ledger in a temporary directory; the bounded mock serves every provider."""
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as directory:
        log_file = Path(directory) / "bench.log"
        config = bench_config(setup, Path(directory), concurrency)
        observer: Observer = Telemetry(log_content=False)
        mock = build_mock(MockConfig())
        served: LLMClient = YieldingClient(mock) if yielding else mock
        clients = ProviderClients(dict.fromkeys(PROVIDERS, served), "mock", offline=True)
        client = build_resilient_client(config, clients, observer=observer)
        generator = StructuredGenerator(client, registry, repair_attempts=1)
        rendered = registry.render(PROMPT_ID, INPUTS)
        try:
            configure_logging(level=setup.log_level, log_format="json", log_file=log_file)
            asyncio.run(generator.generate(PROMPT_ID, INPUTS, Classification))
            request = mock.requests[-1]  # exactly what the whole path sent
            if request.messages != rendered.messages:
                raise BenchError("the whole path did not send the rendered prompt")
            yield Stack(setup, log_file, generator, client, mock, request)
        finally:
            asyncio.run(client.aclose())
            reset_logging()


# --- the measures -----------------------------------------------------------------------------


async def paired_timings(target: Stack, calls: int, warm_up: int) -> tuple[list[int], list[int]]:
    """Nanoseconds of `calls` whole and bare calls made in turn, after a warm-up."""
    for _ in range(warm_up):
        await target.call()
        await target.bare()
    clock = time.perf_counter_ns
    whole: list[int] = []
    bare: list[int] = []
    gc.collect()
    for number in range(calls):
        if number % 2:
            started = clock()
            await target.call()
            middle = clock()
            await target.bare()
            ended = clock()
            whole.append(middle - started)
            bare.append(ended - middle)
        else:
            started = clock()
            await target.bare()
            middle = clock()
            await target.call()
            ended = clock()
            bare.append(middle - started)
            whole.append(ended - middle)
    return whole, bare


def bench_overhead(
    registry: PromptRegistry, runs: int, calls: int
) -> tuple[list[Measure], list[str]]:
    """Every set-up's runs in turn (A B C D A B C D ...), so a shared machine's drift reaches
    them all alike."""
    p50s: dict[Setup, list[float]] = {setup: [] for setup in SETUPS}
    p99s: dict[Setup, list[float]] = {setup: [] for setup in SETUPS}
    whole_p50s: dict[Setup, list[float]] = {setup: [] for setup in SETUPS}
    bare_p50: list[float] = []
    with ExitStack() as stacks:
        targets = [stacks.enter_context(stack(setup, registry)) for setup in SETUPS]
        for run in range(runs):
            for target in targets:
                target.activate()
                warm_up = min(1_000, calls) if run == 0 else 50
                whole, bare = asyncio.run(paired_timings(target, calls, warm_up))
                differences = pairwise_differences(whole, bare)
                p50s[target.setup].append(percentile(differences, 50))
                p99s[target.setup].append(percentile(differences, 99))
                whole_p50s[target.setup].append(percentile(sorted(whole), 50) / 1000)
                bare_p50.append(percentile(sorted(bare), 50) / 1000)
    measures: list[Measure] = []
    for setup in SETUPS:
        measures += [
            Measure(
                f"overhead per call p50, {setup.label}",
                "us",
                tuple(p50s[setup]),
                target=overhead_target(setup),
            ),
            Measure(f"overhead per call p99, {setup.label}", "us", tuple(p99s[setup])),
        ]
    measures.append(Measure("bare MockLLM.complete p50 (the baseline)", "us", tuple(bare_p50)))

    def cost(with_it: Setup, without: Setup) -> str:
        """The median of the runs' differences of p50 (runs made side by side)."""
        runs_apart = [a - b for a, b in zip(p50s[with_it], p50s[without], strict=True)]
        return f"{statistics.median(runs_apart):+.1f} us"

    info_on, info_off, warning_on, warning_off = SETUPS
    wholes = ", ".join(
        f"{setup.label} {statistics.median(whole_p50s[setup]):.1f} us" for setup in SETUPS
    )
    notes = [
        f"Overhead: {calls:,} calls per run, each paired with a bare `MockLLM.complete` of the "
        "same request (order alternating); p50 and p99 of the pairwise differences; the set-ups "
        "run in turn. Targets: the production set-up (INFO logs as JSON lines to a file, the "
        "per-day ledger on) and both WARNING set-ups. Prompt classify@1.0.0, response cache "
        "off, no rate limits, OpenTelemetry API without an SDK (no-op), garbage collector on "
        "(collected before each run).",
        f"Whole path p50 (medians): {wholes}.",
        "What the parts cost (medians of the runs' p50 differences): the per-day ledger "
        f"{cost(info_on, info_off)} at INFO and {cost(warning_on, warning_off)} at WARNING; "
        f"the two INFO log events {cost(info_off, warning_off)}.",
    ]
    return measures, notes


# --- side by side with pydantic-ai --------------------------------------------------------------

PYDANTIC_AI = "pydantic_ai"
VERSUS_BLOCK_CALLS = 100  # calls of one side in one block
VERSUS_SKIPPED = (
    "pydantic-ai comparison skipped: pydantic-ai is not installed (it is a development "
    "dependency of the template repository; `uv pip install pydantic-ai-slim` to run it here)."
)


def pydantic_ai_installed() -> bool:
    return importlib.util.find_spec(PYDANTIC_AI) is not None


def pydantic_ai_call(rendered: RenderedPrompt) -> Callable[[], Awaitable[None]]:
    """One `Agent.run` on pydantic-ai's offline TestModel with the same output type and the
    same (already rendered) system and user messages as our call."""
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    system = [message.content for message in rendered.messages if message.role == "system"]
    user = "\n\n".join(message.content for message in rendered.messages if message.role == "user")
    agent = Agent(TestModel(), output_type=Classification, system_prompt=system)

    async def call() -> None:
        result = await agent.run(user)
        if not isinstance(result.output, Classification):
            raise BenchError(f"pydantic-ai answered {result.output!r}, not a Classification")

    return call


async def block_p50(call: Callable[[], Awaitable[None]], calls: int) -> float:
    """The median microseconds of `calls` calls made one after another, the garbage collector
    paused (collected before the block)."""
    clock = time.perf_counter_ns
    timings: list[int] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            started = clock()
            await call()
            timings.append(clock() - started)
    finally:
        gc.enable()
    return percentile(sorted(timings), 50) / 1000


async def alternating_blocks(
    theirs: Callable[[], Awaitable[None]],
    ours: Callable[[], Awaitable[None]],
    pairs: int,
    calls: int,
) -> tuple[list[float], list[float]]:
    """p50s of blocks of each side in turn, A B A B ..., after a warm-up block of each."""
    await block_p50(theirs, min(calls, 20))
    await block_p50(ours, calls)
    their_p50s: list[float] = []
    our_p50s: list[float] = []
    for _ in range(pairs):
        their_p50s.append(await block_p50(theirs, calls))
        our_p50s.append(await block_p50(ours, calls))
    return their_p50s, our_p50s


def bench_versus(
    registry: PromptRegistry, runs: int, calls: int
) -> tuple[list[Measure], list[str]]:
    """pydantic-ai's `Agent.run` against our whole structured call, in this process."""
    if not pydantic_ai_installed():
        return [], [VERSUS_SKIPPED]
    block = min(calls, VERSUS_BLOCK_CALLS)
    pairs = 2 * runs
    with stack(PRODUCTION, registry) as target:
        target.activate()
        theirs = pydantic_ai_call(registry.render(PROMPT_ID, INPUTS))
        their_p50s, our_p50s = asyncio.run(alternating_blocks(theirs, target.call, pairs, block))
    ratios = tuple(a / b for a, b in zip(their_p50s, our_p50s, strict=True))
    measures = [
        Measure(
            "pydantic-ai Agent.run per call / ours, p50 of each block pair",
            "x",
            ratios,
            target=VERSUS_TARGET,
            better="higher",
        ),
        Measure("pydantic-ai Agent.run (TestModel) per call, p50", "us", tuple(their_p50s)),
        Measure(f"ours per call, p50, {PRODUCTION.label}", "us", tuple(our_p50s)),
    ]
    notes = [
        f"pydantic-ai {version('pydantic-ai-slim')}: {pairs} pairs of blocks of {block:,} calls "
        "of each side in turn (pydantic-ai first), in this process, the garbage collector "
        "paused in a block and collected between blocks; the ratio is pair by pair. Both sides "
        "answer offline with a generated instance of the same output type (`Classification`, "
        "a pydantic model). Ours: the whole structured call in the production set-up (prompt "
        "render with the input check, resilient client with breaker, budget and per-day "
        "ledger, limits, timeout and retry loop, the MockLLM, JSON parse and validation, "
        "metrics, OpenTelemetry no-ops and two JSON log lines). pydantic-ai: `Agent.run` with "
        "the same system and user messages already rendered, on `TestModel` (it answers by "
        "calling the output tool with arguments generated from the schema; the agent "
        "validates them), no instrumentation, no logs.",
    ]
    return measures, notes


async def run_concurrently(target: Stack, concurrency: int, calls: int) -> float:
    """Seconds to make `calls` calls with `concurrency` of them in flight."""
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await target.call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def bench_throughput(
    registry: PromptRegistry, runs: int, calls: int
) -> tuple[list[Measure], list[str]]:
    highest = max(CONCURRENCY_LEVELS)
    measures: list[Measure] = []
    with stack(PRODUCTION, registry, concurrency=highest, yielding=True) as target:
        asyncio.run(run_concurrently(target, 10, min(calls, 1_000)))  # warm-up
        for concurrency in CONCURRENCY_LEVELS:
            total = max(calls, concurrency)  # every call in flight at least once
            rates = []
            for _ in range(runs):
                gc.collect()
                rates.append(total / asyncio.run(run_concurrently(target, concurrency, total)))
            measures.append(
                Measure(
                    f"throughput, {concurrency:,} in flight",
                    "calls/s",
                    tuple(rates),
                    target=THROUGHPUT_TARGET if concurrency == highest else None,
                    better="higher",
                )
            )
    notes = [
        f"Throughput: {calls:,} calls per run through the whole path in the production set-up, "
        f"MAX_CONCURRENCY {highest} so the limit never queues; the mock has no latency but "
        "gives the event loop one turn per call, so the calls in flight really overlap.",
    ]
    return measures, notes


def resident_mb() -> float:
    """This process's resident memory now (Linux); elsewhere its peak so far."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        pages = int(statm.read_text(encoding="utf-8").split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3


def live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


async def batch(target: Stack, calls: int) -> None:
    for _ in range(calls):
        await target.call()


def bench_memory(
    registry: PromptRegistry, runs: int, calls: int
) -> tuple[list[Measure], list[str]]:
    rss: list[float] = []
    retained: list[float] = []
    for _ in range(runs):
        with stack(PRODUCTION, registry) as target:  # built, and one call made
            gc.collect()
            before = resident_mb()
            asyncio.run(batch(target, calls))  # the first calls too: caches, compiled templates
            gc.collect()
            rss.append(resident_mb() - before)
            asyncio.run(batch(target, calls))
            second = live_objects()
            asyncio.run(batch(target, calls))
            retained.append(live_objects() - second)
    notes = [
        f"Memory: batches of {calls:,} calls in the production set-up, the first from a stack "
        "that has made one call; RSS from /proc/self/statm (the peak RSS where there is no "
        "/proc); live objects counted by gc.get_objects() after a collection following the "
        "second and the third batch. tracemalloc over two more batches: "
        f"{traced_growth(registry, calls)}.",
    ]
    return [
        Measure(f"RSS growth over {calls:,} calls", "MB", tuple(rss), target=RSS_TARGET_MB),
        Measure(
            "objects retained between batch 2 and batch 3",
            "objects",
            tuple(retained),
            target=RETAINED_TARGET,
        ),
    ], notes


def traced_growth(registry: PromptRegistry, calls: int) -> str:
    """Bytes still allocated after one more batch, and where, by tracemalloc."""
    with stack(PRODUCTION, registry) as target:
        asyncio.run(batch(target, min(calls, 1_000)))
        tracemalloc.start()
        try:
            asyncio.run(batch(target, calls))
            gc.collect()
            first = tracemalloc.take_snapshot()
            asyncio.run(batch(target, calls))
            gc.collect()
            second = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    differences = second.compare_to(first, "lineno")
    growth = sum(stat.size_diff for stat in differences)
    top = ", ".join(
        f"{stat.traceback[0].filename.rsplit('/', 1)[-1]}:{stat.traceback[0].lineno} "
        f"{stat.size_diff:+,} B"
        for stat in differences[:3]
        if stat.size_diff
    )
    return f"{growth:+,} bytes" + (f" (largest: {top})" if top else "")


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: bytecode is cached
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def timed_process(command: Sequence[str], env: Mapping[str, str]) -> float:
    started = time.perf_counter_ns()
    # Our own interpreter and console script, with fixed arguments.
    result = subprocess.run(
        list(command), capture_output=True, text=True, env=dict(env), check=False
    )
    elapsed = (time.perf_counter_ns() - started) / 1e9
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-10:])
        raise BenchError(f"`{' '.join(command)}` exited {result.returncode}:\n{tail}")
    return elapsed


def slowest_imports(code: str, env: Mapping[str, str], count: int = 6) -> str:
    """The libraries that take longest to import (each with what it imports), from
    `python -X importtime`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=dict(env),
        check=False,
    )
    found: dict[str, int] = {}
    for line in result.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if "." in name or name == PACKAGE or name.startswith("_"):
            continue  # submodules are in their package's figure; the package is what we measure
        found[name] = max(found.get(name, 0), int(parts[1]))
    slowest = sorted(found.items(), key=lambda item: item[1], reverse=True)[:count]
    return ", ".join(f"{name} {micros / 1000:.0f} ms" for name, micros in slowest)


def bench_startup(runs: int) -> tuple[list[Measure], list[str]]:
    env = bench_env()
    python = sys.executable
    commands = {
        "floor": [python, "-c", "pass"],
        "package": [python, "-c", f"import {PACKAGE}"],
        "stack": [python, "-c", STACK_IMPORT],
    }
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(runs + 1):  # the first round warms the page cache and bytecode
        for name, command in commands.items():
            elapsed = timed_process(command, env)
            if run:
                timings[name].append(elapsed)
    floor = timings["floor"]

    def net(name: str) -> tuple[float, ...]:
        return tuple(a - b for a, b in zip(timings[name], floor, strict=True))

    measures = [
        Measure(
            "import the whole model stack (assembly, structured, observability, prompts)",
            "s",
            net("stack"),
            target=IMPORT_TARGET_S,
        ),
        Measure(f"import {PACKAGE}", "s", net("package"), target=IMPORT_TARGET_S),
        Measure("the interpreter's own start-up (`python -c pass`)", "s", tuple(floor)),
    ]
    notes = [
        "Start-up: fresh processes with bytecode cached; import times are the pairwise "
        "differences with `python -c pass` run in turn. The libraries slowest to import in the "
        "stack (with what they import, overlapping): "
        + (slowest_imports(STACK_IMPORT, env) or "unknown")
        + ".",
    ]
    return measures, notes


# --- profile of the whole path when its target is missed --------------------------------------


def profile_overhead(registry: PromptRegistry, calls: int, output: Path) -> str:
    """cProfile of `calls` whole-path calls in the production set-up: the top functions by
    their own time, and every function in `output`."""
    with stack(PRODUCTION, registry) as target:
        asyncio.run(batch(target, min(calls, 1_000)))
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(batch(target, calls))
        profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    output.write_text(text.getvalue(), encoding="utf-8")
    return summarise_profile(stats, calls)


def summarise_profile(stats: pstats.Stats, calls: int, count: int = 15) -> str:
    """The functions with the most own time, in microseconds per call (profiled: slower)."""
    table: Mapping[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:count]
    lines = [f"{'own us/call':>11} {'cum us/call':>11}  function ({calls:,} calls under cProfile)"]
    for (filename, line, function), row in rows:
        where = f"{filename.rsplit('site-packages/', 1)[-1]}:{line}({function})"
        lines.append(f"{row[2] / calls * 1e6:11.1f} {row[3] / calls * 1e6:11.1f}  {where}")
    return "\n".join(lines)


# --- the machine and the command line ---------------------------------------------------------


def bytecode_note() -> str:
    """Whether this process writes bytecode caches (PYTHONDONTWRITEBYTECODE): a user's machine
    does; the start-up subprocesses always do."""
    if sys.dont_write_bytecode:
        return "not written in this process (PYTHONDONTWRITEBYTECODE); written by start-up's"
    return "written (as on a user's machine)"


def describe_machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    libraries = ("pydantic", "structlog", "tenacity", "jinja2", "opentelemetry-api")
    tools = {name: version(name) for name in libraries}
    if pydantic_ai_installed():
        tools["pydantic-ai-slim"] = version("pydantic-ai-slim")
    return {
        "cpu": cpu_model(cpuinfo.read_text(encoding="utf-8") if cpuinfo.is_file() else ""),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_before": [round(load, 2) for load in os.getloadavg()],
        "bytecode": bytecode_note(),
        "tools": tools,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each measure (default 5)")
    parser.add_argument(
        "--calls", type=int, default=10_000, help="calls per run and per batch (default 10000)"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of {', '.join(MEASURE_GROUPS)} (default: all)",
    )
    parser.add_argument(
        "--reports-dir", type=Path, default=Path("reports"), help="default: reports/"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.calls < 1:
        parser.error("--runs and --calls must be at least 1")
    groups = [group.strip() for group in args.only.split(",") if group.strip()]
    unknown = sorted(set(groups) - set(MEASURE_GROUPS))
    if unknown:
        parser.error(
            f"unknown measure {', '.join(unknown)}: choose from {', '.join(MEASURE_GROUPS)}"
        )
    args.groups = groups or list(MEASURE_GROUPS)
    return args


Bench = Callable[[PromptRegistry, int, int], tuple[list[Measure], list[str]]]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reports: Path = args.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/bench_runtime.py", *given]).strip()
    registry = load_registry(LIBRARY)
    measures: list[Measure] = []
    notes: list[str] = []
    profile = ""
    benches: dict[str, tuple[Bench, int]] = {
        OVERHEAD: (bench_overhead, args.runs),
        VERSUS: (bench_versus, args.runs),
        THROUGHPUT: (bench_throughput, max(1, (args.runs + 1) // 2)),
        MEMORY: (bench_memory, max(1, (args.runs + 1) // 2)),
    }
    try:
        for group in args.groups:
            print(f"bench: {group}")
            if group == STARTUP:
                found, said = bench_startup(args.runs)
            else:
                bench, runs = benches[group]
                found, said = bench(registry, runs, args.calls)
            measures += found
            notes += said
            if group == OVERHEAD and any(
                measure.result not in (MET, NO_TARGET) for measure in found
            ):
                print("bench: the overhead missed its target: profiling the whole path")
                output = reports / "bench-runtime-profile.txt"
                profile = profile_overhead(registry, args.calls, output)
    except BenchError as error:
        print(f"bench: a measurement could not run: {error}", file=sys.stderr)
        return 2
    machine["load_after"] = [round(load, 2) for load in os.getloadavg()]
    report = build_report(
        machine, measures, command=command, date=date, notes=notes, profile=profile
    )
    (reports / "bench-runtime.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    markdown = render_markdown(report)
    (reports / "bench-runtime.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return int(report["exit_status"])


if __name__ == "__main__":
    sys.exit(main())
