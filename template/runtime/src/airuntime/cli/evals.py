"""`eval run` and `eval accept` on the command line.

Only the commands' options live here: the evaluation machinery (the model stack, the datasets,
the reports) is imported when a command runs, so the rest of the CLI starts fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from airuntime.cli.eval_commands import EvalSetup

FeatureOption = Annotated[
    list[str] | None,
    typer.Option("--feature", "-f", help="Only this feature (repeat for more); default: all."),
]
GateOption = Annotated[
    bool, typer.Option("--gate/--no-gate", help="Compare with the accepted baseline.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")]
RepeatOption = Annotated[
    int,
    typer.Option(
        "--repeat",
        "-k",
        min=1,
        help="Run each case k times and gate on pass^k (a case passes only if every run does).",
    ),
]
SummaryOption = Annotated[
    Path | None,
    typer.Option(
        "--summary",
        help="Append the before/after table (pass rate, cost, p95 per feature) to this file, "
        "e.g. $GITHUB_STEP_SUMMARY.",
    ),
]


def eval_app(setup: Callable[[str | None], EvalSetup]) -> typer.Typer:
    """The `eval` commands; `setup(provider)` builds the project's evaluation set-up (the
    provider given with --provider, or None for the offline mock)."""
    app = typer.Typer(
        name="eval",
        help="Evaluate the features on evals/<feature>.jsonl and gate on the accepted baseline.",
        no_args_is_help=True,
    )

    @app.command("run")
    def run_command(
        ctx: typer.Context,
        feature: FeatureOption = None,
        gate: GateOption = True,
        as_json: JsonOption = False,
        repeat: RepeatOption = 1,
        summary: SummaryOption = None,
    ) -> None:
        """Run every case, write reports/eval-<feature>.json and .md (and eval-latency.png),
        and fail (exit 9) when a metric regressed beyond its tolerance from the baseline."""
        from airuntime.cli import eval_commands

        eval_commands.run_command(
            ctx, setup, feature, gate=gate, as_json=as_json, repeat=repeat, summary=summary
        )

    @app.command("accept")
    def accept_command(feature: FeatureOption = None) -> None:
        """Accept the last run's figures (reports/eval-<feature>.json) as the baseline of their
        provider, after reviewing them."""
        from airuntime.cli import eval_commands

        eval_commands.accept_command(setup, feature)

    return app
