"""MockLLM: scripts, rules, recording, faults, chaos, latency, streaming and generated answers."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from airuntime.errors import (
    ContentFilteredError,
    LLMError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
)
from airuntime.model.client import LLMClient
from airuntime.model.mock import (
    MockLLM,
    MockScriptExhaustedError,
    Rule,
    estimate_tokens,
    malformed_json,
    split_into_chunks,
)
from airuntime.model.mock_faults import FAULT_KINDS, Fault, FaultKind, Latency
from airuntime.types import (
    Chunk,
    LLMRequest,
    LLMResponse,
    Message,
    OutputFormat,
)


class FakeSleep:
    """Records every wait instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def ask(text: str = "hello", **fields: Any) -> LLMRequest:
    return LLMRequest.model_validate(
        {"model": "any-model", "messages": [Message(role="user", content=text)], **fields}
    )


async def collect(mock: MockLLM, request: LLMRequest) -> list[Chunk]:
    return [chunk async for chunk in mock.stream(request)]


async def drain(chunks: AsyncIterator[Chunk], into: list[Chunk]) -> None:
    """Keep every chunk a stream yields before it fails."""
    async for chunk in chunks:
        into.append(chunk)


def test_mock_is_an_llm_client() -> None:
    assert isinstance(MockLLM(), LLMClient)
    assert MockLLM().provider == "mock"
    assert MockLLM(provider="mock-secondary").provider == "mock-secondary"


async def test_script_answers_in_order_for_any_model() -> None:
    mock = MockLLM(["first", "second"])

    one = await mock.complete(ask())
    two = await mock.complete(ask(model="claude-or-gpt-or-anything"))

    assert (one.text, two.text) == ("first", "second")
    assert (one.model, two.model) == ("any-model", "claude-or-gpt-or-anything")
    assert one.provider == "mock"
    assert one.finish_reason == "stop"
    assert one.response_id != two.response_id
    assert mock.steps_left == 0


async def test_a_full_response_is_returned_as_scripted() -> None:
    scripted = LLMResponse(text="exact", model="m", provider="mock", finish_reason="length")

    assert await MockLLM([scripted]).complete(ask()) is scripted


async def test_an_exception_step_is_raised() -> None:
    error = ServerError("scripted outage", provider="mock", model="m", status_code=503)
    mock = MockLLM([error, "recovered"])

    with pytest.raises(ServerError) as caught:
        await mock.complete(ask())

    assert caught.value is error
    assert (await mock.complete(ask())).text == "recovered"


async def test_a_callable_step_answers_from_the_request() -> None:
    mock = MockLLM([lambda request: request.last_user_message.upper()])

    assert (await mock.complete(ask("shout"))).text == "SHOUT"


async def test_exhausted_script_raises_a_clear_error_not_an_empty_answer() -> None:
    mock = MockLLM(["only one"])
    await mock.complete(ask())

    with pytest.raises(MockScriptExhaustedError, match=r"exhausted after 1 answers") as caught:
        await mock.complete(ask("what now?"))

    assert "'what now?'" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not isinstance(caught.value, LLMError), "no retry or fallback may swallow it"


async def test_an_empty_script_raises_at_once() -> None:
    with pytest.raises(MockScriptExhaustedError):
        await MockLLM([]).complete(ask())


async def test_rules_choose_by_the_last_user_message_and_are_not_used_up() -> None:
    mock = MockLLM(
        ["from the script"],
        rules=[
            Rule(r"(?i)refund", "Refunds take 5 days."),
            Rule(re.compile(r"^bye$"), "Goodbye."),
        ],
    )

    assert (await mock.complete(ask("How do I get a REFUND?"))).text == "Refunds take 5 days."
    assert (await mock.complete(ask("another refund"))).text == "Refunds take 5 days."
    assert (await mock.complete(ask("bye"))).text == "Goodbye."
    assert (await mock.complete(ask("something else"))).text == "from the script"
    assert mock.steps_left == 0


async def test_rules_only_look_at_the_last_user_message() -> None:
    mock = MockLLM(["script"], rules=[Rule("refund", "rule")])
    request = ask().model_copy(
        update={
            "messages": (
                Message(role="user", content="refund"),
                Message(role="assistant", content="refund"),
                Message(role="user", content="thanks"),
            )
        }
    )

    assert (await mock.complete(request)).text == "script"


async def test_every_request_is_recorded_in_order() -> None:
    mock = MockLLM(["a", "b"])
    first, second = ask("one"), ask("two", max_tokens=10)

    await mock.complete(first)
    await collect(mock, second)

    assert mock.requests == [first, second]


async def test_a_long_running_mock_keeps_only_the_latest_requests() -> None:
    mock = MockLLM(max_recorded=2)
    sent = [ask(str(number)) for number in range(5)]

    responses = [await mock.complete(request) for request in sent]

    assert mock.requests == sent[-2:]
    assert len({response.response_id for response in responses}) == 5


@pytest.mark.parametrize(
    ("kind", "error_class", "retryable"),
    [
        ("timeout", ProviderTimeoutError, True),
        ("rate_limit", RateLimitedError, True),
        ("server_error", ServerError, True),
        ("connection_error", ProviderConnectionError, True),
        ("content_filter", ContentFilteredError, False),
    ],
)
async def test_each_error_fault_raises_its_class(
    kind: FaultKind, error_class: type[LLMError], retryable: bool
) -> None:
    mock = MockLLM([Fault(kind), "after"])

    with pytest.raises(error_class) as caught:
        await mock.complete(ask(model="gpt-x"))

    assert caught.value.retryable is retryable
    assert (caught.value.provider, caught.value.model) == ("mock", "gpt-x")
    assert (await mock.complete(ask())).text == "after"


async def test_rate_limit_fault_carries_retry_after() -> None:
    with pytest.raises(RateLimitedError) as caught:
        await MockLLM([Fault("rate_limit", retry_after=2.5)]).complete(ask())

    assert caught.value.retry_after == 2.5
    assert caught.value.status_code == 429


async def test_timeout_fault_takes_the_whole_timeout_on_the_injected_sleep() -> None:
    sleep = FakeSleep()
    mock = MockLLM([Fault("timeout")], timeout_seconds=30, sleep=sleep)

    with pytest.raises(ProviderTimeoutError):
        await mock.complete(ask())

    assert sleep.calls == [30]


async def test_malformed_json_fault_returns_json_that_does_not_parse() -> None:
    request = ask(output=OutputFormat(type="json"))

    response = await MockLLM([Fault("malformed_json")]).complete(request)

    assert response.finish_reason == "stop"
    assert response.text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


@pytest.mark.parametrize("valid", ['{"a": 1}', "[1, 2]", "1", '"text"', "plain words", "{}"])
def test_malformed_json_never_parses(valid: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed_json(valid))


async def test_truncated_fault_cuts_the_answer_with_finish_reason_length() -> None:
    full = await MockLLM().complete(ask("a long question"))

    cut = await MockLLM([Fault("truncated")]).complete(ask("a long question"))

    assert cut.finish_reason == "length"
    assert full.text.startswith(cut.text)
    assert 0 < len(cut.text) < len(full.text)


def test_a_fault_must_be_known() -> None:
    with pytest.raises(ValueError, match="unknown fault 'meteor'"):
        Fault("meteor")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at_chunk must be 0 or more"):
        Fault("timeout", at_chunk=-1)


async def test_chaos_mode_injects_faults_at_the_seeded_rate() -> None:
    mock = MockLLM(faults={"rate_limit": 0.2, "timeout": 0.1}, seed=7)
    outcomes: Counter[str] = Counter()

    for _ in range(1000):
        try:
            await mock.complete(ask())
        except LLMError as error:
            outcomes[error.kind] += 1
        else:
            outcomes["ok"] += 1

    assert set(outcomes) == {"ok", "rate_limited", "timeout"}
    assert 150 < outcomes["rate_limited"] < 250
    assert 60 < outcomes["timeout"] < 140


async def outcome_sequence(mock: MockLLM, calls: int = 50) -> list[str]:
    sequence: list[str] = []
    for _ in range(calls):
        try:
            sequence.append((await mock.complete(ask())).finish_reason)
        except LLMError as error:
            sequence.append(error.kind)
    return sequence


async def test_the_same_seed_replays_the_same_faults() -> None:
    faults = dict.fromkeys(FAULT_KINDS, 0.1)

    first = await outcome_sequence(MockLLM(faults=faults, seed=3))
    again = await outcome_sequence(MockLLM(faults=faults, seed=3))
    other = await outcome_sequence(MockLLM(faults=faults, seed=4))

    assert first == again
    assert first != other
    assert {"length", "rate_limited", "content_filtered"} <= set(first)


async def test_chaos_never_fires_at_probability_zero() -> None:
    mock = MockLLM(faults={"server_error": 0.0})

    finishes = [(await mock.complete(ask())).finish_reason for _ in range(50)]

    assert finishes == ["stop"] * 50


async def test_chaos_faults_leave_the_script_for_the_retry() -> None:
    mock = MockLLM(["the answer"], faults={"server_error": 1.0})

    with pytest.raises(ServerError):
        await mock.complete(ask())

    assert mock.steps_left == 1


async def test_fixed_latency_goes_through_the_injected_sleep() -> None:
    sleep = FakeSleep()
    mock = MockLLM(latency=Latency(250, 250), sleep=sleep)

    response = await mock.complete(ask())

    assert sleep.calls == [0.25]
    assert response.latency_ms == 250


async def test_random_latency_is_seeded_and_within_its_range() -> None:
    first, again = FakeSleep(), FakeSleep()
    for sleep in (first, again):
        mock = MockLLM(latency=Latency(50, 400), seed=11, sleep=sleep)
        for _ in range(20):
            await mock.complete(ask())

    assert first.calls == again.calls
    assert all(0.05 <= seconds <= 0.4 for seconds in first.calls)
    assert len(set(first.calls)) > 1


async def test_no_latency_means_no_sleep_call() -> None:
    sleep = FakeSleep()
    mock = MockLLM(sleep=sleep)

    await mock.complete(ask())
    await collect(mock, ask())

    assert sleep.calls == []


def test_chunks_keep_every_whitespace_character() -> None:
    text = "  Hello,\tworld!\n\nSecond  line "

    pieces = split_into_chunks(text)

    assert "".join(pieces) == text
    assert len(pieces) == 4


async def test_stream_yields_the_answer_with_finish_and_usage_on_the_last_chunk() -> None:
    text = "One two  three\nfour"
    request = ask("go")

    chunks = await collect(MockLLM([text]), request)
    whole = await MockLLM([text]).complete(request)

    assert "".join(chunk.text for chunk in chunks) == text
    assert [chunk.index for chunk in chunks] == [0, 1, 2, 3]
    assert [chunk.finish_reason for chunk in chunks] == [None, None, None, "stop"]
    assert chunks[-1].usage == whole.usage
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_stream_of_an_empty_answer_still_ends_with_a_final_chunk() -> None:
    chunks = await collect(MockLLM([""]), ask())

    assert chunks == [Chunk(text="", index=0, finish_reason="stop", usage=chunks[0].usage)]


async def test_a_fault_can_strike_at_chunk_n() -> None:
    mock = MockLLM([Fault("connection_error", at_chunk=2)])
    received: list[Chunk] = []

    with pytest.raises(ProviderConnectionError):
        await drain(mock.stream(ask("tell me a long story please")), received)

    assert [chunk.index for chunk in received] == [0, 1]
    assert all(chunk.finish_reason is None for chunk in received)


async def test_a_fault_at_chunk_zero_or_in_complete_fails_before_any_text() -> None:
    mock = MockLLM([Fault("server_error", at_chunk=0), Fault("server_error", at_chunk=3)])

    with pytest.raises(ServerError):
        await collect(mock, ask())
    with pytest.raises(ServerError):
        await mock.complete(ask())


async def test_chaos_in_a_stream_fails_within_the_first_chunks() -> None:
    mock = MockLLM(faults={"rate_limit": 1.0}, seed=5)
    counts = []
    for _ in range(20):
        received: list[Chunk] = []
        with pytest.raises(RateLimitedError):
            await drain(mock.stream(ask("one two three four five six")), received)
        counts.append(len(received))

    assert set(counts) <= {0, 1, 2, 3}
    assert len(set(counts)) > 1


async def test_truncated_stream_ends_with_length() -> None:
    chunks = await collect(MockLLM([Fault("truncated")]), ask("some words to cut"))

    assert chunks[-1].finish_reason == "length"


async def test_usage_is_a_deterministic_estimate() -> None:
    request = LLMRequest(
        model="m",
        messages=(
            Message(role="system", content="12345678"),
            Message(role="user", content="123"),
        ),
    )

    response = await MockLLM(["abcdefghi"]).complete(request)

    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert (response.usage.input_tokens, response.usage.output_tokens) == (2 + 1, 3)
    assert response.usage.cache_read_tokens == 0


async def test_without_a_script_text_requests_get_an_echo() -> None:
    response = await MockLLM().complete(ask("what is the weather?"))

    assert response.text == "Mock answer to: what is the weather?"


async def test_without_a_script_json_requests_get_a_json_object() -> None:
    response = await MockLLM().complete(ask("hi", output=OutputFormat(type="json")))

    assert json.loads(response.text) == {"echo": "hi"}


class Ticket(BaseModel):
    title: str = Field(min_length=10, max_length=40)
    priority: int = Field(ge=1, le=5)
    tags: list[str] = Field(min_length=2)
    severity: Literal["low", "high"]


async def test_without_a_script_schema_requests_get_schema_valid_json() -> None:
    schema = Ticket.model_json_schema()
    request = ask("file it", output=OutputFormat(type="json_schema", json_schema=schema))

    response = await MockLLM().complete(request)

    instance = json.loads(response.text)
    jsonschema.validate(instance, schema)
    assert Ticket.model_validate(instance).priority == 1


async def test_scripted_text_is_cut_at_a_stop_sequence() -> None:
    response = await MockLLM(["keep this END drop this"]).complete(ask(stop=["END", "drop"]))

    assert response.text == "keep this "
    assert response.finish_reason == "stop"


async def test_scripted_text_longer_than_max_tokens_is_cut_with_length() -> None:
    response = await MockLLM(["x" * 100]).complete(ask(max_tokens=5))

    assert response.text == "x" * 20
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 5


async def test_aclose_is_harmless_and_repeatable() -> None:
    mock = MockLLM(["still works"])

    await mock.aclose()
    await mock.aclose()

    assert (await mock.complete(ask())).text == "still works"
