"""`ask`: model calls from the command line, through the same resilient stack features use.

It tries a provider, an OpenAI-compatible local server (OPENAI_BASE_URL) or a chaos drill on
the mock (MOCK_FAULTS) without writing code: `--times 200` sends the prompt 200 times and
counts how each call ended: answered first time, after retries, by a fallback, or failed.
`--raw` skips the resilience layer to see what the bare provider does.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from airuntime.model.client import LLMClient
    from airuntime.resilience.client import ResilientClient
    from airuntime.types import LLMRequest, LLMResponse

# Used when --model is not given: cheap current models (any name works for the mock).
DEFAULT_MODELS = {
    "mock": "mock-model",
    "openai": "gpt-5-mini",
    "anthropic": "claude-haiku-4-5",
}


@dataclass(frozen=True, slots=True)
class AskSetup:
    """What `ask` calls: the configured provider, through the resilient stack or bare."""

    provider: str
    resilient: Callable[[], ResilientClient]
    bare: Callable[[], LLMClient]


def ask_command(setup: Callable[[], AskSetup]) -> Callable[..., None]:
    """The `ask` command of a project; `setup` reads its settings (and configures its
    observability) when the command runs."""

    def ask_prompt(
        prompt: PromptArgument,
        model: ModelOption = None,
        system: SystemOption = None,
        stream: StreamOption = False,
        as_json: JsonOption = False,
        times: TimesOption = 1,
        raw: RawOption = False,
    ) -> None:
        """Send a prompt to the configured provider (LLM_PROVIDER) and print the answer."""
        ask(
            setup,
            prompt,
            model=model,
            system=system,
            stream=stream,
            as_json=as_json,
            times=times,
            raw=raw,
        )

    return ask_prompt


PromptArgument = Annotated[str, typer.Argument(help="The user message to send.")]
ModelOption = Annotated[
    str | None, typer.Option(help="Model name; default: a cheap model of the provider.")
]
SystemOption = Annotated[str | None, typer.Option(help="A system message to send first.")]
StreamOption = Annotated[bool, typer.Option("--stream", help="Print the answer as it streams.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Ask for a JSON object.")]
TimesOption = Annotated[
    int, typer.Option(min=1, max=10_000, help="Send it this many times; count the outcomes.")
]
RawOption = Annotated[
    bool, typer.Option("--raw", help="Call the bare provider: no retries, no fallbacks.")
]


def ask(
    setup: Callable[[], AskSetup],
    prompt: str,
    *,
    model: str | None,
    system: str | None,
    stream: bool,
    as_json: bool,
    times: int,
    raw: bool,
) -> None:
    """Send `prompt` and print the answer, or with `times` > 1 count how the calls ended."""
    # The model stack is imported here, not at the top: every start of the command line
    # (`--version`, `prompts check`...) would otherwise pay for it.
    import asyncio

    from airuntime.cli.support import exits_on_known_errors
    from airuntime.types import LLMRequest, Message, OutputFormat

    with exits_on_known_errors():  # one line and its exit code for every known failure
        chosen = setup()
        client: LLMClient = chosen.bare() if raw else chosen.resilient()
    provider = chosen.provider
    messages = [Message(role="user", content=prompt)]
    if system is not None:
        messages.insert(0, Message(role="system", content=system))
    request = LLMRequest(
        model=model or DEFAULT_MODELS.get(provider, "default"),
        messages=tuple(messages),
        output=OutputFormat(type="json" if as_json else "text"),
    )
    with exits_on_known_errors():
        if times == 1:
            asyncio.run(_answer_once(client, request, stream=stream))
            return
        outcomes = asyncio.run(_count_outcomes(client, request, times))
    summary = ", ".join(f"{count} {kind}" for kind, count in outcomes.most_common())
    typer.echo(f"{times} calls to {provider}/{request.model}: {summary}")


async def _answer_once(client: LLMClient, request: LLMRequest, *, stream: bool) -> None:
    from airuntime.resilience.client import ResilientClient

    try:
        if stream:
            async for chunk in client.stream(request):
                typer.echo(chunk.text, nl=False)
            typer.echo()
        elif isinstance(client, ResilientClient):
            typer.echo((await client.run(request, use_cache=False)).response.text)
        else:
            typer.echo((await client.complete(request)).text)
    finally:
        await client.aclose()


def _outcome(request: LLMRequest, response: LLMResponse) -> str:
    """The answer's shape: ok, the finish reason when not "stop", or invalid_json."""
    if response.finish_reason != "stop":
        return response.finish_reason
    if request.output.type != "text":
        try:
            json.loads(response.text)
        except json.JSONDecodeError:
            return "invalid_json"
    return "ok"


async def _one(client: LLMClient, request: LLMRequest) -> str:
    """How one call ended; for the resilient client, also how it got there."""
    from airuntime.resilience.client import ResilientClient

    if not isinstance(client, ResilientClient):
        return _outcome(request, await client.complete(request))
    result = await client.run(request, use_cache=False)
    shape = _outcome(request, result.response)
    if shape != "ok":
        return shape
    if result.fallback_index:
        return "ok_by_fallback"
    return "ok_after_retry" if result.attempts > 1 else "ok"


async def _count_outcomes(client: LLMClient, request: LLMRequest, times: int) -> Counter[str]:
    from airuntime.errors import LLMError
    from airuntime.types import new_request_id

    outcomes: Counter[str] = Counter()
    try:
        for _ in range(times):
            fresh = request.model_copy(update={"request_id": new_request_id()})
            try:
                outcomes[await _one(client, fresh)] += 1
            except LLMError as error:
                outcomes[error.kind] += 1
    finally:
        await client.aclose()
    return outcomes
