"""A small, valid instance of a JSON Schema, so the mock can answer structured requests offline.

It covers what pydantic emits (`$ref`/`$defs`, `anyOf` for optionals, enums, nested objects and
arrays) and the common constraints (lengths, item and property counts, numeric bounds, string
formats). Where it cannot be sure to satisfy a schema (a `pattern`, `uniqueItems` with several
items, `not`) it uses the schema's own `examples` or `default`, and otherwise raises
`UnsupportedSchemaError` naming the keyword, rather than returning something invalid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
_FORMAT_SAMPLES = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "mock@example.com",
    "idn-email": "mock@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}
_GUESSABLE_ONLY_FROM_EXAMPLES = ("pattern", "not", "contains", "dependentSchemas", "if")
_TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")


class UnsupportedSchemaError(ValueError):
    """The schema uses something this generator cannot satisfy for sure."""


def minimal_instance(schema: Mapping[str, Any]) -> Any:
    """A deterministic instance of `schema` with only what is required."""
    return _Generator(schema).instance(schema, "#", 0)


class _Generator:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root

    def instance(self, schema: Mapping[str, Any] | bool, path: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise UnsupportedSchemaError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        if schema is True:
            return {}
        if not isinstance(schema, Mapping):
            raise UnsupportedSchemaError(f"{path}: {schema!r} accepts nothing or is not a schema")
        if "$ref" in schema:
            siblings = {k: v for k, v in schema.items() if k not in ("$ref", "$defs")}
            resolved = {**siblings, **self._resolve(schema["$ref"], path)}
            return self.instance(resolved, path, depth + 1)
        if "allOf" in schema:
            return self.instance(self._merge_all_of(schema, path), path, depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        examples = schema.get("examples")
        if isinstance(examples, list) and examples:
            return examples[0]
        if "default" in schema:
            return schema["default"]
        for keyword in _GUESSABLE_ONLY_FROM_EXAMPLES:
            if keyword in schema:
                raise UnsupportedSchemaError(
                    f"{path}: cannot generate a value for `{keyword}`; "
                    "give the schema `examples` or script the mock's answer"
                )
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                return self.instance(self._pick_variant(schema[keyword]), path, depth + 1)
        return self._typed(schema, path, depth)

    def _typed(self, schema: Mapping[str, Any], path: str, depth: int) -> Any:
        declared = schema.get("type")
        if isinstance(declared, list):
            kinds = [kind for kind in _TYPE_ORDER if kind in declared and kind != "null"]
            declared = kinds[0] if kinds else "null"
        if declared is None:
            declared = _implied_type(schema)
        if declared == "object":
            return self._object(schema, path, depth)
        if declared == "array":
            return self._array(schema, path, depth)
        if declared == "string":
            return _string(schema, path)
        if declared in ("integer", "number"):
            return _number(schema, path, integer=declared == "integer")
        if declared == "boolean":
            return False
        if declared == "null":
            return None
        raise UnsupportedSchemaError(f"{path}: unknown type {declared!r}")

    def _object(self, schema: Mapping[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        names = list(schema.get("required", []))
        wanted = int(schema.get("minProperties", 0))
        names += [name for name in properties if name not in names][: max(0, wanted - len(names))]
        result: dict[str, Any] = {}
        for name in names:
            if name in properties:
                result[name] = self.instance(properties[name], f"{path}/{name}", depth + 1)
            else:
                extra = schema.get("additionalProperties", True)
                result[name] = self.instance(extra, f"{path}/{name}", depth + 1)
        if len(result) < wanted:
            raise UnsupportedSchemaError(
                f"{path}: minProperties {wanted} needs more properties than the schema names"
            )
        return result

    def _array(self, schema: Mapping[str, Any], path: str, depth: int) -> list[Any]:
        prefix: list[Any] = list(schema.get("prefixItems", []))
        count = max(int(schema.get("minItems", 0)), 0)
        result = [
            self.instance(item, f"{path}/{index}", depth + 1)
            for index, item in enumerate(prefix[:count])
        ]
        if len(result) < count:
            items = schema.get("items", {})
            if items is False:
                raise UnsupportedSchemaError(f"{path}: minItems {count} but no items allowed")
            value = self.instance(items, f"{path}/items", depth + 1)
            if schema.get("uniqueItems") and count - len(result) > 1:
                raise UnsupportedSchemaError(
                    f"{path}: cannot generate {count} unique items; give the schema `examples`"
                )
            result += [value] * (count - len(result))
        return result

    def _resolve(self, reference: str, path: str) -> Mapping[str, Any]:
        if not reference.startswith("#"):
            raise UnsupportedSchemaError(f"{path}: only local $ref are supported, got {reference}")
        target: Any = self._root
        for part in reference.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or key not in target:
                raise UnsupportedSchemaError(f"{path}: $ref {reference} points to nothing")
            target = target[key]
        if not isinstance(target, Mapping):
            raise UnsupportedSchemaError(f"{path}: $ref {reference} is not a schema")
        return target

    def _merge_all_of(self, schema: Mapping[str, Any], path: str) -> dict[str, Any]:
        merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
        for part in schema["allOf"]:
            resolved = self._resolve(part["$ref"], path) if "$ref" in part else part
            for key, value in resolved.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    @staticmethod
    def _pick_variant(variants: list[Any]) -> Any:
        """The first variant that is not `null`, so an optional field still shows its shape."""
        for variant in variants:
            if not (isinstance(variant, Mapping) and variant.get("type") == "null"):
                return variant
        return variants[0]


def _implied_type(schema: Mapping[str, Any]) -> str:
    if {"properties", "required", "additionalProperties"} & schema.keys():
        return "object"
    if {"items", "prefixItems", "minItems"} & schema.keys():
        return "array"
    if {"minLength", "maxLength", "format"} & schema.keys():
        return "string"
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & schema.keys():
        return "number"
    return "null"


def _string(schema: Mapping[str, Any], path: str) -> str:
    text = _FORMAT_SAMPLES.get(str(schema.get("format")), "mock")
    minimum = int(schema.get("minLength", 0))
    maximum = schema.get("maxLength")
    if len(text) < minimum:
        text = (text * (minimum // len(text) + 1))[:minimum]
    if maximum is not None and len(text) > int(maximum):
        if "format" in schema and schema["format"] in _FORMAT_SAMPLES:
            raise UnsupportedSchemaError(f"{path}: maxLength {maximum} is too short for its format")
        text = text[: int(maximum)]
    return text


def _number(schema: Mapping[str, Any], path: str, *, integer: bool) -> int | float:
    """0 when allowed, else the first candidate next to one of the bounds that fits them all."""
    step = schema.get("multipleOf") or (1 if integer else None)
    candidates: list[float] = [0]
    for keyword in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = schema.get(keyword)
        if bound is not None:
            candidates += _candidates_near(float(bound), step)
    for value in candidates:
        if _within(schema, value, step):
            return round(value) if integer else value
    kind = "integer" if integer else "number"
    raise UnsupportedSchemaError(f"{path}: no {kind} satisfies the bounds")


def _candidates_near(bound: float, step: float | None) -> list[float]:
    if step:
        base = math.floor(bound / step)
        return [index * step for index in (base, base + 1, base - 1, base + 2)]
    return [bound, bound + 1, bound - 1, math.nextafter(bound, math.inf)]


def _within(schema: Mapping[str, Any], value: float, step: float | None) -> bool:
    if "minimum" in schema and value < schema["minimum"]:
        return False
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return False
    if "maximum" in schema and value > schema["maximum"]:
        return False
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        return False
    if step:  # exact, as validators check it: 0.30000000000000004 is no multiple of 0.1
        quotient = value / step
        return quotient == int(quotient)
    return True
