"""Tools from typed functions: the schema the model is offered, the validation of what it
sends back, and the text it reads as the result."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from airuntime.agents.store import RunNotFoundError, RunStore, ToolResults
from airuntime.agents.tools import (
    ToolContext,
    make_tool,
    result_text,
    tool,
    tools_by_name,
    validation_problems,
)
from airuntime.model.mock import CallTool, MockLLM
from airuntime.testing import FakeClock, flat_prices, resilient_client
from airuntime.types import LLMRequest, Message, ModelTarget, ToolCall

CONTEXT = ToolContext(run_id="r", call_id="c", idempotency_key=None, timeout_seconds=1.0)


def test_a_function_becomes_a_tool_with_its_schema_and_description() -> None:
    @tool(side_effects=True, timeout_seconds=2.0)
    def search_faq(
        query: Annotated[str, Field(description="What the customer asked.")],
        limit: Annotated[int, Field(ge=1, le=10)] = 3,
        language: Literal["en", "fr"] = "en",
    ) -> list[str]:
        """Search the FAQ.

        Returns the best answers first.
        """
        return [query] * limit

    spec = search_faq.spec()

    assert (spec.name, spec.description) == ("search_faq", "Search the FAQ.")
    assert spec.parameters == {
        "additionalProperties": False,
        "properties": {
            "query": {
                "description": "What the customer asked.",
                "title": "Query",
                "type": "string",
            },
            "limit": {
                "default": 3,
                "maximum": 10,
                "minimum": 1,
                "title": "Limit",
                "type": "integer",
            },
            "language": {
                "default": "en",
                "enum": ["en", "fr"],
                "title": "Language",
                "type": "string",
            },
        },
        "required": ["query"],
        "title": "SearchFaqArguments",
        "type": "object",
    }
    assert (search_faq.side_effects, search_faq.timeout_seconds) == (True, 2.0)
    arguments = search_faq.validate('{"query": "refund", "limit": 2}')
    assert asyncio.run(search_faq.invoke(arguments, CONTEXT)) == ["refund", "refund"]


def test_approval_implies_side_effects_and_the_context_is_not_offered() -> None:
    seen: list[ToolContext] = []

    @tool(requires_approval=True, name="open-ticket", description="Open a ticket.")
    async def open_ticket(summary: str, context: ToolContext) -> str:
        seen.append(context)
        return summary

    assert (open_ticket.name, open_ticket.side_effects, open_ticket.requires_approval) == (
        "open-ticket",
        True,
        True,
    )
    assert list(open_ticket.spec().parameters["properties"]) == ["summary"]
    result = asyncio.run(open_ticket.invoke(open_ticket.validate('{"summary": "x"}'), CONTEXT))
    assert (result, seen) == ("x", [CONTEXT])


def test_arguments_that_do_not_fit_say_what_is_wrong() -> None:
    @tool
    def lookup(order_id: str) -> str:
        """Look up an order."""
        return order_id

    with pytest.raises(ValidationError) as caught:
        lookup.validate('{"order_id": 5, "extra": true}')
    assert validation_problems(caught.value) == (
        "invalid arguments: order_id: Input should be a valid string; "
        "extra: Extra inputs are not permitted"
    )
    with pytest.raises(ValidationError):
        lookup.validate("not json")


def test_functions_a_model_cannot_call_are_refused_when_defined() -> None:
    def untyped(order_id):  # type: ignore[no-untyped-def]
        """Look up."""

    def undocumented(order_id: str) -> None:
        pass

    def variadic(*orders: str) -> None:
        """Look up many."""

    with pytest.raises(TypeError, match="'order_id' needs a type annotation"):
        make_tool(untyped)
    with pytest.raises(TypeError, match="say what it does in a docstring"):
        make_tool(undocumented)
    with pytest.raises(TypeError, match="'orders' needs a type annotation"):
        make_tool(variadic)
    with pytest.raises(ValueError, match="two tools are named 'a'"):
        tools_by_name([make_tool(undocumented, name="a", description="x")] * 2)


class Order(BaseModel):
    id: str
    total: float


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text", "plain text"),
        (Order(id="A1", total=2.5), '{"id":"A1","total":2.5}'),
        (
            {"b": [Order(id="A1", total=1)], "a": Path("x")},
            '{"a": "x", "b": [{"id": "A1", "total": 1.0}]}',
        ),
        (["é"], '["é"]'),
    ],
)
def test_results_become_the_text_the_model_reads(value: Any, text: str) -> None:
    assert result_text(value) == text


def test_a_tool_call_s_arguments_must_be_an_object() -> None:
    assert ToolCall(id="1", name="t", arguments='{"a": 1}').parsed_arguments() == {"a": 1}
    assert ToolCall(id="1", name="t", arguments="").parsed_arguments() == {}
    with pytest.raises(ValueError, match="not a JSON object"):
        ToolCall(id="1", name="t", arguments="[1]").parsed_arguments()


async def test_the_mock_scripts_tool_calls_whole_and_streamed() -> None:
    request = LLMRequest(model="m", messages=(Message(role="user", content="Where is A1?"),))
    mock = MockLLM(
        [
            CallTool("lookup", {"order_id": "A1"}),
            (CallTool("a", text="Checking. "), CallTool("b", {"x": 1}, id="mine")),
        ]
    )

    whole = await mock.complete(request)
    chunks = [chunk async for chunk in mock.stream(request)]

    assert whole.finish_reason == "tool_calls"
    assert whole.tool_calls == (
        ToolCall(id="call_1_0", name="lookup", arguments='{"order_id": "A1"}'),
    )
    assert "".join(chunk.text for chunk in chunks) == "Checking. "
    deltas = [chunk.tool_call_delta for chunk in chunks if chunk.tool_call_delta is not None]
    assert [(d.position, d.id, d.name, d.arguments) for d in deltas] == [
        (0, "call_2_0", "a", ""),
        (0, None, None, "{"),
        (0, None, None, "}"),
        (1, "mine", "b", ""),
        (1, None, None, '{"x"'),
        (1, None, None, ": 1}"),
    ]
    assert chunks[-1].tool_calls == (
        ToolCall(id="call_2_0", name="a", arguments="{}"),
        ToolCall(id="mine", name="b", arguments='{"x": 1}'),
    )
    assert chunks[-1].finish_reason == "tool_calls"
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))


def test_the_stores_keep_runs_and_results(tmp_path: Path) -> None:
    results = ToolResults(tmp_path / "results.sqlite3")
    results.put("k", "first")
    results.put("k", "second")  # the first result stands
    assert (results.get("k"), results.get("other")) == ("first", None)
    results.close()
    store = RunStore(tmp_path / "runs")
    with pytest.raises(RunNotFoundError, match="no run abc in"):
        store.load("abc")
    with pytest.raises(RunNotFoundError, match="is not a run id"):
        store.path("a/b")
    assert not store.exists("abc")


async def test_streamed_tool_calls_pass_through_the_resilient_client() -> None:
    mock = MockLLM([CallTool("lookup", {"order_id": "A1"})])
    client = resilient_client(
        {"mock": mock},
        clock=FakeClock(),
        pricing=flat_prices([ModelTarget(provider="mock", model="m")]),
    )
    request = LLMRequest(model="m", messages=(Message(role="user", content="Where is A1?"),))

    chunks = [chunk async for chunk in client.stream(request)]

    assert chunks[-1].tool_calls == (
        ToolCall(id="call_1_0", name="lookup", arguments='{"order_id": "A1"}'),
    )
    assert chunks[-1].finish_reason == "tool_calls"
    assert sum(1 for chunk in chunks if chunk.tool_call_delta is not None) == 3
