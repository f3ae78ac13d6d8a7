"""Runtime errors as HTTP answers. `service_error_for` is the one mapping; the JSON routes,
the SSE `error` event (and later other API dialects) render the same `ServiceError` in their
own shape."""

from __future__ import annotations

import math

from airuntime.errors import (
    ConfigurationError,
    ContentFilteredError,
    ContextLengthExceededError,
    LLMError,
    RateLimitedError,
)
from airuntime.guardrails import InputRejectedError
from airuntime.prompts import PromptInputError
from airuntime.resilience.budget import BudgetExceeded
from airuntime.resilience.chain import AllTargetsFailedError, UnknownCostError
from airuntime.resilience.switch import SwitchedOffError
from airuntime.service.errors import ErrorPolicy, ServiceError, seconds_to_utc_midnight
from airuntime.structured import StructuredOutputError


def service_error_for(error: BaseException, policy: ErrorPolicy) -> ServiceError | None:
    """The HTTP answer for a known runtime error; None for a bug (a 500, logged)."""
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, InputRejectedError | PromptInputError):
        return ServiceError(422, "input_rejected", _line(error))
    if isinstance(error, BudgetExceeded):
        wait = seconds_to_utc_midnight() if error.ceiling == "per-day" else 60
        return ServiceError(
            429,
            "budget_exceeded",
            f"the {error.ceiling} spending ceiling would be passed; the model was not called.",
            retry_after=wait,
        )
    if isinstance(error, AllTargetsFailedError):
        return ServiceError(
            503,
            "unavailable",
            "every model provider is unavailable and this route has no degraded answer.",
            retry_after=_unavailable_wait(error, policy),
        )
    if isinstance(error, StructuredOutputError):
        return ServiceError(502, "invalid_output", "the model's answer did not validate.")
    if isinstance(error, ContextLengthExceededError | ContentFilteredError):
        return ServiceError(422, error.kind, "the model refused this input: " + error.kind)
    if isinstance(error, LLMError):
        return _llm_error(error, policy)
    if isinstance(error, UnknownCostError):  # a model the caller named that has no price
        return ServiceError(
            422,
            "unknown_model",
            f"model {error.target.model!r} has no price here, so its cost cannot be bounded: "
            "ask for a configured model.",
        )
    if isinstance(error, SwitchedOffError):  # before ConfigurationError, its base
        return ServiceError(
            503,
            "switched_off",
            "this feature's AI path is switched off (the kill switch) and it has no degraded "
            "answer: try again later.",
            retry_after=policy.switched_off_retry_after,
        )
    if isinstance(error, ConfigurationError):
        return ServiceError(
            500, "configuration_error", "the service is misconfigured: see its log."
        )
    if isinstance(error, TimeoutError):
        return ServiceError(504, "timeout", "no answer within the request timeout.")
    return None


def _llm_error(error: LLMError, policy: ErrorPolicy) -> ServiceError:
    if error.retryable:
        wait = policy.unavailable_retry_after
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            wait = max(1, math.ceil(error.retry_after))
        return ServiceError(
            503, "unavailable", f"the model provider failed ({error.kind}).", retry_after=wait
        )
    # A terminal provider error (a bad key, an unknown model) is the service's fault, not the
    # client's: a 502, with the kind and not the provider's message (it may name internals).
    return ServiceError(502, "upstream_error", f"the model provider refused ({error.kind}).")


def _unavailable_wait(error: AllTargetsFailedError, policy: ErrorPolicy) -> int:
    hints = [
        failure.error.retry_after
        for failure in error.failures
        if isinstance(failure.error, RateLimitedError) and failure.error.retry_after is not None
    ]
    if hints:
        return max(1, math.ceil(min(hints)))
    return policy.unavailable_retry_after


def _line(error: BaseException) -> str:
    return " ".join(str(error).split())
