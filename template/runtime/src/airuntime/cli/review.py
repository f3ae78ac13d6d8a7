"""`review list`: the results waiting for a person, newest first."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from airuntime.cli.support import load_or_exit, wants_json
from airuntime.review.queue import ReviewItem, ReviewQueue

EXCERPT_WIDTH = 48
LimitOption = Annotated[int, typer.Option(min=1, help="Show at most this many items.")]
FeatureOption = Annotated[
    str | None, typer.Option(help="Only the items of this feature (e.g. summarize).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON array.")]


def review_app(queue_path: Callable[[], Path]) -> typer.Typer:
    """The `review` commands over the queue at the project's REVIEW_QUEUE_PATH."""
    app = typer.Typer(
        name="review",
        help="The human review queue: low-confidence and degraded results.",
        no_args_is_help=True,
    )

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
    return (
        f"{item.time.strftime('%Y-%m-%d %H:%M:%S'):<19}  {item.feature:<10}  "
        f"{item.reason:<14}  {item.confidence:>4.2f}  {item.request_id:<32}  {excerpt}"
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
        f"{'time (UTC)':<19}  {'feature':<10}  {'reason':<14}  {'conf':>4}  "
        f"{'request id':<32}  input"
    )
    typer.echo(header)
    typer.echo("-" * (len(header) + EXCERPT_WIDTH))
    for item in shown:
        typer.echo(item_row(item))
    typer.echo(f"\n{len(shown)} of {len(chosen)} items waiting in {queue.path}.")
