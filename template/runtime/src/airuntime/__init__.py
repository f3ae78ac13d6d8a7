"""airuntime: the runtime of a copier-ai-system project, and the one module it imports from.

Everything a project may use is listed in `__all__` and importable from here:

    from airuntime import ResilientClient, StructuredGenerator, load_registry

Names load on first use (PEP 562), so `import airuntime` costs next to nothing and a command
line that never calls a model never imports the model stack. The layers below this module
(see README.md) are the runtime's own business: they may move between versions, this list
changes only with a CHANGELOG entry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from airuntime.agents.loop import Agent, AgentConfig
    from airuntime.agents.run import (
        AgentLimits,
        AgentRun,
        AgentStep,
        PendingApproval,
        StopReason,
        ToolOutcome,
    )
    from airuntime.agents.store import RunNotFoundError, RunStore, ToolResults
    from airuntime.agents.tools import Tool, ToolContext, ToolError, make_tool, tool
    from airuntime.cli.agents import (
        exit_code_of,
        redacted_trace,
        render_outcome,
        render_trace,
        summary_line,
        trace_app,
    )
    from airuntime.cli.ask import AskSetup, ask_command
    from airuntime.cli.eval_commands import EvalSetup
    from airuntime.cli.evals import eval_app
    from airuntime.cli.exits import ExitCode, fail
    from airuntime.cli.prompts import PromptSetup, prompts_app
    from airuntime.cli.review import item_row, review_app
    from airuntime.cli.stats import stats_command
    from airuntime.cli.support import (
        STDIN,
        exit_code_for,
        exits_on_known_errors,
        global_options,
        load_or_exit,
        offline_note,
        one_line,
        progress_bar,
        read_text,
        set_global_options,
        wants_json,
    )
    from airuntime.errors import (
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ContentFilteredError,
        ContextLengthExceededError,
        LLMError,
        ProviderConnectionError,
        ProviderTimeoutError,
        RateLimitedError,
        RetryableError,
        ServerError,
        TerminalError,
        parse_retry_after,
    )
    from airuntime.evals.dataset import Dataset, DatasetError, EvalCase, load_dataset
    from airuntime.evals.feature import CustomScorer, EvalFeature
    from airuntime.evals.gate import Tolerances
    from airuntime.evals.scorers import register_scorer
    from airuntime.extractive import fit, lead, ranked, shorten, split_sentences, word_count, words
    from airuntime.features import FeatureOutput, FeaturePolicy, FeatureResult, FeatureSystem
    from airuntime.guardrails import (
        InputRejectedError,
        clean_labels,
        clean_text,
        escape_delimiters,
        strip_control_characters,
    )
    from airuntime.model.cassette_mode import CASSETTE_MODES, CassetteMode, CassetteSession
    from airuntime.model.cassettes import (
        Cassette,
        CassetteError,
        Interaction,
        ReplayMissError,
        find_secrets,
        load_cassettes,
    )
    from airuntime.model.client import LLMClient
    from airuntime.model.factory import (
        PROVIDERS,
        MockConfig,
        ProviderConfig,
        build_mock,
        build_provider,
        resolve_provider,
    )
    from airuntime.model.mock import CallTool, MockLLM, MockScriptExhaustedError, Reply, Rule, Step
    from airuntime.model.mock_faults import (
        Fault,
        FaultKind,
        Latency,
        parse_fault_spec,
        parse_latency_spec,
    )
    from airuntime.model.recording import CassetteRecorder, RecordingClient
    from airuntime.model.replay import ReplayClient
    from airuntime.observability.events import (
        AttemptRecord,
        CallOutcome,
        CallRecord,
        NullObserver,
        Observer,
        RecordingObserver,
        ValidationFailure,
    )
    from airuntime.observability.logs import LogFormat, LogLevel, configure_logging, reset_logging
    from airuntime.observability.metrics import MetricsRegistry
    from airuntime.observability.setup import configure_observability, log_format_for
    from airuntime.observability.telemetry import Telemetry
    from airuntime.prompts import (
        KNOWN_PROVIDERS,
        ModelParams,
        Prompt,
        PromptError,
        PromptInputError,
        PromptLoadError,
        PromptLookupError,
        PromptProblem,
        PromptRegistry,
        PromptRenderError,
        PromptTarget,
        RenderedPrompt,
        clear_registry_cache,
        load_registry,
        shared_registry,
    )
    from airuntime.prompts.lock import check_lock, write_lock
    from airuntime.redaction import redact
    from airuntime.resilience.assembly import (
        BudgetConfig,
        CacheConfig,
        ProviderClients,
        StackConfig,
        build_resilient_client,
        cassette_clients,
        provider_clients,
    )
    from airuntime.resilience.breaker import BreakerBoard, BreakerState, CircuitBreaker
    from airuntime.resilience.budget import Budget, BudgetExceeded, DailyLedger
    from airuntime.resilience.cache import ResponseCache
    from airuntime.resilience.chain import (
        AllTargetsFailedError,
        ChainResult,
        ResilienceConfig,
        TargetFailure,
        UnknownCostError,
    )
    from airuntime.resilience.client import ResilientClient
    from airuntime.resilience.genai_pricing import genai_prices_source
    from airuntime.resilience.interface import ResilientRunner
    from airuntime.resilience.limits import Limits
    from airuntime.resilience.pricing import ModelPrice, PriceSource, PriceTable, PricingError
    from airuntime.resilience.retry import RetryPolicy
    from airuntime.resilience.targets import MASKABLE_ERRORS, parse_error_kinds, parse_targets
    from airuntime.review import (
        Decision,
        ReviewDecision,
        ReviewError,
        ReviewItem,
        ReviewQueue,
        ReviewReason,
        ReviewStatus,
    )
    from airuntime.structured import (
        Generated,
        StructuredGenerator,
        StructuredOutputError,
        SwitchedOffError,
    )
    from airuntime.testing import FakeClock, flat_prices, resilient_client
    from airuntime.types import (
        TEXT_OUTPUT,
        Chunk,
        FinishReason,
        LLMRequest,
        LLMResponse,
        Message,
        ModelTarget,
        OutputFormat,
        Role,
        ToolCall,
        ToolCallDelta,
        ToolChoice,
        ToolSpec,
        Usage,
        new_request_id,
    )

# Where each public name lives: module -> names (the imports above, for type checkers).
_MODULES: dict[str, tuple[str, ...]] = {
    "types": (
        "Chunk",
        "FinishReason",
        "LLMRequest",
        "LLMResponse",
        "Message",
        "ModelTarget",
        "OutputFormat",
        "Role",
        "TEXT_OUTPUT",
        "ToolCall",
        "ToolCallDelta",
        "ToolChoice",
        "ToolSpec",
        "Usage",
        "new_request_id",
    ),
    "errors": (
        "AuthenticationError",
        "BadRequestError",
        "ConfigurationError",
        "ContentFilteredError",
        "ContextLengthExceededError",
        "LLMError",
        "ProviderConnectionError",
        "ProviderTimeoutError",
        "RateLimitedError",
        "RetryableError",
        "ServerError",
        "TerminalError",
        "parse_retry_after",
    ),
    "redaction": ("redact",),
    "extractive": ("fit", "lead", "ranked", "shorten", "split_sentences", "word_count", "words"),
    "guardrails": (
        "InputRejectedError",
        "clean_labels",
        "clean_text",
        "escape_delimiters",
        "strip_control_characters",
    ),
    "model.client": ("LLMClient",),
    "model.cassettes": (
        "Cassette",
        "CassetteError",
        "Interaction",
        "ReplayMissError",
        "find_secrets",
        "load_cassettes",
    ),
    "model.cassette_mode": ("CASSETTE_MODES", "CassetteMode", "CassetteSession"),
    "model.recording": ("CassetteRecorder", "RecordingClient"),
    "model.replay": ("ReplayClient",),
    "model.mock": ("CallTool", "MockLLM", "MockScriptExhaustedError", "Reply", "Rule", "Step"),
    "model.mock_faults": (
        "Fault",
        "FaultKind",
        "Latency",
        "parse_fault_spec",
        "parse_latency_spec",
    ),
    "model.factory": (
        "PROVIDERS",
        "MockConfig",
        "ProviderConfig",
        "build_mock",
        "build_provider",
        "resolve_provider",
    ),
    "observability.events": (
        "AttemptRecord",
        "CallOutcome",
        "CallRecord",
        "NullObserver",
        "Observer",
        "RecordingObserver",
        "ValidationFailure",
    ),
    "observability.logs": ("LogFormat", "LogLevel", "configure_logging", "reset_logging"),
    "observability.metrics": ("MetricsRegistry",),
    "observability.setup": ("configure_observability", "log_format_for"),
    "observability.telemetry": ("Telemetry",),
    "prompts.lock": ("check_lock", "write_lock"),
    "prompts": (
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
    ),
    "review": (
        "Decision",
        "ReviewDecision",
        "ReviewError",
        "ReviewItem",
        "ReviewQueue",
        "ReviewReason",
        "ReviewStatus",
    ),
    "resilience.breaker": ("BreakerBoard", "BreakerState", "CircuitBreaker"),
    "resilience.budget": ("Budget", "BudgetExceeded", "DailyLedger"),
    "resilience.cache": ("ResponseCache",),
    "resilience.chain": (
        "AllTargetsFailedError",
        "ChainResult",
        "ResilienceConfig",
        "TargetFailure",
        "UnknownCostError",
    ),
    "resilience.client": ("ResilientClient",),
    "resilience.interface": ("ResilientRunner",),
    "resilience.limits": ("Limits",),
    "resilience.pricing": ("ModelPrice", "PriceSource", "PriceTable", "PricingError"),
    "resilience.genai_pricing": ("genai_prices_source",),
    "resilience.retry": ("RetryPolicy",),
    "resilience.targets": ("MASKABLE_ERRORS", "parse_error_kinds", "parse_targets"),
    "resilience.assembly": (
        "BudgetConfig",
        "CacheConfig",
        "ProviderClients",
        "StackConfig",
        "build_resilient_client",
        "cassette_clients",
        "provider_clients",
    ),
    "structured": ("Generated", "StructuredGenerator", "StructuredOutputError", "SwitchedOffError"),
    "features": ("FeatureOutput", "FeaturePolicy", "FeatureResult", "FeatureSystem"),
    "evals.feature": ("CustomScorer", "EvalFeature"),
    "evals.gate": ("Tolerances",),
    "evals.scorers": ("register_scorer",),
    "evals.dataset": ("Dataset", "DatasetError", "EvalCase", "load_dataset"),
    "cli.exits": ("ExitCode", "fail"),
    "cli.support": (
        "STDIN",
        "exit_code_for",
        "exits_on_known_errors",
        "global_options",
        "load_or_exit",
        "offline_note",
        "one_line",
        "progress_bar",
        "read_text",
        "set_global_options",
        "wants_json",
    ),
    "agents.loop": (
        "Agent",
        "AgentConfig",
    ),
    "agents.run": (
        "AgentLimits",
        "AgentRun",
        "AgentStep",
        "PendingApproval",
        "StopReason",
        "ToolOutcome",
    ),
    "agents.store": (
        "RunNotFoundError",
        "RunStore",
        "ToolResults",
    ),
    "agents.tools": (
        "Tool",
        "ToolContext",
        "ToolError",
        "make_tool",
        "tool",
    ),
    "cli.agents": (
        "exit_code_of",
        "redacted_trace",
        "render_outcome",
        "render_trace",
        "summary_line",
        "trace_app",
    ),
    "cli.ask": ("AskSetup", "ask_command"),
    "cli.prompts": ("PromptSetup", "prompts_app"),
    "cli.review": ("item_row", "review_app"),
    "cli.stats": ("stats_command",),
    "cli.evals": ("eval_app",),
    "cli.eval_commands": ("EvalSetup",),
    "testing": ("FakeClock", "flat_prices", "resilient_client"),
}
_OWNER = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [  # the names of _MODULES, spelled out for type checkers (a unit test compares them)
    "CASSETTE_MODES",
    "KNOWN_PROVIDERS",
    "MASKABLE_ERRORS",
    "PROVIDERS",
    "STDIN",
    "TEXT_OUTPUT",
    "Agent",
    "AgentConfig",
    "AgentLimits",
    "AgentRun",
    "AgentStep",
    "AllTargetsFailedError",
    "AskSetup",
    "AttemptRecord",
    "AuthenticationError",
    "BadRequestError",
    "BreakerBoard",
    "BreakerState",
    "Budget",
    "BudgetConfig",
    "BudgetExceeded",
    "CacheConfig",
    "CallOutcome",
    "CallRecord",
    "CallTool",
    "Cassette",
    "CassetteError",
    "CassetteMode",
    "CassetteRecorder",
    "CassetteSession",
    "ChainResult",
    "Chunk",
    "CircuitBreaker",
    "ConfigurationError",
    "ContentFilteredError",
    "ContextLengthExceededError",
    "CustomScorer",
    "DailyLedger",
    "Dataset",
    "DatasetError",
    "Decision",
    "EvalCase",
    "EvalFeature",
    "EvalSetup",
    "ExitCode",
    "FakeClock",
    "Fault",
    "FaultKind",
    "FeatureOutput",
    "FeaturePolicy",
    "FeatureResult",
    "FeatureSystem",
    "FinishReason",
    "Generated",
    "InputRejectedError",
    "Interaction",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "Latency",
    "Limits",
    "LogFormat",
    "LogLevel",
    "Message",
    "MetricsRegistry",
    "MockConfig",
    "MockLLM",
    "MockScriptExhaustedError",
    "ModelParams",
    "ModelPrice",
    "ModelTarget",
    "NullObserver",
    "Observer",
    "OutputFormat",
    "PendingApproval",
    "PriceSource",
    "PriceTable",
    "PricingError",
    "Prompt",
    "PromptError",
    "PromptInputError",
    "PromptLoadError",
    "PromptLookupError",
    "PromptProblem",
    "PromptRegistry",
    "PromptRenderError",
    "PromptSetup",
    "PromptTarget",
    "ProviderClients",
    "ProviderConfig",
    "ProviderConnectionError",
    "ProviderTimeoutError",
    "RateLimitedError",
    "RecordingClient",
    "RecordingObserver",
    "RenderedPrompt",
    "ReplayClient",
    "ReplayMissError",
    "Reply",
    "ResilienceConfig",
    "ResilientClient",
    "ResilientRunner",
    "ResponseCache",
    "RetryPolicy",
    "RetryableError",
    "ReviewDecision",
    "ReviewError",
    "ReviewItem",
    "ReviewQueue",
    "ReviewReason",
    "ReviewStatus",
    "Role",
    "Rule",
    "RunNotFoundError",
    "RunStore",
    "ServerError",
    "StackConfig",
    "Step",
    "StopReason",
    "StructuredGenerator",
    "StructuredOutputError",
    "SwitchedOffError",
    "TargetFailure",
    "Telemetry",
    "TerminalError",
    "Tolerances",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolContext",
    "ToolError",
    "ToolOutcome",
    "ToolResults",
    "ToolSpec",
    "UnknownCostError",
    "Usage",
    "ValidationFailure",
    "ask_command",
    "build_mock",
    "build_provider",
    "build_resilient_client",
    "cassette_clients",
    "check_lock",
    "clean_labels",
    "clean_text",
    "clear_registry_cache",
    "configure_logging",
    "configure_observability",
    "escape_delimiters",
    "eval_app",
    "exit_code_for",
    "exit_code_of",
    "exits_on_known_errors",
    "fail",
    "find_secrets",
    "fit",
    "flat_prices",
    "genai_prices_source",
    "global_options",
    "item_row",
    "lead",
    "load_cassettes",
    "load_dataset",
    "load_or_exit",
    "load_registry",
    "log_format_for",
    "make_tool",
    "new_request_id",
    "offline_note",
    "one_line",
    "parse_error_kinds",
    "parse_fault_spec",
    "parse_latency_spec",
    "parse_retry_after",
    "parse_targets",
    "progress_bar",
    "prompts_app",
    "provider_clients",
    "ranked",
    "read_text",
    "redact",
    "redacted_trace",
    "register_scorer",
    "render_outcome",
    "render_trace",
    "reset_logging",
    "resilient_client",
    "resolve_provider",
    "review_app",
    "set_global_options",
    "shared_registry",
    "shorten",
    "split_sentences",
    "stats_command",
    "strip_control_characters",
    "summary_line",
    "tool",
    "trace_app",
    "wants_json",
    "word_count",
    "words",
    "write_lock",
]


def __getattr__(name: str) -> Any:
    module = _OWNER.get(name)
    if module is None:
        raise AttributeError(f"module 'airuntime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"airuntime.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
