"""The prompt file format: one YAML file per prompt version, checked field by field.

These models check the shape and the per-field rules of a file (unknown keys, types, SemVer,
provider names); the loader checks what spans fields (schemas, templates, fallbacks).
See `library/summarize/1.0.0.yaml` for a complete example.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import semver
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# The providers a prompt may name unless the loader is told the project's own (validation
# context "providers"): the mock and every adapter the runtime has.
KNOWN_PROVIDERS: frozenset[str] = frozenset({"mock", "openai", "anthropic"})
PROVIDERS_CONTEXT = "providers"
ID_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")
LABEL_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# What a model API accepts as a function name (OpenAI's and Anthropic's rule).
TOOL_NAME_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Labels move between versions without changing what a version does, so they are not hashed.
UNHASHED_KEYS = frozenset({"labels", "canary_weight"})
# The labels of a rollout: `production` serves by default, `canary` its weight's share.
PRODUCTION, CANARY, PREVIOUS = "production", "canary", "previous"


class _Strict(BaseModel):
    # strict: YAML already gives typed values, so "0.2" for a temperature is a mistake to report.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=False)


class ParamsSpec(_Strict):
    """Model parameters; anything left out is the provider's default."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    stop: list[str] | None = Field(default=None, min_length=1, max_length=4)
    seed: int | None = None


class TargetSpec(_Strict):
    """A provider and model to call; `params` of a fallback override the primary's, key by key."""

    provider: str
    name: str = Field(min_length=1, max_length=200)
    params: ParamsSpec = Field(default_factory=ParamsSpec)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str, info: ValidationInfo) -> str:
        context = info.context if isinstance(info.context, Mapping) else {}
        providers = context.get(PROVIDERS_CONTEXT, KNOWN_PROVIDERS)
        if value not in providers:
            known = ", ".join(sorted(providers))
            raise ValueError(f"{value!r} is not one of this project's providers ({known})")
        return value

    @field_validator("name")
    @classmethod
    def _no_whitespace(cls, value: str) -> str:
        if value != value.strip() or any(char.isspace() for char in value):
            raise ValueError(f"model name {value!r} contains whitespace")
        return value


class InputSpec(_Strict):
    """The inputs a prompt takes: a compact field list or a JSON Schema (exactly one)."""

    fields: dict[str, str] | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")


class OutputSpec(_Strict):
    """What the model must answer: text, or JSON checked by a JSON Schema or a pydantic model."""

    format: Literal["text", "json"] = "text"
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    model: str | None = Field(default=None, min_length=1)


class MessageSpec(_Strict):
    """One role-tagged Jinja2 template."""

    role: Literal["system", "user", "assistant"]
    template: str = Field(min_length=1)


class PromptFile(_Strict):
    """Everything one prompt file may contain."""

    id: str
    version: str
    description: str = Field(min_length=1, max_length=1000)
    labels: list[str] = Field(default_factory=list)
    # The share of traffic (percent) this version serves while it is the canary.
    canary_weight: int | None = Field(default=None, ge=0, le=100)
    model: TargetSpec
    fallbacks: list[TargetSpec] = Field(default_factory=list, max_length=10)
    input: InputSpec
    output: OutputSpec = Field(default_factory=OutputSpec)
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # The tools an agent running this prompt may offer and run; absent: the prompt is not for
    # an agent, and an agent given it offers none.
    tools: list[str] | None = Field(default=None, max_length=128)
    messages: list[MessageSpec] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not ID_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a prompt id: use lowercase letters, digits, '-' and '_', "
                "starting with a letter (at most 64 characters)"
            )
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _semver(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError(f'{value!r} is not a string: quote it, e.g. version: "1.0.0"')
        if not semver.Version.is_valid(value):
            raise ValueError(f"{value!r} is not a SemVer version such as 1.0.0 or 1.1.0-rc.1")
        if semver.Version.parse(value).build is not None:
            raise ValueError(
                f"{value!r} has build metadata (+...), which SemVer does not order: drop it"
            )
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _scalar_metadata(cls, value: object) -> object:
        # Checked here so a bad value gives one message, not one per member of the union.
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ValueError(f"the key {key!r} is not a string")
                if not isinstance(item, str | int | float | bool):
                    raise ValueError(
                        f"{key!r} must be a string, number or boolean, not {type(item).__name__}"
                    )
        return value

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if not LABEL_PATTERN.fullmatch(label):
                raise ValueError(
                    f"{label!r} is not a label: use lowercase letters, digits, '-' and '_', "
                    "starting with a letter (at most 32 characters)"
                )
        duplicates = sorted({label for label in value if value.count(label) > 1})
        if duplicates:
            named = ", ".join(repr(label) for label in duplicates)
            raise ValueError(f"{named} is listed more than once: list each label once")
        return value

    @field_validator("tools")
    @classmethod
    def _valid_tools(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if not TOOL_NAME_PATTERN.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a tool name: use letters, digits, '-' and '_' "
                    "(at most 64 characters)"
                )
        duplicates = sorted({name for name in value or () if value and value.count(name) > 1})
        if duplicates:
            named = ", ".join(repr(name) for name in duplicates)
            raise ValueError(f"{named} is listed more than once: list each tool once")
        return value

    @model_validator(mode="after")
    def _weight_needs_the_canary_label(self) -> PromptFile:
        if self.canary_weight is not None and CANARY not in self.labels:
            raise ValueError(
                "canary_weight is the traffic share of the canary: add 'canary' to labels, or "
                "drop canary_weight"
            )
        return self


def content_hash(document: Mapping[str, Any]) -> str:
    """The content hash of a prompt version.

    What is hashed: the YAML document as parsed (every key and value the file states, no
    defaults added) without `labels`, serialised as JSON with sorted keys, no whitespace
    between tokens and non-ASCII characters kept, encoded as UTF-8. So comments, key order,
    quoting and YAML layout do not change the hash; any change of a value does, including a
    single space inside a message template.
    """
    hashed = {key: value for key, value in document.items() if key not in UNHASHED_KEYS}
    canonical = json.dumps(
        hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
