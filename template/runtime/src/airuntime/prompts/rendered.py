"""What rendering a prompt gives: messages plus the resolved model settings and fallbacks.

A `RenderedPrompt` is immutable and carries everything the resilience layer needs: it walks
`target` then `fallbacks`, builds one `LLMRequest` per attempt with `to_request`, and keys
its cache on the prompt id, version and hash, the inputs, the model and the parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from airuntime.frozen import quick_init
from airuntime.types import (
    LLMRequest,
    Message,
    ModelTarget,
    OutputFormat,
    default_request_id,
    model_target,
)

# Keys of `LLMRequest.metadata` that say which prompt version a request came from.
PROMPT_ID_KEY = "prompt.id"
PROMPT_VERSION_KEY = "prompt.version"
PROMPT_HASH_KEY = "prompt.hash"


class ModelParams(BaseModel):
    """Sampling parameters; None means the provider's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: PositiveInt | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


class PromptTarget(BaseModel):
    """One provider and model to try, with the parameters to call it with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    model: str
    params: ModelParams = Field(default_factory=ModelParams)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def model_target(self) -> ModelTarget:
        """The (provider, model) the resilience layer routes on, without the parameters."""
        return model_target(self.provider, self.model)


@quick_init
@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A prompt version rendered with validated inputs."""

    prompt_id: str
    version: str
    content_hash: str
    messages: tuple[Message, ...]
    inputs: Mapping[str, Any]
    target: PromptTarget
    fallbacks: tuple[PromptTarget, ...]
    output: OutputFormat
    output_model: type[BaseModel] | None = None

    @property
    def ref(self) -> str:
        """`id@version`, the name used in logs and in prompts.lock."""
        return f"{self.prompt_id}@{self.version}"

    @property
    def params(self) -> ModelParams:
        """The parameters of the primary target."""
        return self.target.params

    @property
    def targets(self) -> tuple[PromptTarget, ...]:
        """The primary target then the fallbacks, in the order to try them."""
        return (self.target, *self.fallbacks)

    def prompt_target(self, target: ModelTarget) -> PromptTarget:
        """This prompt's target (with its parameters) for a (provider, model)."""
        for candidate in self.targets:
            if candidate.provider == target.provider and candidate.model == target.model:
                return candidate
        choices = ", ".join(str(each) for each in self.targets)
        raise ValueError(f"{target} is not a target of {self.ref}: choose one of {choices}")

    def to_request(
        self,
        target: PromptTarget | None = None,
        *,
        request_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> LLMRequest:
        """The request for one target (the primary by default), tagged with this prompt."""
        chosen = self.target if target is None else target
        if chosen is not self.target and chosen not in self.targets:
            choices = ", ".join(str(each) for each in self.targets)
            raise ValueError(f"{chosen} is not a target of {self.ref}: choose one of {choices}")
        tags = {
            **(metadata or {}),
            PROMPT_ID_KEY: self.prompt_id,
            PROMPT_VERSION_KEY: self.version,
            PROMPT_HASH_KEY: self.content_hash,
        }
        params = chosen.params
        optional: dict[str, Any] = {}
        if params.max_tokens is not None:
            optional["max_tokens"] = params.max_tokens
        return LLMRequest(
            model=chosen.model,
            messages=self.messages,
            temperature=params.temperature,
            stop=params.stop,
            seed=params.seed,
            output=self.output,
            # Given rather than left to the field's default factory, which pydantic calls at
            # a cost of its own: the same id either way, the current request's (the service's
            # X-Request-ID) when there is one, so a feature's answer carries its request's id.
            request_id=default_request_id() if request_id is None else request_id,
            metadata=tags,
            **optional,
        )
