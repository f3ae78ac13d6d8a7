"""`prompts ...` commands: list, show, render, check and lock the prompt files."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from airuntime.cli.exits import ExitCode
from airuntime.errors import ConfigurationError
from airuntime.prompts.errors import (
    PromptInputError,
    PromptLoadError,
    PromptLookupError,
    PromptRenderError,
)
from airuntime.prompts.lock import PromptLockError, check_lock, write_lock
from airuntime.prompts.prompt import Prompt
from airuntime.prompts.registry import PromptRegistry
from airuntime.prompts.rendered import PromptTarget, RenderedPrompt
from airuntime.prompts.rollout import FileEdit, promote, rollback, write

ExitName = Literal[
    "BAD_INPUT", "CONFIGURATION_ERROR", "INVALID_PROMPTS", "PROMPTS_LOCK_OUT_OF_DATE"
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LabelOption = Annotated[
    str | None, typer.Option("--label", help="Pick the version carrying this label.")
]
RefArgument = Annotated[
    str, typer.Argument(help="ID or ID@VERSION; the latest release by default.")
]
InputsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        help="An input as name=value (repeat it); JSON for non-string inputs, "
        'e.g. labels=\'["bug", "billing"]\'.',
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Accept a changed prompt under its old version (avoid: bump it)."),
]


@dataclass(frozen=True, slots=True)
class PromptSetup:
    """The project's prompts: how to load (and check) its registry, and where its lock is."""

    load_registry: Callable[[], PromptRegistry]
    lock_path: Path


def prompts_app(setup: Callable[[], PromptSetup]) -> typer.Typer:
    """The `prompts` commands over the project's prompt files. `setup` reads the project's
    settings when a command runs (a ConfigurationError exits with 3)."""
    app = typer.Typer(
        name="prompts",
        help="List, show, render, check, lock, promote and roll back the prompt files.",
        no_args_is_help=True,
    )

    @app.command("list")
    def list_command(as_json: JsonOption = False) -> None:
        """A table of every prompt version: id, version, labels and content hash."""
        list_prompts(_load(setup)[1], as_json=as_json)

    @app.command("show")
    def show_command(
        ref: RefArgument, label: LabelOption = None, as_json: JsonOption = False
    ) -> None:
        """Show one prompt version: model, fallbacks, schemas and message templates."""
        show_prompt(_load(setup)[1], ref, label=label, as_json=as_json)

    @app.command("render")
    def render_command(
        ref: RefArgument,
        inputs: InputsOption = None,
        label: LabelOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Render a prompt with the given inputs and print its messages."""
        render_prompt(_load(setup)[1], ref, inputs or [], label=label, as_json=as_json)

    @app.command("check")
    def check_command() -> None:
        """Fail when a prompt changed without a version bump, or the lock is out of date."""
        check_prompts(*_load(setup))

    @app.command("lock")
    def lock_command(force: ForceOption = False) -> None:
        """Rewrite the lock file from the prompt files."""
        lock_prompts(*_load(setup), force=force)

    @app.command("promote")
    def promote_command(
        prompt_id: Annotated[str, typer.Argument(help="The prompt's id.")],
        version: Annotated[str, typer.Argument(help="The version that becomes production.")],
    ) -> None:
        """Make VERSION production (the old one is labelled previous, for rollback): a change
        to the prompt files' labels, which keeps the lock valid."""
        registry = _load(setup)[1]
        _apply(setup, lambda: promote(registry, prompt_id, version))

    @app.command("rollback")
    def rollback_command(
        prompt_id: Annotated[str, typer.Argument(help="The prompt's id.")],
    ) -> None:
        """Make the previous production version production again (a label change)."""
        registry = _load(setup)[1]
        _apply(setup, lambda: rollback(registry, prompt_id))

    return app


def _apply(setup: Callable[[], PromptSetup], plan: Callable[[], list[FileEdit]]) -> None:
    """Write the label moves, then load and check everything again: the files still load and
    the lock still matches, or the command fails saying why."""
    try:
        edits = plan()
    except PromptLookupError as error:
        raise _fail([str(error)], "BAD_INPUT") from None
    write(edits)
    for edit in edits:
        typer.echo(f"{edit.ref}: labels [{', '.join(edit.labels)}] ({edit.path})")
    check_prompts(*_load(setup))
    typer.echo("Review the change (git diff) and commit it: the lock is unchanged.")


def _fail(problems: Sequence[str], code: ExitName) -> typer.Exit:
    """One `error:` line per problem on stderr, and the exit to raise."""
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    return typer.Exit(code=int(ExitCode[code]))


def _load(setup: Callable[[], PromptSetup]) -> tuple[Path, PromptRegistry]:
    try:
        loaded = setup()
        return loaded.lock_path, loaded.load_registry()
    except ConfigurationError as error:
        raise _fail([str(error)], "CONFIGURATION_ERROR") from None
    except PromptLoadError as error:
        raise _fail([str(problem) for problem in error.problems], "INVALID_PROMPTS") from None


def _lookup(registry: PromptRegistry, ref: str, label: str | None) -> Prompt:
    prompt_id, _, version = ref.partition("@")
    try:
        return registry.get(prompt_id, version=version or None, label=label)
    except PromptLookupError as error:
        raise _fail([str(error)], "BAD_INPUT") from None


def list_prompts(registry: PromptRegistry, *, as_json: bool) -> None:
    """A table of every prompt version: id, version, labels and content hash."""
    if as_json:
        rows = [
            {
                "id": prompt.id,
                "version": prompt.version,
                "latest": registry.get(prompt.id) is prompt,
                "labels": list(prompt.labels),
                "hash": prompt.content_hash,
                "file": prompt.file,
            }
            for prompt in registry
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = [("ID", "VERSION", "LABELS", "HASH")]
    for prompt in registry:
        latest = " (latest)" if registry.get(prompt.id) is prompt else ""
        labels = ", ".join(prompt.labels) or "-"
        table.append((prompt.id, prompt.version + latest, labels, prompt.content_hash[:19]))
    widths = [max(len(line[column]) for line in table) for column in range(3)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)]
        typer.echo("  ".join([*cells, line[3]]))


def show_prompt(registry: PromptRegistry, ref: str, *, label: str | None, as_json: bool) -> None:
    """Show one prompt version: model, fallbacks, schemas and message templates."""
    prompt = _lookup(registry, ref, label)
    described = describe(prompt)
    if as_json:
        typer.echo(json.dumps(described, indent=2))
        return
    typer.echo(f"{prompt.ref}  {prompt.content_hash}")
    lines = {
        "file": prompt.file,
        "description": " ".join(prompt.description.split()),
        "labels": ", ".join(prompt.labels) or "-",
        "model": _target_text(prompt.target),
        "fallbacks": ", ".join(_target_text(target) for target in prompt.fallbacks) or "-",
        "input": json.dumps(described["input"]),
        "output": json.dumps(described["output"]),
    }
    for name, text in lines.items():
        typer.echo(f"{name + ':':<13}{text}")
    for message in prompt.messages:
        typer.echo(f"--- {message.role} ---")
        typer.echo(message.source.rstrip("\n"))


def render_prompt(
    registry: PromptRegistry,
    ref: str,
    inputs: Sequence[str],
    *,
    label: str | None,
    as_json: bool,
) -> None:
    """Render a prompt with the given inputs and print its messages."""
    prompt = _lookup(registry, ref, label)
    values = parse_inputs(inputs, prompt)
    try:
        rendered = prompt.render(values)
    except PromptInputError as error:
        raise _fail([str(error)], "BAD_INPUT") from None
    except PromptRenderError as error:
        raise _fail([str(error)], "INVALID_PROMPTS") from None
    if as_json:
        typer.echo(json.dumps(rendered_as_json(rendered), indent=2))
        return
    for message in rendered.messages:
        typer.echo(f"--- {message.role} ---")
        typer.echo(message.content.rstrip("\n"))


def check_prompts(lock_path: Path, registry: PromptRegistry) -> None:
    """Fail when a prompt changed without a version bump, or the lock is out of date."""
    try:
        problems = check_lock(registry, lock_path)
    except PromptLockError as error:
        raise _fail(error.problems, "PROMPTS_LOCK_OUT_OF_DATE") from None
    if problems:
        raise _fail(problems, "PROMPTS_LOCK_OUT_OF_DATE")
    typer.echo(f"{lock_path}: {len(registry)} prompt versions match their hashes.")


def lock_prompts(lock_path: Path, registry: PromptRegistry, *, force: bool) -> None:
    """Rewrite the lock file from the prompt files."""
    try:
        update = write_lock(registry, lock_path, force=force)
    except PromptLockError as error:
        raise _fail(error.problems, "PROMPTS_LOCK_OUT_OF_DATE") from None
    typer.echo(
        f"{lock_path}: {update.total} prompt versions locked "
        f"({len(update.added)} added, {len(update.changed)} changed, "
        f"{len(update.removed)} removed)."
    )


def _target_text(target: PromptTarget) -> str:
    params = target.params.model_dump(exclude_defaults=True)
    settings = ", ".join(f"{name}={value}" for name, value in params.items())
    return f"{target}{f' ({settings})' if settings else ''}"


def parse_inputs(pairs: Sequence[str], prompt: Prompt) -> dict[str, Any]:
    """`name=value` pairs to inputs: strings as given, other declared types parsed as JSON."""
    properties = prompt.input_schema.get("properties", {})
    values: dict[str, Any] = {}
    for pair in pairs:
        name, separator, raw = pair.partition("=")
        if not separator or not name:
            raise _fail(
                [f"--input {pair!r} is not name=value: write e.g. --input text=hello"], "BAD_INPUT"
            )
        declared = properties.get(name, {})
        types = declared.get("type", "string") if isinstance(declared, dict) else "string"
        if "string" in ([types] if isinstance(types, str) else types):
            values[name] = raw
            continue
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw  # the schema check names the input and the expected type
    return values


def describe(prompt: Prompt) -> dict[str, Any]:
    """A prompt version as plain JSON values."""
    return {
        "id": prompt.id,
        "version": prompt.version,
        "hash": prompt.content_hash,
        "file": prompt.file,
        "origin": prompt.origin,
        "description": prompt.description,
        "labels": list(prompt.labels),
        "model": prompt.target.model_dump(mode="json"),
        "fallbacks": [target.model_dump(mode="json") for target in prompt.fallbacks],
        "input": dict(prompt.input_schema),
        "output": prompt.output.model_dump(mode="json"),
        "metadata": dict(prompt.metadata),
        "messages": [
            {"role": message.role, "template": message.source} for message in prompt.messages
        ],
    }


def rendered_as_json(rendered: RenderedPrompt) -> dict[str, Any]:
    return {
        "prompt": rendered.ref,
        "hash": rendered.content_hash,
        "target": rendered.target.model_dump(mode="json"),
        "fallbacks": [target.model_dump(mode="json") for target in rendered.fallbacks],
        "output": rendered.output.model_dump(mode="json"),
        "messages": [message.model_dump(mode="json") for message in rendered.messages],
    }
