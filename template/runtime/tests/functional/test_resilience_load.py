"""Properties and load: no sequence of faults spends past a ceiling, and 1,000 concurrent
calls through the whole stack lose nothing, respect the concurrency limit and account every
cent."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from airuntime.model.mock import CHARS_PER_TOKEN, MockLLM, Step
from airuntime.model.mock_faults import FAULT_KINDS, Fault, Latency
from airuntime.observability.events import RecordingObserver
from airuntime.resilience.budget import Budget, BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, ResilienceConfig
from airuntime.resilience.pricing import ModelPrice, PriceTable
from airuntime.resilience.retry import RetryPolicy
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMRequest, Message, ModelTarget

PRIMARY = ModelTarget(provider="primary", model="model-a")
SECONDARY = ModelTarget(provider="secondary", model="model-b")
MILLION = Decimal(1_000_000)

steps = st.one_of(
    st.sampled_from([Fault(kind) for kind in FAULT_KINDS]),
    st.text(alphabet="abcdefgh ", min_size=1, max_size=40),
)
prices = st.decimals(min_value=0, max_value=200, places=2)


def tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def ask(text: str, max_tokens: int = 100) -> LLMRequest:
    return LLMRequest(
        model=PRIMARY.model, messages=(Message(role="user", content=text),), max_tokens=max_tokens
    )


@settings(max_examples=150, deadline=None)
@given(
    primary=st.lists(steps, max_size=12),
    secondary=st.lists(steps, max_size=12),
    input_price=prices,
    output_price=prices,
    per_call=st.decimals(min_value=0, max_value=Decimal("0.05"), places=5),
    per_process=st.decimals(min_value=0, max_value=Decimal("0.2"), places=5),
)
def test_no_sequence_of_faults_spends_past_a_ceiling(
    primary: list[Step],
    secondary: list[Step],
    input_price: Decimal,
    output_price: Decimal,
    per_call: Decimal,
    per_process: Decimal,
) -> None:
    clock = FakeClock()
    price = ModelPrice(input=input_price, output=output_price, cache_read=Decimal(0))
    budget = Budget(per_call=per_call, per_process=per_process)
    observer = RecordingObserver()
    client = resilient_client(
        {
            "primary": MockLLM(primary, provider="primary", sleep=clock.sleep),
            "secondary": MockLLM(secondary, provider="secondary", sleep=clock.sleep),
        },
        clock=clock,
        fallbacks=[SECONDARY],
        config=ResilienceConfig(retry=RetryPolicy(max_attempts=3)),
        pricing=PriceTable(
            {(PRIMARY.provider, PRIMARY.model): price, (SECONDARY.provider, SECONDARY.model): price}
        ),
        budget=budget,
        observer=observer,
    )

    async def drive() -> None:
        for _ in range(len(primary) + len(secondary)):
            try:
                await client.run(ask("What is the status of order 1234?"))
            except (AllTargetsFailedError, BudgetExceeded):
                continue
            except RuntimeError:  # a script ran out: this example is over
                return

    asyncio.run(drive())

    assert budget.spent <= per_process
    assert budget.reserved == 0
    assert all(call.cost <= per_call for call in observer.calls)
    assert sum((call.cost for call in observer.calls), Decimal(0)) == budget.spent


async def test_a_thousand_concurrent_calls_lose_nothing_and_respect_the_limit() -> None:
    clock = FakeClock()
    peak = [0]

    def answer(request: LLMRequest) -> str:
        peak[0] = max(peak[0], client.limits.in_flight)
        return f"answer to {request.last_user_message}"

    mock_script: list[Step] = [answer] * 1_000
    mock = MockLLM(mock_script, sleep=clock.sleep, latency=Latency(10, 10), provider="primary")
    observer = RecordingObserver()
    client = resilient_client(
        {"primary": mock},
        clock=clock,
        pricing=flat_prices([PRIMARY]),
        max_concurrency=20,
        observer=observer,
    )
    questions = [f"question {number}" for number in range(1_000)]
    requests = [ask(question) for question in questions]

    results = await asyncio.gather(*(client.run(request) for request in requests))

    assert [result.response.text for result in results] == [
        f"answer to {question}" for question in questions
    ]
    assert [result.response.request_id for result in results] == [r.request_id for r in requests]
    assert peak[0] == 20  # reached, never exceeded
    assert client.limits.in_flight == 0
    expected = sum(
        (Decimal(tokens(q) * 1 + tokens(f"answer to {q}") * 2) / MILLION for q in questions),
        Decimal(0),
    )
    assert client.budget.spent == expected
    assert sum((result.cost or Decimal(0) for result in results), Decimal(0)) == expected
    assert len(observer.calls) == 1_000
    assert {call.outcome for call in observer.calls} == {"ok"}
