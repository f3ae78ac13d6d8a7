"""Exit codes of the command line, and the one-line failure every command reports with.

Distinct codes let scripts and schedulers branch on what went wrong; 1 stays for bugs (an
unexpected exception), 2 is also what the argument parser uses for bad usage.
"""

from __future__ import annotations

from enum import IntEnum

import typer


class ExitCode(IntEnum):
    OK = 0
    BAD_INPUT = 2
    CONFIGURATION_ERROR = 3
    INVALID_PROMPTS = 4
    PROMPTS_LOCK_OUT_OF_DATE = 5
    PROVIDER_UNAVAILABLE = 6
    BUDGET_EXCEEDED = 7
    INVALID_OUTPUT = 8
    EVAL_REGRESSION = 9
    MODEL_REFUSED = 10  # the model declined (content policy), on every target tried
    CONTEXT_LENGTH_EXCEEDED = 11  # the input does not fit the model's context window
    AGENT_STOPPED = 12  # an agent run stopped at a limit: steps, repeats, tool errors


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print `error: <message>` as one line on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=int(code))
