"""A loaded prompt version: validated, compiled, and rendered in a sandbox.

Templates are compiled once at load and render in Jinja2's immutable sandbox with
StrictUndefined: a missing variable is an error (never an empty string), unsafe attributes
and methods are refused, and inputs are values, never templates, so template syntax inside
an input comes out literally.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import jsonschema_rs
import semver
from jinja2 import StrictUndefined, Template, TemplateError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel

from airuntime.prompts.errors import PromptInputError, PromptRenderError
from airuntime.prompts.rendered import PromptTarget, RenderedPrompt
from airuntime.types import Message, OutputFormat, Role

# One environment for every prompt. trim_blocks/lstrip_blocks let block tags such as `if` vanish
# without leaving blank lines; autoescape is off because the output is text, not HTML.
TEMPLATE_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


class MessageTemplate:
    """One role-tagged template, parsed and checked at load.

    It is compiled to Python on its first render: compiling is most of the cost of loading
    (about 0.5 ms a template), and the checks that compiling would make already ran at load.
    """

    __slots__ = ("_compiled", "_filename", "_tree", "role", "source")

    def __init__(self, role: Role, source: str, tree: nodes.Template, filename: str) -> None:
        self.role: Role = role
        self.source = source
        self._tree = tree
        self._filename = filename
        self._compiled: Template | None = None

    def render(self, values: Mapping[str, Any]) -> str:
        compiled = self._compiled
        if compiled is None:  # two threads may both compile once; either result is the same
            environment = TEMPLATE_ENVIRONMENT
            code = environment.compile(self._tree, filename=self._filename)
            # Globals as a plain dict: Jinja's default (a ChainMap over the environment's
            # globals) is copied key by key on every render, which tripled its cost. Nothing
            # changes the environment's globals after start-up, so a snapshot is the same.
            globals_ = dict(environment.make_globals(None))
            compiled = environment.template_class.from_code(environment, code, globals_, None)
            self._compiled = compiled
        # What `compiled.render(values)` does, less its copy of `values` (the context's own
        # merge with the globals below copies them anyway).
        context = compiled.new_context(dict(compiled.globals, **values), shared=True)
        try:
            return compiled.environment.concat(compiled.root_render_func(context))
        except Exception:  # noqa: BLE001 - Jinja's own handler re-raises it with template lines
            compiled.environment.handle_exception()


@dataclass(frozen=True, slots=True, eq=False)
class Prompt:
    """One version of one prompt, ready to render."""

    id: str
    version: str
    semver: semver.Version
    description: str
    labels: tuple[str, ...]
    file: str
    origin: str
    content_hash: str
    target: PromptTarget
    fallbacks: tuple[PromptTarget, ...]
    input_schema: Mapping[str, Any]
    input_defaults: Mapping[str, Any]
    output: OutputFormat
    output_model: type[BaseModel] | None
    metadata: Mapping[str, str | int | float | bool]
    messages: tuple[MessageTemplate, ...]
    input_validator: jsonschema_rs.Validator
    # The tools an agent running this prompt may use (the file's `tools`); None: not listed.
    tools: tuple[str, ...] | None = None
    canary_weight: int = 0  # percent of traffic while labelled canary

    @property
    def ref(self) -> str:
        """`id@version`, the name used in logs and in prompts.lock."""
        return f"{self.id}@{self.version}"

    @property
    def declared_inputs(self) -> tuple[str, ...]:
        return tuple(self.input_schema.get("properties", {}))

    def render(self, inputs: Mapping[str, Any]) -> RenderedPrompt:
        """Validate the inputs, then render every message.

        Raises PromptInputError when the inputs do not match the input schema, and
        PromptRenderError when a template uses an undefined value or something the sandbox
        refuses.
        """
        if type(inputs) is not dict and not isinstance(inputs, Mapping):  # dict: no ABC check
            raise PromptInputError(f"{self.ref}: inputs must be a mapping of name to value")
        values = {**self.input_defaults, **inputs}
        self._validate(values)
        messages = tuple(
            Message(role=message.role, content=self._render_one(index, message, values))
            for index, message in enumerate(self.messages)
        )
        return RenderedPrompt(
            prompt_id=self.id,
            version=self.version,
            content_hash=self.content_hash,
            messages=messages,
            inputs=MappingProxyType(values),
            target=self.target,
            fallbacks=self.fallbacks,
            output=self.output,
            output_model=self.output_model,
        )

    def _validate(self, values: dict[str, Any]) -> None:
        try:
            if self.input_validator.is_valid(values):
                return
            problems = [
                _describe(error, self.declared_inputs)
                for error in self.input_validator.iter_errors(values)
            ]
        except ValueError as error:  # a value JSON cannot represent (a date, an object...)
            problems = [f"inputs must be JSON values ({error})"]
        raise PromptInputError(f"{self.ref}: {'; '.join(problems)}")

    def _render_one(self, index: int, message: MessageTemplate, values: dict[str, Any]) -> str:
        try:
            return message.render(values)
        except SecurityError as error:
            raise PromptRenderError(
                f"{self._where(index)}: refused by the sandbox: {error}"
            ) from None
        except UndefinedError as error:
            raise PromptRenderError(
                f"{self._where(index)}: {error}: pass it as an input, or test it with `is defined` "
                "when it is optional"
            ) from None
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as error:
            raise PromptRenderError(
                f"{self._where(index)}: {type(error).__name__}: {error}"
            ) from None

    def _where(self, index: int) -> str:
        """Which template failed, for the error (built only then: rendering is the hot path)."""
        return f"{self.ref}: messages[{index}].template ({self.file})"


def _describe(error: jsonschema_rs.ValidationError, declared: tuple[str, ...]) -> str:
    """One input problem in words, naming the input."""
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return f"input {kind.property!r} is required"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties) and not (
        error.instance_path
    ):
        unexpected = ", ".join(repr(name) for name in kind.unexpected)
        return f"input {unexpected} is not declared (declared: {', '.join(declared)})"
    if error.instance_path:
        field = error.instance_path[0]
        rest = "".join(f"[{part!r}]" for part in error.instance_path[1:])
        return f"input {field!r}{rest}: {error.message}"
    return f"inputs: {error.message}"
