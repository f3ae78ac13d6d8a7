"""Rendering: validated inputs, StrictUndefined, the sandbox, inputs as data, the request."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airuntime.prompts import (
    PromptInputError,
    PromptRegistry,
    PromptRenderError,
    PromptTarget,
    RenderedPrompt,
)
from airuntime.prompts.loader import PromptSource
from airuntime.types import Message

MakePrompt = Callable[..., dict[str, Any]]
WritePrompt = Callable[..., Path]
RegistryWith = Callable[..., PromptRegistry]


@pytest.fixture
def registry_with(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> RegistryWith:
    """A registry of one valid prompt with some top-level keys replaced."""

    def build(**changes: Any) -> PromptRegistry:
        document = make_prompt()
        document.update(changes)
        write_prompt(document)
        return PromptRegistry.load([PromptSource.directory(prompts_root)])

    return build


def user_template(template: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "template": template}],
        "input": {"fields": fields or {"name": "string", "tone": "string?"}},
    }


def test_render_returns_messages_targets_and_the_prompt_identity(
    registry_with: RegistryWith,
) -> None:
    registry = registry_with()

    rendered = registry.render("greet", {"name": "Ada"})

    assert rendered.messages == (
        Message(role="system", content="You greet people."),
        Message(role="user", content="Greet <name>Ada</name>."),
    )
    assert rendered.ref == "greet@1.0.0"
    assert rendered.content_hash == registry.get("greet").content_hash
    assert rendered.content_hash.startswith("sha256:")
    assert rendered.targets == (rendered.target, *rendered.fallbacks)
    assert [str(target) for target in rendered.targets] == ["mock/mock-model", "mock/mock-fallback"]
    assert rendered.params.max_tokens == 50
    assert dict(rendered.inputs) == {"name": "Ada"}
    assert rendered.output_model is None


def test_a_rendered_prompt_is_immutable(registry_with: RegistryWith) -> None:
    rendered = registry_with().render("greet", {"name": "Ada"})

    with pytest.raises(dataclasses.FrozenInstanceError):
        rendered.version = "2.0.0"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rendered.inputs["name"] = "Eve"  # type: ignore[index]


def test_defaults_fill_missing_inputs(registry_with: RegistryWith) -> None:
    registry = registry_with(
        **user_template("{{ name }} x{{ times }}", {"name": "string", "times": "integer = 3"}),
    )

    assert registry.render("greet", {"name": "Ada"}).messages[0].content == "Ada x3"
    assert registry.render("greet", {"name": "Ada", "times": 5}).messages[0].content == "Ada x5"


def test_templates_see_jinja_globals_on_every_render(registry_with: RegistryWith) -> None:
    template = "{% for n in range(times) %}{{ cycler('a', 'b').next() }}{{ n }}{% endfor %}"
    registry = registry_with(**user_template(template, {"times": "integer"}))

    for times in (2, 3, 2):  # globals are compiled in once and stay the same for every render
        expected = "".join(f"a{n}" for n in range(times))
        assert registry.render("greet", {"times": times}).messages[0].content == expected


@pytest.mark.parametrize(
    "value",
    [
        "{{ 7*7 }}",
        "{% for x in range(3) %}{{ x }}{% endfor %}",
        "{{ ''.__class__.__mro__ }}",
        "{# comment #}",
        "{{ name }}",
    ],
)
def test_template_syntax_in_an_input_renders_literally(
    registry_with: RegistryWith, value: str
) -> None:
    registry = registry_with()

    rendered = registry.render("greet", {"name": value})

    assert rendered.messages[1].content == f"Greet <name>{value}</name>."


def test_a_missing_optional_variable_is_an_error_not_an_empty_string(
    registry_with: RegistryWith,
) -> None:
    registry = registry_with(**user_template("{{ name }}{{ tone }}"))

    with pytest.raises(PromptRenderError) as caught:
        registry.render("greet", {"name": "Ada"})

    message = str(caught.value)
    assert message.startswith("greet@1.0.0: messages[0].template (prompts/greet/1.0.0.yaml): ")
    assert "'tone' is undefined" in message
    assert "`is defined`" in message


def test_an_optional_variable_can_be_guarded(registry_with: RegistryWith) -> None:
    template = "Hi {{ name }}{% if tone is defined %} ({{ tone }}){% endif %}."
    registry = registry_with(**user_template(template))

    assert registry.render("greet", {"name": "Ada"}).messages[0].content == "Hi Ada."
    rendered = registry.render("greet", {"name": "Ada", "tone": "warm"})
    assert rendered.messages[0].content == "Hi Ada (warm)."


@pytest.mark.parametrize(
    ("template", "refused"),
    [
        ("{{ name.__class__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
        ("{{ name.__class__.__mro__[1].__subclasses__() }}", "__class__"),
        ("{{ cycler.__init__.__globals__ }}", "__init__"),
        ("{{ name.format.__globals__ }}", "__globals__"),
        ("{{ '{0.__class__}'.format(name) }}", "__class__"),
        ("{{ tags.append('x') }}", "access to attribute 'append' of 'list' object is unsafe"),
        ("{{ lipsum.__globals__['os'] }}", "__globals__"),
    ],
)
def test_sandbox_escapes_are_refused(
    registry_with: RegistryWith, template: str, refused: str
) -> None:
    fields = {"name": "string", "tags": "list[string]"}
    registry = registry_with(**user_template(template, fields))

    with pytest.raises(PromptRenderError) as caught:
        registry.render("greet", {"name": "Ada", "tags": ["a"]})

    assert "refused by the sandbox" in str(caught.value)
    assert refused in str(caught.value)


def test_a_runtime_error_in_a_template_is_a_render_error(registry_with: RegistryWith) -> None:
    fields = {"name": "string", "count": "integer"}
    registry = registry_with(**user_template("{{ count + name }}", fields))

    with pytest.raises(PromptRenderError, match="TypeError: unsupported operand"):
        registry.render("greet", {"name": "Ada", "count": 1})


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "greet@1.0.0: input 'name' is required"),
        ({"name": 7}, "greet@1.0.0: input 'name': 7 is not of type \"string\""),
        ({"name": "Ada", "nmae": "x"}, "input 'nmae' is not declared (declared: name, tone)"),
        ({"name": None}, "input 'name': null is not of type \"string\""),
    ],
)
def test_inputs_are_validated_with_one_line_naming_the_input(
    registry_with: RegistryWith, inputs: dict[str, Any], message: str
) -> None:
    registry = registry_with()

    with pytest.raises(PromptInputError) as caught:
        registry.render("greet", inputs)

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_nested_input_errors_name_the_item(registry_with: RegistryWith) -> None:
    fields = {"name": "string", "tags": "list[string]"}
    registry = registry_with(**user_template("{{ name }}{{ tags }}", fields))

    with pytest.raises(PromptInputError, match=r"input 'tags'\[1\]: 2 is not of type"):
        registry.render("greet", {"name": "Ada", "tags": ["a", 2]})


def test_inputs_must_be_a_mapping_of_json_values(registry_with: RegistryWith) -> None:

    registry = registry_with()
    prompt = registry.get("greet")

    with pytest.raises(PromptInputError, match="inputs must be a mapping"):
        prompt.render(["Ada"])  # type: ignore[arg-type]
    with pytest.raises(PromptInputError, match="inputs must be JSON values"):
        prompt.render({"name": datetime.date(2024, 1, 1)})


def test_a_json_schema_input_is_enforced(registry_with: RegistryWith) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 3}},
        "required": ["name"],
    }
    registry = registry_with(
        input={"schema": schema},
        messages=[{"role": "user", "template": "{{ name }}"}],
    )

    assert registry.render("greet", {"name": "Ada"}).messages[0].content == "Ada"
    with pytest.raises(PromptInputError, match="input 'name': \"Adele\" is longer than 3"):
        registry.render("greet", {"name": "Adele"})


def test_a_whole_input_problem_is_named_as_inputs(registry_with: RegistryWith) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "minProperties": 1}
    registry = registry_with(
        input={"schema": schema}, messages=[{"role": "user", "template": "Hi"}]
    )

    with pytest.raises(PromptInputError, match=r"greet@1\.0\.0: inputs: \{\} has less than 1 "):
        registry.render("greet", {})


def test_render_by_version_and_label(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    old = make_prompt(version="1.0.0")
    old["labels"] = ["production"]
    new = make_prompt(version="1.1.0")
    new["messages"][1]["template"] = "Hello {{ name }}!"
    write_prompt(old)
    write_prompt(new)
    registry = PromptRegistry.load([PromptSource.directory(prompts_root)])

    assert registry.render("greet", {"name": "Ada"}).messages[1].content == "Hello Ada!"
    by_label = registry.render("greet", {"name": "Ada"}, label="production")
    assert by_label.messages[1].content == "Greet <name>Ada</name>."
    assert registry.render("greet", {"name": "Ada"}, version="1.0.0").version == "1.0.0"


@pytest.fixture
def rendered(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> RenderedPrompt:
    document = make_prompt()
    document["model"]["params"] = {"max_tokens": 50, "temperature": 0.3, "stop": ["END"]}
    document["fallbacks"] = [{"provider": "mock", "name": "backup", "params": {"seed": 11}}]
    document["output"] = {"format": "json", "schema": {"type": "object"}}
    write_prompt(document)
    registry = PromptRegistry.load([PromptSource.directory(prompts_root)])
    return registry.render("greet", {"name": "Ada"})


def test_to_request_tags_the_request_with_the_prompt(rendered: RenderedPrompt) -> None:
    request = rendered.to_request(request_id="req-1", metadata={"tenant": "acme"})

    assert request.model == "mock-model"
    assert request.messages == rendered.messages
    assert request.temperature == 0.3
    assert request.max_tokens == 50
    assert request.stop == ("END",)
    assert request.seed is None
    assert request.output == rendered.output
    assert request.output.type == "json_schema"
    assert request.request_id == "req-1"
    assert dict(request.metadata) == {
        "tenant": "acme",
        "prompt.id": "greet",
        "prompt.version": "1.0.0",
        "prompt.hash": rendered.content_hash,
    }


def test_to_request_for_a_fallback_uses_its_model_and_params(rendered: RenderedPrompt) -> None:
    request = rendered.to_request(rendered.fallbacks[0])

    assert request.model == "backup"
    assert (request.temperature, request.max_tokens, request.seed) == (0.3, 50, 11)
    assert request.request_id  # a fresh id when none is given


def test_to_request_without_max_tokens_keeps_the_request_default(
    write_prompt: WritePrompt, prompts_root: Path, make_prompt: MakePrompt
) -> None:
    document = make_prompt()
    document["model"]["params"] = {}
    write_prompt(document)
    rendered = PromptRegistry.load([PromptSource.directory(prompts_root)]).render(
        "greet", {"name": "Ada"}
    )

    assert rendered.to_request().max_tokens == 1024


def test_to_request_refuses_a_target_the_prompt_does_not_name(rendered: RenderedPrompt) -> None:
    stranger = PromptTarget(provider="mock", model="other")

    with pytest.raises(ValueError, match=r"mock/other is not a target of greet@1\.0\.0"):
        rendered.to_request(stranger)
