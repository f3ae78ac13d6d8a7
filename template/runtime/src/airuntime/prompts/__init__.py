"""The prompt registry: versioned prompt files with input and output schemas, model settings
and fallbacks, rendered in a sandbox, and locked by content hash.

    registry = load_registry(files("my_app") / "prompts" / "library")  # checks every file
    rendered = registry.render("summarize", {"text": document})
    request = rendered.to_request()  # or walk rendered.targets for fallbacks
"""

from airuntime.prompts.errors import (
    PromptError,
    PromptInputError,
    PromptLoadError,
    PromptLookupError,
    PromptProblem,
    PromptRenderError,
)
from airuntime.prompts.prompt import Prompt
from airuntime.prompts.registry import (
    PromptRegistry,
    clear_registry_cache,
    load_registry,
    shared_registry,
)
from airuntime.prompts.rendered import (
    ModelParams,
    PromptTarget,
    RenderedPrompt,
)
from airuntime.prompts.spec import KNOWN_PROVIDERS

__all__ = [
    "KNOWN_PROVIDERS",
    "ModelParams",
    "Prompt",
    "PromptError",
    "PromptInputError",
    "PromptLoadError",
    "PromptLookupError",
    "PromptProblem",
    "PromptRegistry",
    "PromptRenderError",
    "PromptTarget",
    "RenderedPrompt",
    "clear_registry_cache",
    "load_registry",
    "shared_registry",
]
