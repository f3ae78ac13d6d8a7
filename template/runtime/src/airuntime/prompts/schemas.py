"""Input and output schemas of a prompt file: compact fields, JSON Schema, pydantic models.

JSON Schemas are Draft 2020-12, checked against the meta-schema and compiled once at load by
jsonschema-rs (a compiled validator keeps a render's input check to about a microsecond), and
never fetch a remote `$ref`.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema_rs
from pydantic import BaseModel, PydanticUserError

from airuntime.prompts.spec import InputSpec, PromptFile
from airuntime.types import TEXT_OUTPUT, OutputFormat

Report = Callable[[str | None, str], None]  # records a problem: (field, message)
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMPACT_TYPE = re.compile(
    r"(?P<type>string|integer|number|boolean|list\[(?P<item>string|integer|number|boolean)\])"
    r"(?P<optional>\?)?(?:\s*=\s*(?P<default>.+))?"
)
INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_input(
    spec: InputSpec, problem: Report
) -> tuple[dict[str, Any], dict[str, Any], jsonschema_rs.Validator | None]:
    if spec.fields is not None and spec.json_schema is None:
        schema = expand_fields(spec.fields, problem)
        where = "input.fields"
    elif spec.json_schema is not None and spec.fields is None:
        schema = spec.json_schema
        where = "input.schema"
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            problem(where, "must be `type: object` with `properties` naming each template variable")
            return {}, {}, None
    else:
        problem("input", "give exactly one of `fields` (a compact list) or `schema` (JSON Schema)")
        return {}, {}, None
    validator = compile_schema(schema, where, problem)
    if validator is None:
        return schema, {}, None
    defaults = {
        name: property_schema["default"]
        for name, property_schema in schema["properties"].items()
        if isinstance(property_schema, dict) and "default" in property_schema
    }
    for error in validator.iter_errors(defaults):
        if error.instance_path:
            name = error.instance_path[0]
            problem(f"{where}.{name}", f"the default does not fit the field: {error.message}")
    return schema, defaults, validator


def expand_fields(fields: Mapping[str, str], problem: Report) -> dict[str, Any]:
    """`text: string`, `labels: list[string]`, `tone: string?`, `limit: integer = 100`."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, declaration in fields.items():
        where = f"input.fields.{name}"
        if not INPUT_NAME.fullmatch(name):
            problem(where, "a field name must be a Python-style identifier to use in a template")
            continue
        match = COMPACT_TYPE.fullmatch(declaration.strip())
        if match is None:
            problem(
                where,
                f"{declaration!r} is not a field type: use string, integer, number, boolean or "
                "list[...] of one of them, then ? when optional or = <JSON value> for a default",
            )
            continue
        if match["item"]:
            property_schema: dict[str, Any] = {"type": "array", "items": {"type": match["item"]}}
        else:
            property_schema = {"type": match["type"]}
        if match["default"] is not None:
            try:
                property_schema["default"] = json.loads(match["default"])
            except json.JSONDecodeError:
                problem(where, f"the default {match['default']!r} is not a JSON value")
                continue
        elif not match["optional"]:
            required.append(name)
        properties[name] = property_schema
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def compile_schema(
    schema: dict[str, Any], where: str, problem: Report
) -> jsonschema_rs.Validator | None:
    """Check a JSON Schema against the Draft 2020-12 meta-schema, then compile it."""
    dialect = schema.get("$schema", JSON_SCHEMA_DIALECT)
    if dialect != JSON_SCHEMA_DIALECT:
        problem(f"{where}.$schema", f"{dialect!r} is not supported: use {JSON_SCHEMA_DIALECT}")
        return None
    try:
        jsonschema_rs.meta.validate(schema)
        # offline: a schema never makes the program fetch anything from the network.
        return jsonschema_rs.Draft202012Validator(schema, offline=True)
    except jsonschema_rs.ValidationError as error:
        path = "".join(f".{part}" for part in error.instance_path)
        problem(f"{where}{path}", f"not a valid JSON Schema: {_one_line(error.message)}")
    except (jsonschema_rs.ReferencingError, ValueError) as error:
        problem(where, f"not a valid JSON Schema: {_one_line(str(error))}")
    return None


def check_output(spec: PromptFile, problem: Report) -> tuple[OutputFormat, type[BaseModel] | None]:
    output = spec.output
    if output.format == "text":
        if output.json_schema is not None or output.model is not None:
            problem("output", "`schema` and `model` need `format: json`")
        return TEXT_OUTPUT, None
    if output.json_schema is not None and output.model is not None:
        problem("output", "give a `schema` or a `model`, not both")
        return TEXT_OUTPUT, None
    if output.json_schema is not None:
        if compile_schema(output.json_schema, "output.schema", problem) is None:
            return TEXT_OUTPUT, None
        schema_output = OutputFormat(
            type="json_schema", json_schema=output.json_schema, schema_name=spec.id
        )
        return schema_output, None
    if output.model is not None:
        try:
            model = resolve_model(output.model)
        except ValueError as error:
            problem("output.model", str(error))
            return TEXT_OUTPUT, None
        try:
            schema = model.model_json_schema()
        except PydanticUserError as error:
            problem("output.model", f"{output.model!r} has no JSON Schema ({error.message})")
            return TEXT_OUTPUT, None
        model_output = OutputFormat(type="json_schema", json_schema=schema, schema_name=spec.id)
        return model_output, model
    return OutputFormat(type="json"), None


def resolve_model(path: str) -> type[BaseModel]:
    """Import the pydantic model named `package.module:Model` (or `package.module.Model`).

    Imported only when prompts load, so prompt files can name models in modules that import
    the prompts package themselves.
    """
    module_name, separator, attribute = path.partition(":")
    if not separator:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not a dotted path such as package.module:Model")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import {module_name!r} ({error})") from None
    model = getattr(module, attribute, None)
    if model is None:
        raise ValueError(f"module {module_name!r} has no {attribute!r}")
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or model is BaseModel:
        raise ValueError(f"{path!r} is not a pydantic model class")
    return model


def _one_line(text: str) -> str:
    return " ".join(text.split())
