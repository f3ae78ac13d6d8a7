"""What the feature, review and eval commands share: the global options (`--provider`,
`--json`), reading untrusted input, the offline note, and one exit code per kind of failure."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

from {{ package_name }}.exits import ExitCode, fail
from {{ package_name }}.settings import (
    ConfigurationError,
    ProviderName,
    Settings,
    load_settings,
)

PROVIDER_ENV = "LLM_PROVIDER"
OFFLINE = ("auto", "mock")
STDIN = "-"


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


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigurationError as error:
        raise fail(str(error), ExitCode.CONFIGURATION_ERROR) from None


def offline_note(settings: Settings) -> str:
    """The one line saying that no real model is being called, and how to call one."""
    if settings.llm_provider == "mock":
        return "note: running offline on the mock provider (LLM_PROVIDER=mock)."
    keys = [f"{name.upper()}_API_KEY" for name in get_args(ProviderName) if name not in OFFLINE]
    if not keys:
        return "note: running offline on the mock provider (this project has no real provider)."
    return (
        f"note: no API key is set ({' or '.join(keys)}), so this runs offline on the mock provider."
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
    from {{ package_name }}.guardrails import InputRejectedError
    from {{ package_name }}.llm.budget import BudgetExceeded
    from {{ package_name }}.llm.chain import UnknownCostError
    from {{ package_name }}.llm.errors import LLMError
    from {{ package_name }}.llm.structured import StructuredOutputError
    from {{ package_name }}.prompts import PromptInputError, PromptLoadError

    if isinstance(error, InputRejectedError | PromptInputError):
        return ExitCode.BAD_INPUT
    if isinstance(error, ConfigurationError | UnknownCostError):
        return ExitCode.CONFIGURATION_ERROR
    if isinstance(error, PromptLoadError):
        return ExitCode.INVALID_PROMPTS
    if isinstance(error, BudgetExceeded):
        return ExitCode.BUDGET_EXCEEDED
    if isinstance(error, StructuredOutputError):
        return ExitCode.INVALID_OUTPUT
    if isinstance(error, LLMError):
        return ExitCode.PROVIDER_UNAVAILABLE
    return None


def one_line(error: BaseException) -> str:
    from {{ package_name }}.prompts import PromptLoadError

    if isinstance(error, PromptLoadError):
        more = len(error.problems) - 1
        first = " ".join(str(error.problems[0]).split())
        return f"invalid prompt file: {first}" + (
            f" (and {more} more: run `prompts check`)" if more else ""
        )
    return " ".join(str(error).split())


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
