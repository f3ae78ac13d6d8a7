"""What every command line of a project shares: the global options, loading the configuration,
the offline note, reading untrusted input, and one exit code and one line per kind of failure."""

from __future__ import annotations

import io
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from airuntime.cli.exits import ExitCode, fail
from airuntime.cli.support import (
    PROVIDER_ENV,
    GlobalOptions,
    exit_code_for,
    exits_on_known_errors,
    global_options,
    load_or_exit,
    offline_note,
    one_line,
    progress_bar,
    read_text,
    set_global_options,
    wants_json,
)
from airuntime.errors import (
    ConfigurationError,
    ContentFilteredError,
    ContextLengthExceededError,
    LLMError,
    ServerError,
)
from airuntime.guardrails import InputRejectedError
from airuntime.model.mock import MockScriptExhaustedError
from airuntime.prompts import PromptInputError, PromptLoadError, PromptProblem
from airuntime.resilience.budget import BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, TargetFailure, UnknownCostError
from airuntime.structured import StructuredOutputError
from airuntime.types import ModelTarget, Usage

runner = CliRunner()
TARGET = ModelTarget(provider="mock", model="m")
OTHER = ModelTarget(provider="other", model="n")


def refused(target: ModelTarget) -> TargetFailure:
    error = ContentFilteredError("declined", provider=target.provider, model=target.model)
    return TargetFailure(target, 1, error.kind, error)


def too_long(target: ModelTarget) -> TargetFailure:
    error = ContextLengthExceededError("too long", provider=target.provider, model=target.model)
    return TargetFailure(target, 1, error.kind, error)


@pytest.fixture(autouse=True)
def provider_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """--provider sets LLM_PROVIDER for the process: undo it after each test."""
    monkeypatch.setenv(PROVIDER_ENV, "unset")
    monkeypatch.delenv(PROVIDER_ENV)


def options_app() -> typer.Typer:
    """A program with the global options, as a project's root callback declares them."""
    app = typer.Typer()

    @app.callback()
    def root(
        ctx: typer.Context,
        provider: Annotated[str | None, typer.Option()] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        set_global_options(ctx, provider=provider, as_json=as_json)

    @app.command()
    def show(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        options = global_options(ctx)
        typer.echo(f"{options.provider} {wants_json(ctx, as_json)} {os.environ.get(PROVIDER_ENV)}")

    return app


# -- global options -------------------------------------------------------------------------


def test_without_global_options_nothing_is_chosen() -> None:
    result = runner.invoke(options_app(), ["show"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "None False None\n"


def test_provider_is_kept_for_the_commands_and_set_for_the_process() -> None:
    result = runner.invoke(options_app(), ["--provider", "openai", "show"])

    assert result.stdout == "openai False openai\n"
    assert os.environ[PROVIDER_ENV] == "openai"


@pytest.mark.parametrize("arguments", [["--json", "show"], ["show", "--json"]])
def test_json_may_be_asked_of_the_program_or_of_the_command(arguments: list[str]) -> None:
    result = runner.invoke(options_app(), arguments)

    assert result.stdout == "None True None\n"


def test_a_program_without_the_root_callback_has_the_default_options() -> None:
    app = typer.Typer()

    @app.command()
    def show(ctx: typer.Context) -> None:
        typer.echo(repr(global_options(ctx)))

    @app.command()
    def other() -> None:
        """A second command, so `show` is a sub-command."""

    result = runner.invoke(app, ["show"])

    assert result.stdout == f"{GlobalOptions()!r}\n"
    assert GlobalOptions() == GlobalOptions(provider=None, as_json=False)


# -- exits ----------------------------------------------------------------------------------


def test_the_exit_codes_are_a_contract() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "BAD_INPUT": 2,
        "CONFIGURATION_ERROR": 3,
        "INVALID_PROMPTS": 4,
        "PROMPTS_LOCK_OUT_OF_DATE": 5,
        "PROVIDER_UNAVAILABLE": 6,
        "BUDGET_EXCEEDED": 7,
        "INVALID_OUTPUT": 8,
        "EVAL_REGRESSION": 9,
        "MODEL_REFUSED": 10,
        "CONTEXT_LENGTH_EXCEEDED": 11,
        "AGENT_STOPPED": 12,
    }


def test_fail_prints_one_error_line_and_returns_the_exit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    exit_ = fail("the thing is wrong: fix it.", ExitCode.INVALID_OUTPUT)

    assert isinstance(exit_, typer.Exit)
    assert exit_.exit_code == 8
    assert capsys.readouterr() == ("", "error: the thing is wrong: fix it.\n")


def test_load_or_exit_returns_what_was_loaded() -> None:
    assert load_or_exit(lambda: 42) == 42


def test_bad_configuration_exits_3_with_its_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def load() -> int:
        raise ConfigurationError("invalid configuration: MAX_INPUT_CHARS must be positive")

    with pytest.raises(typer.Exit) as raised:
        load_or_exit(load)

    assert raised.value.exit_code == ExitCode.CONFIGURATION_ERROR
    assert capsys.readouterr().err == (
        "error: invalid configuration: MAX_INPUT_CHARS must be positive\n"
    )


def test_load_or_exit_lets_a_bug_through() -> None:
    def load() -> int:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        load_or_exit(load)


# -- the offline note -----------------------------------------------------------------------


def test_the_offline_note_says_why_no_real_model_is_called() -> None:
    assert offline_note("mock", ["OPENAI_API_KEY"]) == (
        "note: running offline on the mock provider (LLM_PROVIDER=mock)."
    )
    assert offline_note("auto", []) == (
        "note: running offline on the mock provider (this project has no real provider)."
    )
    assert offline_note("auto", ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]) == (
        "note: no API key is set (OPENAI_API_KEY or ANTHROPIC_API_KEY), so this runs offline "
        "on the mock provider."
    )


# -- reading untrusted input ----------------------------------------------------------------


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> io.BytesIO:
    """Standard input as bytes the test writes before reading."""
    data = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(data, encoding="utf-8"))
    return data


def test_a_file_is_read_as_utf_8(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_bytes("Grüße, 東京\n".encode())

    assert read_text(str(tmp_path / "note.txt")) == "Grüße, 東京\n"


def test_dash_reads_standard_input(stdin: io.BytesIO) -> None:
    stdin.write("première ligne\n".encode())
    stdin.seek(0)

    assert read_text("-") == "première ligne\n"


def test_a_missing_file_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as raised:
        read_text("missing.txt")

    assert raised.value.exit_code == ExitCode.BAD_INPUT
    assert capsys.readouterr().err == "error: cannot read missing.txt: No such file or directory.\n"


def test_a_directory_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as raised:
        read_text(str(tmp_path))

    assert raised.value.exit_code == ExitCode.BAD_INPUT
    assert capsys.readouterr().err == f"error: cannot read {tmp_path}: Is a directory.\n"


def test_a_file_that_is_not_utf_8_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))

    with pytest.raises(typer.Exit) as raised:
        read_text(str(tmp_path / "latin1.txt"))

    assert raised.value.exit_code == ExitCode.BAD_INPUT
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'latin1.txt'} is not UTF-8 text: convert it first.\n"
    )


def test_standard_input_that_is_not_utf_8_is_bad_input(
    stdin: io.BytesIO, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin.write(b"\xff\xfe")
    stdin.seek(0)

    with pytest.raises(typer.Exit) as raised:
        read_text("-")

    assert raised.value.exit_code == ExitCode.BAD_INPUT
    assert capsys.readouterr().err == "error: standard input is not UTF-8 text: convert it first.\n"


# -- one exit code and one line per kind of failure -----------------------------------------


def problem(message: str) -> PromptProblem:
    return PromptProblem(file="prompts/x/1.0.0.yaml", field="model", message=message)


def structured_error() -> StructuredOutputError:
    return StructuredOutputError(
        "x@1.0.0", "{", ["not valid JSON"], attempts=2, repairs=1, usage=Usage(), cost=Decimal(0)
    )


KNOWN_FAILURES: list[tuple[BaseException, ExitCode]] = [
    (InputRejectedError("the text is empty: give some text to work on."), ExitCode.BAD_INPUT),
    (PromptInputError("x@1.0.0: text: field required"), ExitCode.BAD_INPUT),
    (ConfigurationError("OPENAI_API_KEY is not set"), ExitCode.CONFIGURATION_ERROR),
    (UnknownCostError(TARGET), ExitCode.CONFIGURATION_ERROR),
    (PromptLoadError([problem("unknown provider")]), ExitCode.INVALID_PROMPTS),
    (
        BudgetExceeded("per-call", Decimal("0.01"), Decimal(0), Decimal("0.02")),
        ExitCode.BUDGET_EXCEEDED,
    ),
    (structured_error(), ExitCode.INVALID_OUTPUT),
    (ServerError("boom", provider="mock", model="m"), ExitCode.PROVIDER_UNAVAILABLE),
    (ContentFilteredError("no", provider="mock", model="m"), ExitCode.MODEL_REFUSED),
    (
        ContextLengthExceededError("long", provider="mock", model="m"),
        ExitCode.CONTEXT_LENGTH_EXCEEDED,
    ),
    (
        AllTargetsFailedError([TargetFailure(TARGET, 3, "server_error")]),
        ExitCode.PROVIDER_UNAVAILABLE,
    ),
    (AllTargetsFailedError([refused(TARGET)]), ExitCode.MODEL_REFUSED),
    (
        AllTargetsFailedError([too_long(TARGET), TargetFailure(OTHER, 0, "not_configured")]),
        ExitCode.CONTEXT_LENGTH_EXCEEDED,
    ),
    (
        AllTargetsFailedError([refused(TARGET), too_long(OTHER)]),
        ExitCode.PROVIDER_UNAVAILABLE,
    ),
]


@pytest.mark.parametrize(("error", "code"), KNOWN_FAILURES)
def test_each_known_failure_has_its_exit_code(error: BaseException, code: ExitCode) -> None:
    assert exit_code_for(error) == code


@pytest.mark.parametrize(
    "error", [RuntimeError("bug"), KeyError("x"), MockScriptExhaustedError("no step left")]
)
def test_a_bug_has_no_exit_code(error: BaseException) -> None:
    assert exit_code_for(error) is None


def test_one_line_joins_a_message_onto_one_line() -> None:
    assert one_line(ValueError("first line\n  second\tline  ")) == "first line second line"
    assert one_line(LLMError("down", provider="p", model="m")) == "p/m: llm_error: down"


def test_one_line_names_what_every_target_of_a_chain_failed_with() -> None:
    servers = AllTargetsFailedError(
        [TargetFailure(TARGET, 3, "server_error", ServerError("down", provider="mock", model="m"))]
    )
    mixed = AllTargetsFailedError([refused(TARGET), too_long(OTHER)])

    assert one_line(servers) == (
        "ServerError: the only model target failed: mock/m: server_error after 3 attempts (down)"
    )
    assert one_line(mixed).startswith("all 2 model targets failed: mock/m: content_filtered")


def test_one_line_says_what_to_do_about_a_refusal_or_a_prompt_too_long() -> None:
    refusal = AllTargetsFailedError([refused(TARGET), TargetFailure(OTHER, 0, "not_configured")])

    assert one_line(refusal) == (
        "the model refused the request (ContentFilteredError): all 2 model targets failed: "
        "mock/m: content_filtered after 1 attempt (declined); other/n: not_configured. To fix: "
        "rephrase the input, or add a fallback model with another content policy."
    )
    assert one_line(
        ContextLengthExceededError("8,192 tokens at most", provider="p", model="m")
    ) == (
        "the input does not fit the model's context window (ContextLengthExceededError): p/m: "
        "context_length_exceeded: 8,192 tokens at most. To fix: shorten it, lower max_tokens, "
        "or add a fallback model with a larger window."
    )


def test_one_line_names_the_first_bad_prompt_file_and_counts_the_others() -> None:
    one = PromptLoadError([problem("unknown   provider\n'x'")])
    three = PromptLoadError([problem("unknown provider 'x'"), problem("b"), problem("c")])

    assert one_line(one) == "invalid prompt file: prompts/x/1.0.0.yaml: model: unknown provider 'x'"
    assert one_line(three) == (
        "invalid prompt file: prompts/x/1.0.0.yaml: model: unknown provider 'x' "
        "(and 2 more: run `prompts check`)"
    )


@pytest.mark.parametrize(("error", "code"), KNOWN_FAILURES)
def test_a_known_failure_exits_with_its_code_and_one_line(
    error: BaseException, code: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as raised, exits_on_known_errors():
        raise error

    assert raised.value.exit_code == code
    assert capsys.readouterr().err == f"error: {one_line(error)}\n"


def test_a_bug_goes_through_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    bug = RuntimeError("a bug")

    with pytest.raises(RuntimeError) as raised, exits_on_known_errors():
        raise bug

    assert raised.value is bug
    assert capsys.readouterr().err == ""


def test_nothing_happens_without_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with exits_on_known_errors():
        done = True

    assert done
    assert capsys.readouterr() == ("", "")


# -- the progress bar -----------------------------------------------------------------------


def test_the_progress_bar_is_on_stderr_and_none_for_a_single_item() -> None:
    single, many, kept = progress_bar(1), progress_bar(3), progress_bar(3, transient=False)

    assert (single.disable, many.disable) == (True, False)
    assert single.console.stderr
    assert many.console.stderr
    assert (many.live.transient, kept.live.transient) == (True, False)
