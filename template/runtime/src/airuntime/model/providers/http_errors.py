"""What every adapter shares: HTTP status and Retry-After headers mapped into the taxonomy."""

from __future__ import annotations

import math
from collections.abc import Mapping

from airuntime.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextLengthExceededError,
    LLMError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    parse_retry_after,
)

# 529 is Anthropic's "overloaded": like a 429 it asks callers to back off and lets the breaker
# cool down, so it is a rate limit rather than a plain server error.
RATE_LIMIT_STATUSES = frozenset({429, 529})
AUTHENTICATION_STATUSES = frozenset({401, 402, 403})  # 402: billing, fixed by a person
REQUEST_TIMEOUT = 408
CONFLICT = 409
SERVER_ERROR = 500


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait hint of a response: `retry-after-ms` (OpenAI) first, then `retry-after`."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value / 1000
    return parse_retry_after(headers.get("retry-after"))


def error_for_status(
    status_code: int,
    message: str,
    *,
    provider: str,
    model: str,
    headers: Mapping[str, str],
    context_length: bool = False,
    content_filtered: bool = False,
) -> LLMError:
    """The taxonomy class for an HTTP error status.

    `context_length` and `content_filtered` are the adapter's reading of a 4xx body, since each
    vendor words those differently.
    """
    if status_code in RATE_LIMIT_STATUSES:
        return RateLimitedError(
            message,
            provider=provider,
            model=model,
            status_code=status_code,
            retry_after=retry_after_seconds(headers),
        )
    error_class: type[LLMError] = BadRequestError
    if status_code in AUTHENTICATION_STATUSES:
        error_class = AuthenticationError
    elif status_code == REQUEST_TIMEOUT:  # the server gave up waiting for us: transient
        error_class = ProviderTimeoutError
    elif status_code == CONFLICT or status_code >= SERVER_ERROR:  # the SDKs retry 409 too
        error_class = ServerError
    elif context_length:
        error_class = ContextLengthExceededError
    elif content_filtered:
        error_class = ContentFilteredError
    return error_class(message, provider=provider, model=model, status_code=status_code)
