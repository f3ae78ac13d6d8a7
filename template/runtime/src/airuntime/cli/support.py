"""What the command lines of a project share: the global options (`--provider`, `--json`),
loading the project's configuration, reading untrusted input, the offline note, and one exit
code per kind of failure."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

from airuntime.cli.exits import ExitCode, fail
from airuntime.errors import ConfigurationError

PROVIDER_ENV = "LLM_PROVIDER"
STDIN = "-"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    provider: str | None = None
    as_json: bool = False


def set_global_options(ctx: typer.Context, *, provider: str | None, as_json: bool) -> None:
    """Keep the root options for the sub-commands. `--provider` sets LLM_PROVIDER for the
    whole process, so every command (and every setting derived from it) sees it."""
    ctx.obj = GlobalOptions(provider=provider, as_json=as_json)
    if provider is not None:
        os.environ[PROVIDER_ENV] = provider


def global_options(ctx: typer.Context) -> GlobalOptions:
    root = ctx.find_root().obj
    return root if isinstance(root, GlobalOptions) else GlobalOptions()


def wants_json(ctx: typer.Context, local_flag: bool) -> bool:
    """`--json` given to the command or to the program."""
    return local_flag or global_options(ctx).as_json


def load_or_exit(load: Callable[[], T]) -> T:
    """What the project's `load` builds from its settings; bad configuration exits with one
    line (exit 3)."""
    try:
        return load()
    except ConfigurationError as error:
        raise fail(str(error), ExitCode.CONFIGURATION_ERROR) from None


def offline_note(provider_setting: str, key_variables: Sequence[str]) -> str:
    """The one line saying that no real model is being called, and how to call one.

    `provider_setting` is LLM_PROVIDER as configured; `key_variables` are the API key
    variables of the project's real providers."""
    if provider_setting == "mock":
        return "note: running offline on the mock provider (LLM_PROVIDER=mock)."
    if not key_variables:
        return "note: running offline on the mock provider (this project has no real provider)."
    return (
        f"note: no API key is set ({' or '.join(key_variables)}), so this runs offline on the "
        "mock provider."
    )


def read_text(source: str) -> str:
    """The text of a file, or of standard input for `-`; BAD_INPUT when it cannot be read."""
    name = "standard input" if source == STDIN else source
    try:
        data = sys.stdin.buffer.read() if source == STDIN else Path(source).read_bytes()
    except OSError as error:
        raise fail(f"cannot read {name}: {error.strerror}.", ExitCode.BAD_INPUT) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise fail(f"{name} is not UTF-8 text: convert it first.", ExitCode.BAD_INPUT) from None


def exit_code_for(error: BaseException) -> ExitCode | None:
    """The exit code of a failure a person can act on; None for a bug."""
    # Imported here: only a failing command pays for importing the model stack's errors.
    from airuntime.agents.store import RunNotFoundError
    from airuntime.errors import ContentFilteredError, ContextLengthExceededError, LLMError
    from airuntime.guardrails import InputRejectedError
    from airuntime.prompts import PromptInputError, PromptLoadError
    from airuntime.resilience.budget import BudgetExceeded
    from airuntime.resilience.chain import UnknownCostError
    from airuntime.retrieval.errors import DocumentError, StoreError
    from airuntime.structured import StructuredOutputError

    if isinstance(error, InputRejectedError | PromptInputError | RunNotFoundError | DocumentError):
        return ExitCode.BAD_INPUT
    if isinstance(error, ConfigurationError | UnknownCostError | StoreError):
        return ExitCode.CONFIGURATION_ERROR
    if isinstance(error, PromptLoadError):
        return ExitCode.INVALID_PROMPTS
    if isinstance(error, BudgetExceeded):
        return ExitCode.BUDGET_EXCEEDED
    if isinstance(error, StructuredOutputError):
        return ExitCode.INVALID_OUTPUT
    # A chain whose every tried target failed the same way is an instance of that error too.
    if isinstance(error, ContentFilteredError):
        return ExitCode.MODEL_REFUSED
    if isinstance(error, ContextLengthExceededError):
        return ExitCode.CONTEXT_LENGTH_EXCEEDED
    if isinstance(error, LLMError):
        return ExitCode.PROVIDER_UNAVAILABLE
    return None


# What a person can do about a model failure that is not transient.
_ADVICE = {
    "ContentFilteredError": (
        "the model refused the request (ContentFilteredError)",
        "rephrase the input, or add a fallback model with another content policy",
    ),
    "ContextLengthExceededError": (
        "the input does not fit the model's context window (ContextLengthExceededError)",
        "shorten it, lower max_tokens, or add a fallback model with a larger window",
    ),
}


def one_line(error: BaseException) -> str:
    """The failure as one line: what went wrong, named by its class where that is the cause
    (an exhausted chain is named after what every target failed with), and what to do."""
    from airuntime.errors import ContentFilteredError, ContextLengthExceededError
    from airuntime.prompts import PromptLoadError
    from airuntime.resilience.chain import AllTargetsFailedError

    if isinstance(error, PromptLoadError):
        more = len(error.problems) - 1
        first = " ".join(str(error.problems[0]).split())
        return f"invalid prompt file: {first}" + (
            f" (and {more} more: run `prompts check`)" if more else ""
        )
    text = " ".join(str(error).split())
    for cause in (ContentFilteredError, ContextLengthExceededError):
        if isinstance(error, cause):
            what, advice = _ADVICE[cause.__name__]
            return f"{what}: {text.rstrip('.')}. To fix: {advice}."
    if isinstance(error, AllTargetsFailedError) and error.cause is not None:
        return f"{type(error).__name__}: {text}"  # what every target failed with
    return text


@contextmanager
def exits_on_known_errors() -> Iterator[None]:
    """Turn every known failure into one line on stderr and its own exit code."""
    try:
        yield
    except Exception as error:
        code = exit_code_for(error)
        if code is None:
            raise
        raise fail(one_line(error), code) from None


def progress_bar(total: int, *, transient: bool = True) -> Progress:
    """A progress bar on stderr, so stdout stays the results alone; none for a single item."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    return RichProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=transient,
        disable=total == 1,
    )
