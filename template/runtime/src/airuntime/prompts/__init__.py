"""The prompt registry: versioned prompt files with input and output schemas, model settings
and fallbacks, rendered in a sandbox, and locked by content hash.

    registry = get_registry()  # once, at start-up: loads and checks every prompt file
    rendered = registry.render("summarize", {"text": document})
    request = rendered.to_request()  # or walk rendered.targets for fallbacks
"""

from {{ package_name }}.prompts.errors import (
    PromptError,
    PromptInputError,
    PromptLoadError,
    PromptLookupError,
    PromptProblem,
    PromptRenderError,
)
from {{ package_name }}.prompts.prompt import Prompt
from {{ package_name }}.prompts.registry import (
    PromptRegistry,
    clear_registry_cache,
    get_registry,
    load_registry,
)
from {{ package_name }}.prompts.rendered import (
    ModelParams,
    PromptTarget,
    RenderedPrompt,
)

__all__ = [
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
    "get_registry",
    "load_registry",
]
