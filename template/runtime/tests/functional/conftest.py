"""Two small features on the test library's prompts (library/: classify and summarize), the
way the mock answers them offline, and the system they run on: what the evaluation engine's
functional tests evaluate (fixtures: test modules cannot import conftest).

The mock answers every call for 1,000 input and 100 output tokens, priced as the model it
stands in for (classify and summarize: openai/gpt-5-mini, $0.25 and $2 per million tokens:
$0.00045 a call). A directive in a case's text says what goes wrong: `[refuse]` every model
declines (content filter), `[down]` every model fails (server errors), `[primary down]` the
primary model fails and the first fallback (anthropic/claude-haiku-4-5, $1 and $5 per million
tokens: $0.0015 a call) answers, `[garbage]` the model answers text that is not JSON,
`[unsure]` it answers with confidence 0.3.
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from airuntime.evals.feature import EvalFeature
from airuntime.features import FeatureOutput, FeatureResult, FeatureSystem
from airuntime.model.mock import MockLLM, Reply
from airuntime.model.mock_faults import Fault
from airuntime.observability.logs import configure_logging
from airuntime.observability.telemetry import Telemetry
from airuntime.prompts import load_registry
from airuntime.resilience.assembly import (
    BudgetConfig,
    ProviderClients,
    StackConfig,
    build_resilient_client,
)
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.retry import RetryPolicy
from airuntime.structured import StructuredGenerator
from airuntime.testing import FakeClock, RedisServer
from airuntime.types import LLMRequest, LLMResponse, Usage

# A project installs only the runtime extras its answers ask for: the tests of what it lacks
# (retrieval's vectors: numpy; shared state: redis) are not collected there.
collect_ignore = [
    *(
        []
        if importlib.util.find_spec("numpy")
        else ["test_retrieval_flows.py", "test_pgvector_store.py"]
    ),
    *(
        []
        if importlib.util.find_spec("redis")
        else [
            "test_shared_state.py",
            "test_shared_state_processes.py",
            "test_kill_switch_shared.py",
        ]
    ),
]

LIBRARY = Path(__file__).parent / "library"
USAGE = Usage(input_tokens=1_000, output_tokens=100)
# Every provider a library prompt names is served by the one mock.
PROVIDERS = ("mock", "openai", "anthropic")


class Classification(FeatureOutput):
    model_config = ConfigDict(extra="forbid")

    label: str


class ClassifyInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    labels: list[str]


class Summary(FeatureOutput):
    model_config = ConfigDict(extra="forbid")

    summary: str
    key_points: list[str]


class SummarizeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    max_words: int = Field(default=120, ge=1)


async def classify(system: FeatureSystem, inputs: ClassifyInput) -> FeatureResult[Classification]:
    """A feature as a project writes one: guardrails, the prompt, then review flags."""
    text = system.clean(inputs.text, ("text",))
    generated = await system.generator.generate(
        "classify", {"text": text, "labels": inputs.labels}, Classification, use_cache=False
    )
    return system.finish("classify", inputs.text, generated)


async def summarize(system: FeatureSystem, inputs: SummarizeInput) -> FeatureResult[Summary]:
    """Like classify, but when no model answers it degrades to the document's first words."""
    text = system.clean(inputs.text, ("document",), what="document")
    lead = " ".join(text.split()[: inputs.max_words])
    generated = await system.generator.generate(
        "summarize",
        {"text": text, "max_words": inputs.max_words},
        Summary,
        use_cache=False,
        degraded=lambda: Summary(summary=lead, key_points=[], confidence=0.0),
    )
    return system.finish("summarize", inputs.text, generated)


def offline_answer(request: LLMRequest) -> Reply:
    """The mock's answer to both prompts (see the module's docstring)."""
    case = next(message.content for message in request.messages if message.role == "user")
    if "[refuse]" in case:
        return Fault("content_filter")
    if "[down]" in case or ("[primary down]" in case and request.model == "gpt-5-mini"):
        return Fault("server_error")
    if "[garbage]" in case:
        return answer(request, "I would rather chat.")
    confidence = 0.3 if "[unsure]" in case else 0.9
    if request.metadata.get("prompt.id") == "classify":
        system = request.messages[0].content
        labels = [line.strip()[2:] for line in system.splitlines() if line.strip()[:2] == "- "]
        label = next((each for each in labels if each.casefold() in case.casefold()), labels[-1])
        return answer(request, json.dumps({"label": label, "confidence": confidence}))
    words = case.split("<document>")[1].split("</document>")[0].split()[:3]
    summary = {"summary": " ".join(words), "key_points": words[:1], "confidence": confidence}
    return answer(request, json.dumps(summary))


def answer(request: LLMRequest, text: str) -> LLMResponse:
    return LLMResponse(text=text, model=request.model, provider="mock", usage=USAGE)


@pytest.fixture
def quiet_logs() -> None:
    """The features' telemetry logs nothing below ERROR (every attempt would be a line)."""
    configure_logging(level="ERROR")


@pytest.fixture
def eval_features() -> dict[str, EvalFeature]:
    def within_words(record: Mapping[str, Any], options: Mapping[str, Any]) -> bool:
        """A feature's own scorer: the summary has at most `max` words."""
        summary = (record.get("output") or {}).get("summary", "")
        return len(str(summary).split()) <= int(options.get("max", 3))

    return {
        "classify": EvalFeature("classify", ClassifyInput, Classification, classify),
        "summarize": EvalFeature(
            "summarize", SummarizeInput, Summary, summarize, scorers={"within_words": within_words}
        ),
    }


@pytest.fixture
def mock_answer() -> Callable[[LLMRequest], Reply]:
    return offline_answer


@pytest.fixture
def build_system(quiet_logs: None) -> Callable[[MockLLM], FeatureSystem]:
    """The features' runtime with every provider served by `mock`: two attempts per target,
    no cache and no day ledger (as an offline evaluation), backoff on a fake clock."""

    def build(mock: MockLLM) -> FeatureSystem:
        clock = FakeClock()
        telemetry = Telemetry()
        client = build_resilient_client(
            StackConfig(
                resilience=ResilienceConfig(retry=RetryPolicy(max_attempts=2)),
                breaker_failure_threshold=1_000,
                budget=BudgetConfig(per_day=None),
                cache=None,
            ),
            ProviderClients(dict.fromkeys(PROVIDERS, mock), "mock", offline=True),
            observer=telemetry,
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(0),
        )
        generator = StructuredGenerator(client, load_registry(LIBRARY), repair_attempts=1)
        return FeatureSystem(telemetry, client, generator, offline=True, review_queue=None)

    return build


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (its files in a temporary directory)."""
    pytest.importorskip("redis", reason="the redis extra is not installed")
    missing = RedisServer.missing()
    if missing is not None:
        pytest.skip(missing)
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    import redis  # the redis extra: imported here, so a project without it still runs the rest

    with redis.Redis.from_url(redis_server.url) as connection:
        connection.flushall()
    return redis_server.url


@pytest.fixture
def service_system(quiet_logs: None, tmp_path: Path) -> Callable[..., FeatureSystem]:
    """The features' runtime for the service tests: `openai` served by `mock` (so calls are
    priced, and reservations and settlements show in the budget), one attempt per target,
    no cache, a per-day ceiling kept in a ledger under tmp_path, real time."""

    def build(
        mock: MockLLM,
        *,
        per_process: Decimal | None = Decimal(10),
        attempts: int = 1,
        threshold: int = 1_000,
        telemetry: Telemetry | None = None,
    ) -> FeatureSystem:
        telemetry = telemetry if telemetry is not None else Telemetry()
        client = build_resilient_client(
            StackConfig(
                resilience=ResilienceConfig(
                    retry=RetryPolicy(max_attempts=attempts, base_delay=0.001, max_delay=0.001)
                ),
                breaker_failure_threshold=threshold,
                budget=BudgetConfig(
                    per_process=per_process, ledger_path=tmp_path / "budget.sqlite3"
                ),
                cache=None,
            ),
            ProviderClients({"openai": mock}, "openai", offline=True),
            observer=telemetry,
            rng=random.Random(0),
        )
        generator = StructuredGenerator(client, load_registry(LIBRARY), repair_attempts=1)
        return FeatureSystem(telemetry, client, generator, offline=True, review_queue=None)

    return build
