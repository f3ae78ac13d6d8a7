"""One error taxonomy for every provider.

Adapters translate vendor SDK exceptions into these classes, so nothing above the boundary
imports a vendor SDK. The split that matters is `retryable`: a retryable error (rate limit,
timeout, server error, connection error) may succeed if the same call is tried again later; a
terminal one (authentication, bad request, context length, content filter) will fail the same
way every time, so retrying it only burns money and time.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar


class ConfigurationError(Exception):
    """Configuration that cannot be used; the message is one line a person can act on.

    Raised before any model is called: a missing key, an unknown provider, a bad price file.
    """


class LLMError(Exception):
    """A model call failed. `kind` is a stable name for logs and metrics."""

    retryable: ClassVar[bool] = False
    kind: ClassVar[str] = "llm_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status_code = status_code

    def __str__(self) -> str:
        status = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{self.provider}/{self.model}: {self.kind}{status}: {self.message}"


class RetryableError(LLMError):
    """Transient: the same request may succeed later."""

    retryable = True
    kind = "retryable"


class RateLimitedError(RetryableError):
    """HTTP 429 or an overload signal. `retry_after` is the server's wait hint in seconds."""

    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        status_code: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model, status_code=status_code)
        self.retry_after = retry_after


class ProviderTimeoutError(RetryableError):
    """No complete answer within the timeout."""

    kind = "timeout"


class ServerError(RetryableError):
    """HTTP 5xx: the provider failed."""

    kind = "server_error"


class ProviderConnectionError(RetryableError):
    """The connection failed or was reset before a response arrived."""

    kind = "connection_error"


class TerminalError(LLMError):
    """Permanent for this request: retrying the same call cannot help."""

    retryable = False
    kind = "terminal"


class AuthenticationError(TerminalError):
    """HTTP 401/403: the key is missing, wrong, or not allowed to use the model."""

    kind = "authentication"


class BadRequestError(TerminalError):
    """HTTP 400/404/422: the request itself is wrong (unknown model, bad parameter)."""

    kind = "bad_request"


class ContextLengthExceededError(TerminalError):
    """The prompt plus max_tokens does not fit the model's context window.

    Not a `BadRequestError` subclass on purpose: a fallback to a model with a larger window can
    fix it, while a malformed request fails everywhere.
    """

    kind = "context_length_exceeded"


class ContentFilteredError(TerminalError):
    """The provider refused the input or stopped the output for its content policy."""

    kind = "content_filtered"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header given as seconds or as an HTTP date.

    Returns None when the header is absent or unreadable; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "-0000"
        moment = moment.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return max(0.0, (moment - reference).total_seconds())
