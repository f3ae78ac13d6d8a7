"""Prompt files to `Prompt` objects: find them, parse them and check everything in them.

Layout: `<root>/<id>/<version>.yaml` (or `.yml`). Roots are the project's packaged library, read
with importlib.resources so an installed wheel works, and the optional PROMPTS_DIR. Every problem
in every file is collected, each naming the file and the field, before anything is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import semver
import yaml
from jinja2 import TemplateSyntaxError, meta, nodes
from pydantic import BaseModel, ValidationError

from airuntime.prompts.errors import PromptProblem
from airuntime.prompts.prompt import (
    TEMPLATE_ENVIRONMENT,
    MessageTemplate,
    Prompt,
)
from airuntime.prompts.rendered import ModelParams, PromptTarget
from airuntime.prompts.schemas import Report, check_input, check_output
from airuntime.prompts.spec import (
    KNOWN_PROVIDERS,
    PROVIDERS_CONTEXT,
    InputSpec,
    MessageSpec,
    OutputSpec,
    ParamsSpec,
    PromptFile,
    TargetSpec,
    content_hash,
)

try:  # libyaml parses several times faster; PyYAML's wheels include it
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

PACKAGED_ORIGIN = "packaged"
OVERRIDE_ORIGIN = "PROMPTS_DIR"
PROMPT_SUFFIXES = (".yaml", ".yml")
# Which spec model a location in a file belongs to, to list the allowed keys of a mapping.
_MODELS_AT: dict[tuple[str, ...], type[BaseModel]] = {
    (): PromptFile,
    ("model",): TargetSpec,
    ("model", "params"): ParamsSpec,
    ("fallbacks", "#"): TargetSpec,
    ("fallbacks", "#", "params"): ParamsSpec,
    ("input",): InputSpec,
    ("output",): OutputSpec,
    ("messages", "#"): MessageSpec,
}


class _StrictYamlLoader(_SafeLoader):
    """Safe YAML that refuses duplicate keys (plain YAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True, slots=True)
class PromptSource:
    """A root directory of prompt files and where it comes from."""

    origin: str
    root: Traversable

    @classmethod
    def packaged(cls, root: Traversable) -> PromptSource:
        """A library shipped inside a package, e.g. `files("my_app") / "prompts" / "library"`."""
        return cls(PACKAGED_ORIGIN, root)

    @classmethod
    def directory(cls, path: Path, origin: str = OVERRIDE_ORIGIN) -> PromptSource:
        return cls(origin, path)


@dataclass(frozen=True, slots=True)
class PromptFileRef:
    """One prompt file found in a source."""

    source: PromptSource
    resource: Traversable
    id_dir: str
    stem: str
    display: str


def display_path(resource: Traversable) -> str:
    """The path to show a person: relative to the working directory when under it."""
    if isinstance(resource, Path):
        try:
            return resource.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return str(resource)
    return str(resource)


def discover(source: PromptSource) -> tuple[list[PromptFileRef], list[PromptProblem]]:
    """Every `<id>/<version>.yaml` under the source, sorted, and files in the wrong place."""
    found: list[PromptFileRef] = []
    problems: list[PromptProblem] = []
    root = source.root
    root_display = display_path(root)  # once: resolving a path per file is slow
    if not root.is_dir():
        if source.origin == PACKAGED_ORIGIN:
            return found, problems  # a project with no prompt files yet
        problems.append(
            PromptProblem(
                root_display,
                None,
                f"the {source.origin} directory does not exist: create it or fix the setting",
            )
        )
        return found, problems
    for entry in _visible(root):
        if entry.is_dir():
            for item in _visible(entry):
                if item.is_file() and item.name.endswith(PROMPT_SUFFIXES):
                    stem = item.name.rsplit(".", 1)[0]
                    display = f"{root_display}/{entry.name}/{item.name}"
                    found.append(PromptFileRef(source, item, entry.name, stem, display))
                elif item.is_dir():
                    problems.append(_misplaced(item))
        elif entry.name.endswith(PROMPT_SUFFIXES):
            problems.append(_misplaced(entry))
    return found, problems


def _visible(directory: Traversable) -> list[Traversable]:
    return sorted(
        (entry for entry in directory.iterdir() if not entry.name.startswith((".", "_"))),
        key=lambda entry: entry.name,
    )


def _misplaced(entry: Traversable) -> PromptProblem:
    return PromptProblem(
        display_path(entry),
        None,
        "not where prompt files live: put each one at <id>/<version>.yaml",
    )


def load_file(
    ref: PromptFileRef, *, providers: frozenset[str] = KNOWN_PROVIDERS
) -> Prompt | list[PromptProblem]:
    """Parse and check one prompt file; a Prompt, or every problem found in it. Its targets
    may name only `providers`."""
    file = ref.display
    try:
        text = ref.resource.read_text(encoding="utf-8")
        document = yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        return [PromptProblem(file, None, f"not valid YAML: {_describe_yaml_error(error)}")]
    except UnicodeDecodeError as error:
        return [PromptProblem(file, None, f"not UTF-8 text ({error.reason})")]
    if not isinstance(document, dict):
        return [PromptProblem(file, None, "a prompt file must be a YAML mapping of keys to values")]
    try:
        spec = PromptFile.model_validate(document, context={PROVIDERS_CONTEXT: providers})
    except ValidationError as error:
        return [_pydantic_problem(file, item) for item in error.errors()]
    return _build(ref, file, spec, document)


def _build(
    ref: PromptFileRef, file: str, spec: PromptFile, document: dict[str, Any]
) -> Prompt | list[PromptProblem]:
    problems: list[PromptProblem] = []

    def problem(field: str | None, message: str) -> None:
        problems.append(PromptProblem(file, field, message))

    if spec.id != ref.id_dir:
        problem(
            "id", f"{spec.id!r} does not match its directory {ref.id_dir!r}: they must be equal"
        )
    if spec.version != ref.stem:
        problem(
            "version",
            f"{spec.version!r} does not match the file name {ref.resource.name!r}: "
            f"name the file {spec.version}.yaml",
        )
    target, fallbacks = _targets(spec, problem)
    before = len(problems)
    schema, defaults, validator = check_input(spec.input, problem)
    # With a broken input, which variables are declared is unknown: check templates alone.
    declared = set(schema["properties"]) if len(problems) == before and validator else None
    output, output_model = check_output(spec, problem)
    messages = _messages(spec.messages, declared, file, problem)
    try:
        digest = content_hash(document)
    except (TypeError, ValueError) as error:
        problem(None, f"holds a value JSON cannot represent ({error})")
    if problems or validator is None:
        return problems
    return Prompt(
        id=spec.id,
        version=spec.version,
        semver=semver.Version.parse(spec.version),
        description=spec.description,
        labels=tuple(spec.labels),
        file=file,
        origin=ref.source.origin,
        content_hash=digest,
        target=target,
        fallbacks=fallbacks,
        input_schema=MappingProxyType(schema),
        input_defaults=MappingProxyType(defaults),
        output=output,
        output_model=output_model,
        metadata=MappingProxyType(dict(spec.metadata)),
        messages=messages,
        input_validator=validator,
        tools=None if spec.tools is None else tuple(spec.tools),
        canary_weight=spec.canary_weight or 0,
    )


def _targets(spec: PromptFile, problem: Report) -> tuple[PromptTarget, tuple[PromptTarget, ...]]:
    primary_params = spec.model.params.model_dump(exclude_none=True)
    target = _target(spec.model, primary_params)
    seen = {(target.provider, target.model)}
    fallbacks = []
    for index, fallback in enumerate(spec.fallbacks):
        key = (fallback.provider, fallback.name)
        if key in seen:
            problem(
                f"fallbacks[{index}]",
                f"{fallback.provider}/{fallback.name} is already the model or an earlier "
                "fallback: each target appears once",
            )
        seen.add(key)
        merged = {**primary_params, **fallback.params.model_dump(exclude_none=True)}
        fallbacks.append(_target(fallback, merged))
    return target, tuple(fallbacks)


def _target(spec: TargetSpec, params: Mapping[str, Any]) -> PromptTarget:
    resolved = {**params, "stop": tuple(params.get("stop", ()))}
    return PromptTarget(provider=spec.provider, model=spec.name, params=ModelParams(**resolved))


def _messages(
    specs: list[MessageSpec], declared: set[str] | None, file: str, problem: Report
) -> tuple[MessageTemplate, ...]:
    messages = []
    seen_conversation = False
    for index, spec in enumerate(specs):
        where = f"messages[{index}]"
        if spec.role == "system" and seen_conversation:
            problem(f"{where}.role", "system messages must come before user and assistant ones")
        seen_conversation = seen_conversation or spec.role != "system"
        tree = _check_template(spec.template, declared, f"{where}.template", problem)
        if tree is not None:
            messages.append(MessageTemplate(spec.role, spec.template, tree, file))
    if not any(spec.role == "user" for spec in specs):
        problem("messages", "at least one message must have role user")
    return tuple(messages)


def _check_template(
    source: str, declared: set[str] | None, where: str, problem: Report
) -> nodes.Template | None:
    """Parse a template and check it: syntax, unknown filters and tests, includes, and that
    every variable it reads is a declared input. Compiling waits for the first render."""
    environment = TEMPLATE_ENVIRONMENT
    try:
        tree = environment.parse(source)
        # The meta pass runs Jinja's code generator, which also refuses unknown filters/tests.
        used = meta.find_undeclared_variables(tree) - set(environment.globals)
    except TemplateSyntaxError as error:
        problem(where, f"template error on line {error.lineno}: {error.message}")
        return None
    # Walking the tree is slow; such a tag cannot exist without one of these words.
    may_reference = any(word in source for word in ("include", "import", "extends"))
    if may_reference and any(True for _ in meta.find_referenced_templates(tree)):
        problem(where, "a template cannot include, import or extend other templates")
        return None
    undeclared = [] if declared is None else sorted(used - declared)
    if undeclared:
        names = ", ".join(undeclared)
        problem(
            where,
            f"uses {names}, which the input does not declare: add it to input.fields "
            "(or to input.schema properties)",
        )
        return None
    return tree


def _pydantic_problem(file: str, error: Any) -> PromptProblem:
    location: tuple[str | int, ...] = tuple(error["loc"])
    field = _format_location(location) or None
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(location[:-1])
        message = f"unknown key{f' (allowed: {allowed})' if allowed else ''}"
    elif error["type"] == "missing":
        message = "required key is missing"
    return PromptProblem(file, field, message)


def _format_location(location: tuple[str | int, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(parent: tuple[str | int, ...]) -> str:
    key = tuple("#" if isinstance(part, int) else part for part in parent)
    model = _MODELS_AT.get(key)
    if model is None:
        return ""
    return ", ".join(info.alias or name for name, info in model.model_fields.items())


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    """Where and what, without PyYAML's "<unicode string>" stand-in for the file name."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        context = f" ({error.context})" if error.context else ""
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}{context}"
    return _one_line(str(error))  # pragma: no cover - PyYAML marks every parse error


def _one_line(text: str) -> str:
    return " ".join(text.split())


def iter_sources(library: Traversable | None, prompts_dir: Path | None) -> Iterator[PromptSource]:
    """The sources in precedence order, lowest first: the packaged library, then PROMPTS_DIR."""
    if library is not None:
        yield PromptSource.packaged(library)
    if prompts_dir is not None:
        yield PromptSource.directory(prompts_dir)
