"""Prompt files: what parses, and every malformed file refused with its file and field named."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airuntime.prompts import PromptLoadError, PromptProblem, PromptRegistry
from airuntime.prompts.loader import PromptSource

MakePrompt = Callable[..., dict[str, Any]]
WritePrompt = Callable[..., Path]

Mutation = Callable[[dict[str, Any]], None]


def load(root: Path) -> PromptRegistry:
    return PromptRegistry.load([PromptSource.directory(root)])


def problems_of(root: Path) -> list[PromptProblem]:
    with pytest.raises(PromptLoadError) as caught:
        load(root)
    return list(caught.value.problems)


def test_a_valid_file_parses_into_a_prompt(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    write_prompt(make_prompt())

    prompt = load(prompts_root).get("greet")

    assert prompt.ref == "greet@1.0.0"
    assert prompt.file == "prompts/greet/1.0.0.yaml"
    assert prompt.origin == "PROMPTS_DIR"
    assert prompt.description == "Greets a person by name."
    assert str(prompt.target) == "mock/mock-model"
    assert prompt.target.params.max_tokens == 50
    assert [str(target) for target in prompt.fallbacks] == ["mock/mock-fallback"]
    assert prompt.fallbacks[0].params.max_tokens == 50  # inherited from the primary
    assert dict(prompt.metadata) == {"owner": "tests"}
    assert [message.role for message in prompt.messages] == ["system", "user"]
    assert prompt.output.type == "text"


def test_tools_list_what_an_agent_running_the_prompt_may_use(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    listed = make_prompt("agent")
    listed["tools"] = ["lookup_order", "search-faq"]
    empty = make_prompt("bare")
    empty["tools"] = []
    write_prompt(listed)
    write_prompt(empty)
    write_prompt(make_prompt())

    registry = load(prompts_root)

    assert registry.get("agent").tools == ("lookup_order", "search-faq")
    assert registry.get("bare").tools == ()  # an agent that may use no tool
    assert registry.get("greet").tools is None  # not said: not an agent's prompt


def test_compact_fields_expand_to_json_schema(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    document = make_prompt()
    document["input"] = {
        "fields": {
            "name": "string",
            "tags": "list[string]",
            "tone": "string?",
            "limit": "integer = 3",
            "ratio": "number",
            "loud": "boolean?",
        }
    }
    write_prompt(document)

    schema = load(prompts_root).get("greet").input_schema

    assert dict(schema) == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "tone": {"type": "string"},
            "limit": {"type": "integer", "default": 3},
            "ratio": {"type": "number"},
            "loud": {"type": "boolean"},
        },
        "required": ["name", "tags", "ratio"],
        "additionalProperties": False,
    }


def test_json_schema_input_and_output(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    document = make_prompt()
    input_schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}},
        "required": ["name"],
    }
    output_schema = {"type": "object", "properties": {"greeting": {"type": "string"}}}
    document["input"] = {"schema": input_schema}
    document["output"] = {"format": "json", "schema": output_schema}
    document["messages"][1]["template"] = "Greet {{ name }}."
    write_prompt(document)

    prompt = load(prompts_root).get("greet")

    assert dict(prompt.input_schema) == input_schema
    assert prompt.output.type == "json_schema"
    assert prompt.output.json_schema == output_schema
    assert prompt.output.schema_name == "greet"


def test_json_output_without_a_schema_asks_for_any_json(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    document = make_prompt()
    document["output"] = {"format": "json"}
    write_prompt(document)

    assert load(prompts_root).get("greet").output.type == "json"


def test_fallback_params_override_the_primary_key_by_key(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    document = make_prompt()
    document["model"]["params"] = {"max_tokens": 50, "temperature": 0.5, "stop": ["END"]}
    document["fallbacks"] = [
        {"provider": "mock", "name": "second", "params": {"temperature": 0, "seed": 7}}
    ]
    write_prompt(document)

    fallback = load(prompts_root).get("greet").fallbacks[0]

    assert fallback.params.model_dump() == {
        "temperature": 0,
        "max_tokens": 50,
        "stop": ("END",),
        "seed": 7,
    }


@pytest.fixture
def greeting_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module, importable but not yet imported, holding pydantic output models."""
    (tmp_path / "greeting_models.py").write_text(
        "from collections.abc import Callable\n\nfrom pydantic import BaseModel\n\n\n"
        "class Greeting(BaseModel):\n    text: str\n\n\n"
        "class Opaque(BaseModel):\n    handler: Callable[[], None]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "greeting_models", raising=False)
    return "greeting_models"


@pytest.mark.parametrize("path", ["greeting_models:Greeting", "greeting_models.Greeting"])
def test_a_pydantic_model_named_by_dotted_path_is_the_output(
    write_prompt: WritePrompt,
    prompts_root: Path,
    make_prompt: MakePrompt,
    greeting_models: str,
    path: str,
) -> None:
    document = make_prompt()
    document["output"] = {"format": "json", "model": path}
    write_prompt(document)
    assert greeting_models not in sys.modules  # imported when the prompts load, not before

    prompt = load(prompts_root).get("greet")

    assert prompt.output_model is sys.modules[greeting_models].Greeting
    assert prompt.output.type == "json_schema"
    assert prompt.output.json_schema is not None
    assert prompt.output.json_schema["required"] == ["text"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("pydantic:BaseModel", "'pydantic:BaseModel' is not a pydantic model class"),
        ("greeting_models:Opaque", "'greeting_models:Opaque' has no JSON Schema"),
        ("Greeting", "'Greeting' is not a dotted path such as package.module:Model"),
    ],
)
def test_an_output_model_must_be_a_subclass_with_a_json_schema(
    write_prompt: WritePrompt,
    prompts_root: Path,
    make_prompt: MakePrompt,
    greeting_models: str,
    path: str,
    words: str,
) -> None:
    document = make_prompt()
    document["output"] = {"format": "json", "model": path}
    write_prompt(document)

    [problem] = problems_of(prompts_root)

    assert problem.field == "output.model"
    assert words in problem.message


def test_comments_readme_and_hidden_files_are_ignored(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    write_prompt("# a comment\n" + yaml_of(make_prompt()), directory="greet", name="1.0.0.yaml")
    (prompts_root / "README.md").write_text("How to write prompts.\n")
    (prompts_root / "greet" / "notes.txt").write_text("ignored\n")
    (prompts_root / ".cache").mkdir()
    (prompts_root / "__pycache__").mkdir()

    assert [prompt.ref for prompt in load(prompts_root)] == ["greet@1.0.0"]


def yaml_of(document: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(document, sort_keys=False)


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting a dotted path (list indexes as numbers) in the document."""

    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = document
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _delete(key: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        del document[key]

    return mutate


def _template(index: int, text: str) -> Mutation:
    return _set(f"messages.{index}.template", text)


# (case, mutation, file name it is saved under, field the problem names, words the message has)
MALFORMED: list[tuple[str, Mutation, str, str | None, str]] = [
    ("unknown top-level key", _set("temprature", 0.2), "1.0.0.yaml", "temprature", "unknown key"),
    (
        "unknown nested key",
        _set("model.params.temp", 1),
        "1.0.0.yaml",
        "model.params.temp",
        "unknown key (allowed: temperature, max_tokens, stop, seed)",
    ),
    ("missing key", _delete("description"), "1.0.0.yaml", "description", "required key"),
    ("version not a string", _set("version", 1.0), "1.0.0.yaml", "version", "quote it"),
    ("version not SemVer", _set("version", "1.0"), "1.0.yaml", "version", "not a SemVer"),
    ("build metadata", _set("version", "1.0.0+b1"), "1.0.0+b1.yaml", "version", "build"),
    ("bad id", _set("id", "Greet Me"), "1.0.0.yaml", "id", "not a prompt id"),
    ("id is not its folder", _set("id", "hello"), "1.0.0.yaml", "id", "does not match"),
    ("version is not the file name", _set("version", "1.0.1"), "1.0.0.yaml", "version", "name"),
    ("bad label", _set("labels", ["Prod!"]), "1.0.0.yaml", "labels", "not a label"),
    ("label twice", _set("labels", ["prod", "prod"]), "1.0.0.yaml", "labels", "more than once"),
    (
        "unknown provider",
        _set("model.provider", "gemini"),
        "1.0.0.yaml",
        "model.provider",
        "not one",
    ),
    (
        "model name with a space",
        _set("model.name", "gpt 5"),
        "1.0.0.yaml",
        "model.name",
        "contains whitespace",
    ),
    (
        "metadata key not a string",
        _set("metadata", {1: "one"}),
        "1.0.0.yaml",
        "metadata",
        "the key 1 is not a string",
    ),
    (
        "temperature out of range",
        _set("model.params.temperature", 3),
        "1.0.0.yaml",
        "model.params.temperature",
        "less than or equal to 2",
    ),
    (
        "string for a number",
        _set("model.params.max_tokens", "50"),
        "1.0.0.yaml",
        "model.params.max_tokens",
        "valid integer",
    ),
    (
        "fallback repeats the model",
        _set("fallbacks", [{"provider": "mock", "name": "mock-model"}]),
        "1.0.0.yaml",
        "fallbacks[0]",
        "already the model",
    ),
    (
        "fields and schema",
        _set("input.schema", {"type": "object", "properties": {}}),
        "1.0.0.yaml",
        "input",
        "exactly one",
    ),
    (
        "bad compact type",
        _set("input.fields.name", "str"),
        "1.0.0.yaml",
        "input.fields.name",
        "not a field type",
    ),
    (
        "default of the wrong type",
        _set("input.fields.tone", 'integer = "loud"'),
        "1.0.0.yaml",
        "input.fields.tone",
        "default does not fit",
    ),
    (
        "invalid JSON Schema",
        _set("input", {"schema": {"type": "object", "properties": {"name": {"type": "strin"}}}}),
        "1.0.0.yaml",
        "input.schema.properties.name.type",
        "not a valid JSON Schema",
    ),
    (
        "input schema not an object",
        _set("input", {"schema": {"type": "string"}}),
        "1.0.0.yaml",
        "input.schema",
        "type: object",
    ),
    (
        "remote reference",
        _set(
            "input",
            {
                "schema": {
                    "type": "object",
                    "properties": {"name": {"$ref": "https://example.com/name.json"}},
                }
            },
        ),
        "1.0.0.yaml",
        "input.schema",
        "etriev",
    ),
    (
        "another JSON Schema dialect",
        _set(
            "input",
            {
                "schema": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                }
            },
        ),
        "1.0.0.yaml",
        "input.schema.$schema",
        "not supported",
    ),
    (
        "schema with text output",
        _set("output", {"format": "text", "schema": {"type": "object"}}),
        "1.0.0.yaml",
        "output",
        "need `format: json`",
    ),
    (
        "invalid output schema",
        _set("output", {"format": "json", "schema": {"type": "object", "required": "name"}}),
        "1.0.0.yaml",
        "output.schema.required",
        "not a valid JSON Schema",
    ),
    (
        "output model not importable",
        _set("output", {"format": "json", "model": "no_such_package.models:Reply"}),
        "1.0.0.yaml",
        "output.model",
        "cannot import 'no_such_package.models'",
    ),
    (
        "output model missing",
        _set("output", {"format": "json", "model": "json:Nope"}),
        "1.0.0.yaml",
        "output.model",
        "has no 'Nope'",
    ),
    (
        "output model not a pydantic model",
        _set("output", {"format": "json", "model": "dataclasses:dataclass"}),
        "1.0.0.yaml",
        "output.model",
        "not a pydantic model",
    ),
    (
        "output with schema and model",
        _set(
            "output",
            {
                "format": "json",
                "schema": {"type": "object"},
                "model": "greeting_models:Greeting",
            },
        ),
        "1.0.0.yaml",
        "output",
        "not both",
    ),
    (
        "template syntax error",
        _template(1, "Hi {{ name }"),
        "1.0.0.yaml",
        "messages[1].template",
        "template error on line 1",
    ),
    (
        "undeclared variable",
        _template(1, "Hi {{ nme }}"),
        "1.0.0.yaml",
        "messages[1].template",
        "uses nme, which the input does not declare",
    ),
    (
        "unknown filter",
        _template(1, "Hi {{ name | shout }}"),
        "1.0.0.yaml",
        "messages[1].template",
        "No filter named 'shout'",
    ),
    (
        "include",
        _template(0, "{% include 'other.txt' %}"),
        "1.0.0.yaml",
        "messages[0].template",
        "cannot include",
    ),
    ("empty template", _template(0, ""), "1.0.0.yaml", "messages[0].template", "at least 1"),
    (
        "unknown role",
        _set("messages.0.role", "tool"),
        "1.0.0.yaml",
        "messages[0].role",
        "'system', 'user' or 'assistant'",
    ),
    (
        "system after user",
        _set(
            "messages",
            [
                {"role": "user", "template": "{{ name }}"},
                {"role": "system", "template": "Be brief."},
            ],
        ),
        "1.0.0.yaml",
        "messages[1].role",
        "must come before",
    ),
    (
        "no user message",
        _set("messages", [{"role": "system", "template": "{{ name }}"}]),
        "1.0.0.yaml",
        "messages",
        "role user",
    ),
    ("tools not a list", _set("tools", "lookup_order"), "1.0.0.yaml", "tools", "valid list"),
    ("tool not a string", _set("tools", ["lookup_order", 3]), "1.0.0.yaml", "tools[1]", "string"),
    (
        "tool name with a space",
        _set("tools", ["look up"]),
        "1.0.0.yaml",
        "tools",
        "'look up' is not a tool name",
    ),
    (
        "tool listed twice",
        _set("tools", ["lookup_order", "search_faq", "lookup_order"]),
        "1.0.0.yaml",
        "tools",
        "'lookup_order' is listed more than once",
    ),
    (
        "nested metadata",
        _set("metadata", {"owner": {"team": "x"}}),
        "1.0.0.yaml",
        "metadata",
        "string, number or boolean",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "file_name", "field", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
def test_malformed_file_is_refused_naming_the_file_and_the_field(
    write_prompt: WritePrompt,
    prompts_root: Path,
    mutation: Mutation,
    file_name: str,
    field: str | None,
    words: str,
    make_prompt: MakePrompt,
) -> None:
    document = make_prompt()
    mutation(document)
    write_prompt(document, directory="greet", name=file_name)

    problems = problems_of(prompts_root)

    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.file == f"prompts/greet/{file_name}"
    assert problem.field == field
    assert words in problem.message
    assert str(problem).startswith(f"prompts/greet/{file_name}: {field}: ")
    assert "\n" not in str(problem)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param(
            "id: greet\nversion: [1.0.0\n", "not valid YAML: line 3, column 1: ", id="yaml syntax"
        ),
        pytest.param(
            "id: greet\nid: hello\n",
            "not valid YAML: line 2, column 1: found the key 'id' twice",
            id="duplicate key",
        ),
        pytest.param("- id: greet\n", "must be a YAML mapping", id="not a mapping"),
        pytest.param("", "must be a YAML mapping", id="empty file"),
    ],
)
def test_unreadable_file_is_refused_naming_the_file(
    write_prompt: WritePrompt, prompts_root: Path, text: str, words: str
) -> None:

    write_prompt(text, directory="greet", name="1.0.0.yaml")

    problems = problems_of(prompts_root)

    assert len(problems) == 1
    assert problems[0].file == "prompts/greet/1.0.0.yaml"
    assert problems[0].field is None
    assert words in problems[0].message


def test_non_utf8_file_is_refused(prompts_root: Path) -> None:
    (prompts_root / "greet").mkdir()
    (prompts_root / "greet" / "1.0.0.yaml").write_bytes(b"id: gr\xe9et\n")

    [problem] = problems_of(prompts_root)

    assert problem.message.startswith("not UTF-8 text")


def test_duplicate_id_and_version_names_both_files(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    write_prompt(make_prompt(), name="1.0.0.yaml")
    write_prompt(make_prompt(), name="1.0.0.yml")

    [problem] = problems_of(prompts_root)

    assert problem.file == "prompts/greet/1.0.0.yml"
    assert problem.field == "version"
    assert "greet@1.0.0 is also in prompts/greet/1.0.0.yaml" in problem.message


def test_a_label_on_two_versions_is_refused(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    first, second = make_prompt(version="1.0.0"), make_prompt(version="1.1.0")
    first["labels"] = second["labels"] = ["production"]
    write_prompt(first)
    write_prompt(second)

    [problem] = problems_of(prompts_root)

    assert problem.file == "prompts/greet/1.1.0.yaml"
    assert problem.field == "labels"
    assert "'production' is also on greet@1.0.0 (prompts/greet/1.0.0.yaml)" in problem.message


def test_a_prompt_file_outside_an_id_folder_is_refused(
    prompts_root: Path, make_prompt: MakePrompt
) -> None:
    (prompts_root / "greet.yaml").write_text(yaml_of(make_prompt()))

    [problem] = problems_of(prompts_root)

    assert problem.file == "prompts/greet.yaml"
    assert "<id>/<version>.yaml" in problem.message


def test_a_folder_inside_a_prompt_folder_is_refused(prompts_root: Path) -> None:
    (prompts_root / "greet" / "old").mkdir(parents=True)

    [problem] = problems_of(prompts_root)

    assert problem.file == "prompts/greet/old"
    assert "<id>/<version>.yaml" in problem.message


def test_a_missing_override_directory_is_a_problem(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "nowhere")

    assert problem.file == "nowhere"
    assert "PROMPTS_DIR directory does not exist" in problem.message


def test_every_bad_file_is_reported_at_once(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    good = make_prompt("good")
    bad_version = make_prompt("first")
    bad_version["version"] = 2
    bad_template = make_prompt("second")
    bad_template["messages"][1]["template"] = "{{ missing }}"
    for document in (good, bad_version, bad_template):
        write_prompt(document, directory=str(document["id"]), name="1.0.0.yaml")

    problems = problems_of(prompts_root)

    assert [(problem.file, problem.field) for problem in problems] == [
        ("prompts/first/1.0.0.yaml", "version"),
        ("prompts/second/1.0.0.yaml", "messages[1].template"),
    ]
    assert str(PromptLoadError(problems)).count("\n") == 1
