"""What every adapter shares: HTTP statuses and Retry-After headers mapped into the taxonomy,
and responses of a shape the adapter cannot read turned into a typed error."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pydantic import ValidationError

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
FIRST_ERROR_STATUS = 400
LAST_STATUS = 599
_SHOWN_OF_A_BAD_VALUE = 80  # characters of an unreadable value quoted in an error message


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


def status_in(value: object) -> int | None:
    """An HTTP error status written as a number or a numeric string (400-599), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and FIRST_ERROR_STATUS <= value <= LAST_STATUS:
        return value
    return None


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


@contextmanager
def readable_response(provider: str, model: str) -> Iterator[None]:
    """Reading a response of a shape the adapter does not know is a ServerError, never an
    AttributeError or a TypeError escaping the error taxonomy.

    The SDKs build their response objects without validating them, so a proxy or a compatible
    server can hand over anything: a choice with no message, text that is not a string, usage
    that is not a number. Like an unparseable body, it is the server's fault and may not happen
    again, hence retryable.
    """
    try:
        yield
    except LLMError:
        raise
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as error:
        raise ServerError(
            f"the response has a shape the adapter cannot read: {_one_line(error)}",
            provider=provider,
            model=model,
        ) from error


def _one_line(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in (error.title, *problem['loc']))}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
    return " ".join(str(error).split())


def text_of(value: object, what: str) -> str:
    """A text field of a response: absent is empty, anything but a string is unreadable."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"{what} is not text: {value!r:.{_SHOWN_OF_A_BAD_VALUE}}")
    return value
