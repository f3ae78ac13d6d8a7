"""`prompts ...` commands: list, show, render, check and lock the prompt files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import typer

from {{ package_name }}.exits import ExitCode
from {{ package_name }}.prompts.errors import (
    PromptInputError,
    PromptLoadError,
    PromptLookupError,
    PromptRenderError,
)
from {{ package_name }}.prompts.lock import PromptLockError, check_lock, write_lock
from {{ package_name }}.prompts.prompt import Prompt
from {{ package_name }}.prompts.registry import PromptRegistry, load_registry
from {{ package_name }}.prompts.rendered import PromptTarget, RenderedPrompt
from {{ package_name }}.settings import ConfigurationError, Settings, load_settings

ExitName = Literal[
    "BAD_INPUT", "CONFIGURATION_ERROR", "INVALID_PROMPTS", "PROMPTS_LOCK_OUT_OF_DATE"
]

prompts_app = typer.Typer(
    name="prompts",
    help="List, show, render, check and lock the prompt files.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LabelOption = Annotated[
    str | None, typer.Option("--label", help="Pick the version carrying this label.")
]
RefArgument = Annotated[
    str, typer.Argument(help="ID or ID@VERSION; the latest release by default.")
]


def _fail(problems: Sequence[str], code: ExitName) -> typer.Exit:
    """One `error:` line per problem on stderr, and the exit to raise."""
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    return typer.Exit(code=int(ExitCode[code]))


def _load() -> tuple[Settings, PromptRegistry]:
    try:
        settings = load_settings()
    except ConfigurationError as error:
        raise _fail([str(error)], "CONFIGURATION_ERROR") from None
    try:
        return settings, load_registry(settings.prompts_dir)
    except PromptLoadError as error:
        raise _fail([str(problem) for problem in error.problems], "INVALID_PROMPTS") from None


def _lookup(registry: PromptRegistry, ref: str, label: str | None) -> Prompt:
    prompt_id, _, version = ref.partition("@")
    try:
        return registry.get(prompt_id, version=version or None, label=label)
    except PromptLookupError as error:
        raise _fail([str(error)], "BAD_INPUT") from None


@prompts_app.command("list")
def list_prompts(as_json: JsonOption = False) -> None:
    """A table of every prompt version: id, version, labels and content hash."""
    _, registry = _load()
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


@prompts_app.command("show")
def show_prompt(ref: RefArgument, label: LabelOption = None, as_json: JsonOption = False) -> None:
    """Show one prompt version: model, fallbacks, schemas and message templates."""
    _, registry = _load()
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


@prompts_app.command("render")
def render_prompt(
    ref: RefArgument,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            help="An input as name=value (repeat it); JSON for non-string inputs, "
            'e.g. labels=\'["bug", "billing"]\'.',
        ),
    ] = None,
    label: LabelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render a prompt with the given inputs and print its messages."""
    _, registry = _load()
    prompt = _lookup(registry, ref, label)
    values = parse_inputs(inputs or [], prompt)
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


@prompts_app.command("check")
def check_prompts() -> None:
    """Fail when a prompt changed without a version bump, or the lock is out of date."""
    settings, registry = _load()
    try:
        problems = check_lock(registry, settings.prompts_lock)
    except PromptLockError as error:
        raise _fail(error.problems, "PROMPTS_LOCK_OUT_OF_DATE") from None
    if problems:
        raise _fail(problems, "PROMPTS_LOCK_OUT_OF_DATE")
    typer.echo(f"{settings.prompts_lock}: {len(registry)} prompt versions match their hashes.")


@prompts_app.command("lock")
def lock_prompts(
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Accept a changed prompt under its old version (avoid: bump it)."
        ),
    ] = False,
) -> None:
    """Rewrite the lock file from the prompt files."""
    settings, registry = _load()
    try:
        update = write_lock(registry, settings.prompts_lock, force=force)
    except PromptLockError as error:
        raise _fail(error.problems, "PROMPTS_LOCK_OUT_OF_DATE") from None
    typer.echo(
        f"{settings.prompts_lock}: {update.total} prompt versions locked "
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
