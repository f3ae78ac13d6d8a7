"""`eval run` and `eval accept` on the command line.

Only the commands' options live here: the evaluation machinery (the model stack, the datasets,
the reports) is imported when a command runs, so the rest of the CLI starts fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

eval_app = typer.Typer(
    name="eval",
    help="Evaluate the features on evals/<feature>.jsonl and gate on the accepted baseline.",
    no_args_is_help=True,
)
FeatureOption = Annotated[
    list[str] | None,
    typer.Option("--feature", "-f", help="Only this feature (repeat for more); default: all."),
]


@eval_app.command("run")
def run_command(
    ctx: typer.Context,
    feature: FeatureOption = None,
    gate: Annotated[
        bool, typer.Option("--gate/--no-gate", help="Compare with the accepted baseline.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Run every case, write reports/eval-<feature>.json and .md (and eval-latency.png), and
    fail (exit 9) when a metric regressed beyond its tolerance from the baseline."""
    from {{ package_name }}.evals import commands

    commands.run_command(ctx, feature, gate=gate, as_json=as_json)


@eval_app.command("accept")
def accept_command(feature: FeatureOption = None) -> None:
    """Accept the last run's figures (reports/eval-<feature>.json) as the baseline of their
    provider, after reviewing them."""
    from {{ package_name }}.evals import commands

    commands.accept_command(feature)
