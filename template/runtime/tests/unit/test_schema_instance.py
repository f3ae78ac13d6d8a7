"""The generated instance of a JSON Schema is valid against it (checked with jsonschema)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, Literal
from uuid import UUID

import jsonschema
import pytest
from pydantic import BaseModel, Field

from airuntime.model.schema_instance import (
    UnsupportedSchemaError,
    minimal_instance,
)


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str = Field(min_length=3)
    postcode: str = Field(max_length=2)


class Person(BaseModel):
    name: str
    age: int = Field(gt=17, lt=130)
    score: float = Field(ge=0.5, le=1.0, multiple_of=0.25)
    home: Address
    previous: list[Address] = Field(min_length=2, max_length=3)
    nickname: str | None
    favourite: Colour
    kind: Literal["customer"]
    born: date
    seen: datetime
    ident: UUID
    optional_note: str = "none"


class Tree(BaseModel):
    label: str
    children: list[Tree] = Field(default_factory=list)


def valid(schema: dict[str, Any]) -> Any:
    instance = minimal_instance(schema)
    jsonschema.validate(instance, schema)
    return instance


def test_a_rich_pydantic_model_gets_a_valid_instance() -> None:
    instance = valid(Person.model_json_schema())

    person = Person.model_validate(instance)
    assert len(person.previous) == 2
    assert person.nickname == "mock", "an optional field still shows its non-null shape"
    assert person.favourite is Colour.RED
    assert "optional_note" not in instance


def test_recursive_models_stop_at_what_is_required() -> None:
    assert valid(Tree.model_json_schema()) == {"label": "mock"}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 5},
        {"type": "integer", "maximum": -3},
        {"type": "integer", "exclusiveMinimum": 0},
        {"type": "integer", "exclusiveMaximum": 0},
        {"type": "integer", "minimum": 7, "multipleOf": 5},
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
        {"type": "number", "minimum": 0.3, "multipleOf": 0.1},
        {"type": "number", "minimum": -2.5, "maximum": -1.5},
        {"type": "string", "minLength": 9},
        {"type": "string", "maxLength": 2},
        {"type": "string", "format": "email"},
        {"type": "string", "format": "date-time"},
        {"type": ["null", "string"]},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "minItems": 3, "items": {"type": "integer"}},
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "minItems": 2},
        {"type": "object", "minProperties": 1, "properties": {"a": {"type": "boolean"}}},
        {"type": "object", "required": ["x"], "additionalProperties": {"type": "integer"}},
        {"const": 42},
        {"enum": ["b", "a"]},
        {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3}]},
        {"oneOf": [{"type": "string", "maxLength": 0}]},
        {"allOf": [{"$ref": "#/$defs/A"}], "$defs": {"A": {"type": "integer", "minimum": 2}}},
        {"type": "string", "pattern": "^[A-Z]{3}$", "examples": ["ABC"]},
        {"type": "integer", "default": 9},
        {"properties": {"n": {"maximum": -1}}, "required": ["n"]},
        {},
    ],
)
def test_schemas_get_valid_instances(schema: dict[str, Any]) -> None:
    valid(schema)


def test_json_pointer_escapes_in_refs_are_followed() -> None:
    schema = {"$ref": "#/$defs/a~1b", "$defs": {"a/b": {"type": "integer", "minimum": 4}}}

    assert valid(schema) == 4


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "string", "pattern": "^x+$"}, "cannot generate a value for `pattern`"),
        ({"not": {"type": "null"}}, "cannot generate a value for `not`"),
        (False, "accepts nothing"),
        ({"$ref": "#/$defs/Missing"}, "points to nothing"),
        ({"$ref": "https://example.com/schema"}, "only local $ref"),
        ({"type": "integer", "minimum": 3, "maximum": 2}, "no integer satisfies the bounds"),
        ({"type": "array", "minItems": 2, "uniqueItems": True}, "cannot generate 2 unique items"),
        ({"type": "array", "minItems": 1, "items": False}, "no items allowed"),
        ({"type": "object", "minProperties": 2, "additionalProperties": False}, "minProperties"),
        ({"type": "string", "format": "uuid", "maxLength": 5}, "too short for its format"),
        ({"type": "tuple"}, "unknown type 'tuple'"),
        ({"$ref": "#/$defs/Loop", "$defs": {"Loop": {"$ref": "#/$defs/Loop"}}}, "deeper than"),
    ],
)
def test_what_cannot_be_satisfied_is_refused_with_the_reason(schema: Any, message: str) -> None:
    with pytest.raises(UnsupportedSchemaError) as caught:
        minimal_instance(schema)

    assert message in str(caught.value)
