"""`review list`: the results waiting for a person, newest first; `review approve ID` and
`review reject ID`: a person's decision on an agent's tool call that requires approval (the
project passes `on_decision`, which resumes the agent run that waits for it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from airuntime.cli.exits import ExitCode, fail
from airuntime.cli.support import load_or_exit, wants_json
from airuntime.review.queue import Decision, ReviewError, ReviewItem, ReviewQueue

EXCERPT_WIDTH = 48
LimitOption = Annotated[int, typer.Option(min=1, help="Show at most this many items.")]
FeatureOption = Annotated[
    str | None, typer.Option(help="Only the items of this feature (e.g. summarize).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON array.")]
ItemArgument = Annotated[str, typer.Argument(help="The item's id, as `review list` shows it.")]
NoteOption = Annotated[str, typer.Option(help="Why, for the record (and the agent).")]
OnDecision = Callable[[ReviewItem], None]


def review_app(
    queue_path: Callable[[], Path], on_decision: OnDecision | None = None
) -> typer.Typer:
    """The `review` commands over the queue at the project's REVIEW_QUEUE_PATH.

    `on_decision` runs after an approval or a rejection is recorded, with the decided item
    (the project's: it resumes the agent run the item belongs to)."""
    app = typer.Typer(
        name="review",
        help="The human review queue: low-confidence and degraded results, approvals.",
        no_args_is_help=True,
    )

    def record(item_id: str, decision: Decision, note: str) -> None:
        queue = ReviewQueue(load_or_exit(queue_path))
        try:
            item = queue.decide(item_id, decision, note=note)
        except ReviewError as error:
            raise fail(str(error), ExitCode.BAD_INPUT) from None
        typer.echo(f"{decision} {item.id}: {item.input_excerpt}")
        if on_decision is not None:
            on_decision(item)

    @app.command("approve")
    def approve(item_id: ItemArgument, note: NoteOption = "") -> None:
        """Approve a tool call waiting for approval; the agent run then resumes."""
        record(item_id, "approved", note)

    @app.command("reject")
    def reject(item_id: ItemArgument, note: NoteOption = "") -> None:
        """Reject a tool call waiting for approval; the agent is told, and goes on without it."""
        record(item_id, "rejected", note)

    @app.command("list")
    def list_items(
        ctx: typer.Context,
        limit: LimitOption = 20,
        feature: FeatureOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the results flagged for review (REVIEW_QUEUE_PATH), newest first."""
        show_items(
            ReviewQueue(load_or_exit(queue_path)),
            limit=limit,
            feature=feature,
            as_json=wants_json(ctx, as_json),
        )

    return app


def item_row(item: ReviewItem) -> str:
    """One line of the review table."""
    excerpt = item.input_excerpt
    if len(excerpt) > EXCERPT_WIDTH:
        excerpt = excerpt[: EXCERPT_WIDTH - 1] + "…"
    confidence = "-" if item.confidence is None else f"{item.confidence:.2f}"
    reason = item.reason if item.status == "pending" else f"{item.reason} ({item.status})"
    return (
        f"{item.time.strftime('%Y-%m-%d %H:%M:%S'):<19}  {item.feature:<10}  {reason:<17}  "
        f"{confidence:>4}  {item.id or '-':<12}  {item.request_id:<32}  {excerpt}"
    )


def show_items(queue: ReviewQueue, *, limit: int, feature: str | None, as_json: bool) -> None:
    """Print the newest `limit` items (of one feature), as a table or JSON."""
    items, skipped = queue.items()
    if skipped:
        lines = "1 line" if skipped == 1 else f"{skipped} lines"
        typer.echo(f"note: skipped {lines} of {queue.path} (not review items).", err=True)
    chosen = [item for item in reversed(items) if feature is None or item.feature == feature]
    shown = chosen[:limit]
    if as_json:
        typer.echo(json.dumps([item.model_dump(mode="json") for item in shown], indent=2))
        return
    if not shown:
        typer.echo(f"Nothing to review in {queue.path}.")
        return
    header = (
        f"{'time (UTC)':<19}  {'feature':<10}  {'reason':<17}  {'conf':>4}  {'id':<12}  "
        f"{'request id':<32}  input"
    )
    typer.echo(header)
    typer.echo("-" * (len(header) + EXCERPT_WIDTH))
    for item in shown:
        typer.echo(item_row(item))
    typer.echo(f"\n{len(shown)} of {len(chosen)} items waiting in {queue.path}.")
