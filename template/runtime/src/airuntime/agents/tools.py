"""Tools an agent can call, defined as typed Python functions.

`@tool` reads a function's signature: its parameters (with their annotations, defaults and
`Annotated[..., Field(description=...)]`) become a pydantic model, whose JSON Schema is what the
model is offered; the docstring's first paragraph is the description. A parameter annotated
`ToolContext` is not offered: the agent passes the run id, the call's idempotency key and the
deadline there.

A tool raises `ToolError` for an expected failure ("no such order"): its message goes back to
the model as the call's result, marked as an error. A tool that `side_effects` (opens a ticket,
sends a mail) gets an idempotency key per call, stable across retries and resumptions, and the
agent never runs it twice for the same key; one that `requires_approval` does not run until a
person approves the call in the review queue.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from airuntime.types import ToolSpec


class ToolError(Exception):
    """An expected failure of a tool; its message is returned to the model as the result."""


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may need to know about the call it serves."""

    run_id: str
    call_id: str
    idempotency_key: str | None  # set for tools with side effects: pass it on downstream
    timeout_seconds: float


ToolFunction = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: the function, its arguments' model, and how carefully to run it."""

    name: str
    description: str
    arguments: type[BaseModel]
    function: ToolFunction
    side_effects: bool = False
    requires_approval: bool = False
    timeout_seconds: float | None = None  # None: the agent's per-tool timeout
    context_parameter: str | None = None

    def spec(self) -> ToolSpec:
        """The definition the model is offered."""
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=self.arguments.model_json_schema(),
        )

    def validate(self, arguments: str) -> BaseModel:
        """The call's arguments as the model; ValidationError when they do not fit."""
        return self.arguments.model_validate_json(arguments or "{}")

    async def invoke(self, arguments: BaseModel, context: ToolContext) -> Any:
        values = {name: getattr(arguments, name) for name in type(arguments).model_fields}
        if self.context_parameter is not None:
            values[self.context_parameter] = context
        result = self.function(**values)
        if inspect.isawaitable(result):
            result = await result
        return result


@overload
def tool(function: ToolFunction, /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = False,
    requires_approval: bool = False,
    timeout_seconds: float | None = None,
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    function: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = False,
    requires_approval: bool = False,
    timeout_seconds: float | None = None,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a `Tool` of a typed function: `@tool` or `@tool(side_effects=True, ...)`."""

    def make(target: ToolFunction) -> Tool:
        return make_tool(
            target,
            name=name,
            description=description,
            side_effects=side_effects,
            requires_approval=requires_approval,
            timeout_seconds=timeout_seconds,
        )

    return make if function is None else make(function)


def make_tool(
    function: ToolFunction,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effects: bool = False,
    requires_approval: bool = False,
    timeout_seconds: float | None = None,
) -> Tool:
    """The `Tool` of `function` (what `@tool` does)."""
    tool_name = name or function.__name__
    hints = get_type_hints(function, include_extras=True)
    fields: dict[str, Any] = {}
    context_parameter = None
    for parameter in inspect.signature(function).parameters.values():
        annotation = hints.get(parameter.name)
        if annotation is ToolContext:
            context_parameter = parameter.name
            continue
        if annotation is None or parameter.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            raise TypeError(
                f"tool {tool_name}: parameter {parameter.name!r} needs a type annotation "
                "(and *args/**kwargs cannot be offered to a model)"
            )
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    model = create_model(
        f"{_camel(tool_name)}Arguments",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )
    text = description if description is not None else _first_paragraph(function.__doc__)
    if not text:
        raise TypeError(f"tool {tool_name}: say what it does in a docstring (the model reads it)")
    return Tool(
        name=tool_name,
        description=text,
        arguments=model,
        function=function,
        side_effects=side_effects or requires_approval,
        requires_approval=requires_approval,
        timeout_seconds=timeout_seconds,
        context_parameter=context_parameter,
    )


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _first_paragraph(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split()) if doc else ""


def result_text(value: Any) -> str:
    """A tool's return value as the text the model reads: strings as they are, pydantic
    models and other values as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=_plain, ensure_ascii=False, sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def validation_problems(error: ValidationError) -> str:
    """What is wrong with a call's arguments, in one line the model can act on."""
    problems = [
        f"{'.'.join(str(part) for part in item['loc']) or '(root)'}: {item['msg']}"
        for item in error.errors(include_url=False)[:5]
    ]
    return "invalid arguments: " + "; ".join(problems)


def tools_by_name(tools: Mapping[str, Tool] | list[Tool] | tuple[Tool, ...]) -> dict[str, Tool]:
    """Tools by name; a name given twice is a mistake worth failing on."""
    listed = list(tools.values()) if isinstance(tools, Mapping) else list(tools)
    found: dict[str, Tool] = {}
    for item in listed:
        if item.name in found:
            raise ValueError(f"two tools are named {item.name!r}: give each its own name")
        found[item.name] = item
    return found
