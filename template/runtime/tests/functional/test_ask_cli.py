"""`ask` end to end through a command line composed as a project composes it (ask_command with
an AskSetup), on the mock provider: answers, streams, JSON, chaos drills that count how each
call ended, the bare provider, and one exit code and one line per kind of failure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
import typer
from typer.testing import CliRunner

from airuntime.cli.ask import DEFAULT_MODELS, AskSetup, ask_command
from airuntime.cli.exits import ExitCode
from airuntime.errors import ConfigurationError
from airuntime.model.client import LLMClient
from airuntime.model.mock import MockLLM, Step
from airuntime.model.mock_faults import Fault
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.budget import Budget
from airuntime.resilience.chain import ResilienceConfig
from airuntime.resilience.client import ResilientClient
from airuntime.resilience.pricing import PriceTable
from airuntime.resilience.retry import RetryPolicy
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMResponse, ModelTarget

runner = CliRunner()
BACKUP = ModelTarget(provider="mock", model="backup")


@dataclass
class Project:
    """What a project's wiring would build for `ask`: a mock standing in for `provider`, inside
    a resilient client on a fake clock (backoff is recorded, never waited)."""

    script: Sequence[Step] | None = None
    provider: str = "mock"
    fallbacks: tuple[ModelTarget, ...] = ()
    pricing: PriceTable = field(default_factory=PriceTable.load)
    budget: Budget = field(default_factory=Budget)
    max_attempts: int = 3
    broken: str | None = None  # a setting that does not validate
    broken_stack: str | None = None  # a stack that cannot be built (e.g. a bad price file)
    mock: MockLLM = field(init=False)
    observer: RecordingObserver = field(default_factory=RecordingObserver)
    clock: FakeClock = field(default_factory=FakeClock)
    closed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        project = self

        class ClosingMock(MockLLM):
            async def aclose(self) -> None:
                project.closed.append("mock")

        self.mock = ClosingMock(self.script, provider=self.provider, sleep=self.clock.sleep)

    def resilient(self) -> ResilientClient:
        if self.broken_stack is not None:
            raise ConfigurationError(self.broken_stack)
        return resilient_client(
            {self.provider: self.mock},
            clock=self.clock,
            fallbacks=self.fallbacks,
            config=ResilienceConfig(retry=RetryPolicy(max_attempts=self.max_attempts)),
            pricing=self.pricing,
            budget=self.budget,
            failure_threshold=1_000,
            observer=self.observer,
        )

    def bare(self) -> LLMClient:
        return self.mock

    def setup(self) -> AskSetup:
        if self.broken is not None:
            raise ConfigurationError(self.broken)
        return AskSetup(self.provider, self.resilient, self.bare)

    def app(self) -> typer.Typer:
        app = typer.Typer()
        app.command("ask")(ask_command(self.setup))

        @app.command()
        def other() -> None:
            """A second command, so `ask` is a sub-command as in a project."""

        return app

    def ask(self, *arguments: str) -> tuple[int, str, str]:
        result = runner.invoke(self.app(), ["ask", *arguments])
        return result.exit_code, result.stdout, result.stderr


def test_ask_prints_the_answer() -> None:
    project = Project()

    code, out, err = project.ask("Is it raining?")

    assert (code, out, err) == (0, "Mock answer to: Is it raining?\n", "")
    (sent,) = project.mock.requests
    assert sent.model == "mock-model"
    assert [(message.role, message.content) for message in sent.messages] == [
        ("user", "Is it raining?")
    ]
    assert sent.output.type == "text"
    assert [call.outcome for call in project.observer.calls] == ["ok"]
    assert project.closed == ["mock"]


def test_a_system_message_goes_first_and_the_model_is_the_one_asked_for() -> None:
    project = Project(pricing=flat_prices([ModelTarget(provider="mock", model="gpt-x")]))

    code, out, _ = project.ask("--system", "Be brief.", "--model", "gpt-x", "hello")

    assert (code, out) == (0, "Mock answer to: hello\n")
    (sent,) = project.mock.requests
    assert sent.model == "gpt-x"
    assert [message.role for message in sent.messages] == ["system", "user"]


@pytest.mark.parametrize(
    ("provider", "model", "cost"),
    [
        ("mock", "mock-model", "0"),
        # 2 input tokens and 6 output tokens, at the price of the model the mock stands in for.
        ("openai", "gpt-5-mini", "0.0000125"),
        ("anthropic", "claude-haiku-4-5", "0.000032"),
    ],
)
def test_without_model_a_cheap_model_of_the_provider_is_asked(
    provider: str, model: str, cost: str
) -> None:
    project = Project(provider=provider)

    code, _, _ = project.ask("hello")

    assert code == 0
    assert DEFAULT_MODELS[provider] == model
    assert [sent.model for sent in project.mock.requests] == [model]
    assert [call.cost for call in project.observer.calls] == [Decimal(cost)]


def test_a_provider_without_a_default_model_asks_for_default() -> None:
    project = Project(
        provider="local", pricing=flat_prices([ModelTarget(provider="local", model="default")])
    )

    code, _, _ = project.ask("hello")

    assert code == 0
    assert [sent.model for sent in project.mock.requests] == ["default"]


def test_ask_streams_the_same_answer() -> None:
    project = Project()

    code, out, _ = project.ask("--stream", "Stream this")

    assert (code, out) == (0, "Mock answer to: Stream this\n")
    assert [call.outcome for call in project.observer.calls] == ["ok"]
    assert project.closed == ["mock"]


def test_a_stream_falls_back_before_its_first_chunk() -> None:
    project = Project(
        script=[Fault("server_error", at_chunk=0), "from the backup"],
        fallbacks=(BACKUP,),
        pricing=flat_prices([ModelTarget(provider="mock", model="mock-model"), BACKUP]),
        max_attempts=1,
    )

    code, out, _ = project.ask("--stream", "hello")

    assert (code, out) == (0, "from the backup\n")
    assert [sent.model for sent in project.mock.requests] == ["mock-model", "backup"]
    assert [call.outcome for call in project.observer.calls] == ["fallback"]


def test_ask_for_json_prints_a_json_object() -> None:
    project = Project()

    code, out, _ = project.ask("--json", "hello")

    assert code == 0
    assert json.loads(out) == {"echo": "hello"}
    assert project.mock.requests[0].output.type == "json"


def test_raw_calls_the_bare_provider() -> None:
    project = Project(script=["bare answer"])

    code, out, _ = project.ask("--raw", "hello")

    assert (code, out) == (0, "bare answer\n")
    assert project.observer.calls == [], "no resilient client in between"
    assert project.closed == ["mock"]


def test_raw_streams_from_the_bare_provider() -> None:
    project = Project(script=["bare stream"])

    code, out, _ = project.ask("--raw", "--stream", "hello")

    assert (code, out) == (0, "bare stream\n")
    assert project.observer.calls == []


# -- drills: --times counts how each call ended ---------------------------------------------


def tally(out: str) -> dict[str, int]:
    counts = out.strip().split(": ", 1)[1].split(", ")
    return {kind: int(count) for count, kind in (part.split(" ", 1) for part in counts)}


def test_times_counts_first_time_answers_retries_fallbacks_and_failures() -> None:
    failed = Fault("server_error")
    project = Project(
        script=[
            "ok",  # 1: answered first time
            failed,  # 2: a retry, then answered
            "ok",
            failed,  # 3: both attempts fail, the backup answers
            failed,
            "ok",
            failed,  # 4: every target fails
            failed,
            failed,
            failed,
            # 5: an answer cut at max_tokens
            LLMResponse(text="cut", model="mock-model", provider="mock", finish_reason="length"),
            "ok",  # 6
        ],
        fallbacks=(BACKUP,),
        pricing=flat_prices([ModelTarget(provider="mock", model="mock-model"), BACKUP]),
        max_attempts=2,
    )

    code, out, err = project.ask("--times", "6", "hello")

    assert (code, err) == (0, "")
    assert out.startswith("6 calls to mock/mock-model: ")
    assert tally(out) == {
        "ok": 2,
        "ok_after_retry": 1,
        "ok_by_fallback": 1,
        "all_targets_failed": 1,
        "length": 1,
    }
    assert out == (
        "6 calls to mock/mock-model: 2 ok, 1 ok_after_retry, 1 ok_by_fallback, "
        "1 all_targets_failed, 1 length\n"
    )
    assert len(project.mock.requests) == 12
    assert len({sent.request_id for sent in project.mock.requests}) == 6, "a fresh id per call"
    assert project.clock.sleeps, "the retries backed off (on the fake clock)"
    assert project.closed == ["mock"]


def test_a_json_drill_counts_malformed_answers() -> None:
    project = Project(script=['{"a": 1}', Fault("malformed_json"), Fault("malformed_json")])

    code, out, _ = project.ask("--json", "--times", "3", "hello")

    assert (code, out) == (0, "3 calls to mock/mock-model: 2 invalid_json, 1 ok\n")


def test_a_raw_drill_shows_what_the_bare_provider_does() -> None:
    failed = Fault("server_error")
    project = Project(script=["ok", failed, failed, Fault("rate_limit"), "ok"])

    code, out, _ = project.ask("--raw", "--times", "5", "hello")

    assert (code, out) == (0, "5 calls to mock/mock-model: 2 ok, 2 server_error, 1 rate_limited\n")
    assert len(project.mock.requests) == 5
    assert project.observer.calls == []


def test_a_raw_json_drill_counts_malformed_answers_too() -> None:
    project = Project(script=[Fault("malformed_json"), "{}"])

    code, out, _ = project.ask("--raw", "--json", "--times", "2", "hello")

    assert (code, out) == (0, "2 calls to mock/mock-model: 1 invalid_json, 1 ok\n")


@pytest.mark.parametrize("times", ["0", "10001"])
def test_times_is_bounded(times: str) -> None:
    code, _, err = Project().ask("--times", times, "hello")

    assert code == 2
    assert "--times" in err


# -- one exit code and one line per failure -------------------------------------------------


def test_a_raw_model_error_is_one_line_and_provider_unavailable() -> None:
    project = Project(script=[Fault("rate_limit")])

    code, out, err = project.ask("--raw", "hello")

    assert (code, out) == (ExitCode.PROVIDER_UNAVAILABLE, "")
    assert err == (
        "error: mock/mock-model: rate_limited (HTTP 429): rate limited (injected by MockLLM)\n"
    )
    assert project.closed == ["mock"]


def test_resilient_ask_retries_then_reports_every_target() -> None:
    project = Project(script=[Fault("server_error")] * 3)

    code, _, err = project.ask("hello")

    assert code == ExitCode.PROVIDER_UNAVAILABLE
    assert err == (
        "error: ServerError: the only model target failed: mock/mock-model: server_error after "
        "3 attempts (internal server error (injected by MockLLM))\n"
    )
    assert len(project.mock.requests) == 3
    (call,) = project.observer.calls
    assert (call.outcome, call.attempts, call.cost) == ("error", 3, Decimal(0))


def test_a_failing_stream_is_provider_unavailable() -> None:
    project = Project(script=[Fault("server_error", at_chunk=0)], max_attempts=1)

    code, _, err = project.ask("--stream", "hello")

    assert code == ExitCode.PROVIDER_UNAVAILABLE
    assert err.startswith(
        "error: ServerError: the only model target failed: mock/mock-model: server_error"
    )


def test_a_budget_refusal_is_budget_exceeded_and_sends_nothing() -> None:
    priced = ModelTarget(provider="mock", model="priced")
    project = Project(pricing=flat_prices([priced]), budget=Budget(per_call=Decimal(0)))

    code, _, err = project.ask("--model", "priced", "hello")

    assert code == ExitCode.BUDGET_EXCEEDED
    # 5 bytes + 8 framing tokens at $1/M, and 1024 output tokens at $2/M.
    assert err == (
        "error: budget exceeded: this attempt could cost up to $0.002061 but only $0.000000 is "
        "left of the per-call ceiling ($0); the call was not sent. Raise BUDGET_PER_CALL_USD or "
        "wait for the budget to reset.\n"
    )
    assert project.mock.requests == []


def test_a_budget_refusal_stops_a_drill() -> None:
    priced = ModelTarget(provider="mock", model="priced")
    # A call reserves its worst case ($0.002061) and then spends $0.000014: room for one.
    project = Project(pricing=flat_prices([priced]), budget=Budget(per_process=Decimal("0.00207")))

    code, out, err = project.ask("--model", "priced", "--times", "5", "hello")

    assert (code, out) == (ExitCode.BUDGET_EXCEEDED, "")
    assert err == (
        "error: budget exceeded: this attempt could cost up to $0.002061 but only $0.002056 is "
        "left of the per-process ceiling ($0.00207); the call was not sent. Raise "
        "BUDGET_PER_PROCESS_USD or wait for the budget to reset.\n"
    )
    assert len(project.mock.requests) == 1
    assert project.closed == ["mock"]


def test_an_unpriced_model_is_a_configuration_error() -> None:
    project = Project()

    code, _, err = project.ask("--model", "unpriced-model", "hello")

    assert code == ExitCode.CONFIGURATION_ERROR
    assert err == (
        "error: no price for mock/unpriced-model in the price table, so its cost cannot be "
        "bounded: add it to the price file (PRICES_FILE) or set ALLOW_UNKNOWN_COST=true.\n"
    )
    assert project.mock.requests == []


@pytest.mark.parametrize("broken", ["broken", "broken_stack"])
@pytest.mark.parametrize("raw", [False, True])
def test_bad_configuration_stops_ask_before_any_call(broken: str, raw: bool) -> None:
    message = "invalid configuration: MOCK_FAULTS (unknown fault 'meteor')"
    project = Project(broken=message) if broken == "broken" else Project(broken_stack=message)

    code, out, err = project.ask(*(["--raw"] if raw else []), "hello")

    if broken == "broken_stack" and raw:  # --raw never builds the resilient stack
        assert (code, out) == (0, "Mock answer to: hello\n")
        return
    assert (code, out, err) == (ExitCode.CONFIGURATION_ERROR, "", f"error: {message}\n")
    assert project.mock.requests == []
