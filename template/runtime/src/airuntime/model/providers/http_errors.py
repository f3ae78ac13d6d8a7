"""What every adapter shares: HTTP statuses, Retry-After and the vendors' rate-limit reset
headers mapped into the taxonomy, and responses of a shape the adapter cannot read turned into
a typed error."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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
# A Go duration, as OpenAI writes waits: "20ms", "1.5s", "6m0s", "1h2m3.5s".
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?")
_DURATION_MS = re.compile(r"(\d+(?:\.\d+)?)ms")
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


def parse_duration(text: str | None) -> float | None:
    """Seconds in a Go duration ("20ms", "1.5s", "6m0s", "1h2m3.5s"); None if it is not one."""
    if text is None:
        return None
    value = text.strip()
    if match := _DURATION_MS.fullmatch(value):
        return float(match.group(1)) / 1000
    match = _DURATION.fullmatch(value)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def seconds_until(timestamp: str | None, headers: Mapping[str, str]) -> float | None:
    """Seconds from the response's own `date` (else from now) to an RFC 3339 timestamp.

    Measured from the server's clock when it says what time it is, so a skewed local clock
    neither shortens nor stretches the wait. A moment already past is 0.
    """
    if timestamp is None:
        return None
    try:
        moment = datetime.fromisoformat(timestamp.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:  # RFC 3339 always has an offset; a bare time is taken as UTC
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - _server_time(headers)).total_seconds())


def _server_time(headers: Mapping[str, str]) -> datetime:
    date = headers.get("date")
    if date is not None:
        try:
            moment = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            pass
        else:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LimitWindow:
    """One vendor rate limit as a response's headers describe it."""

    name: str
    remaining: int | None
    reset_seconds: float | None


def reset_wait(windows: Iterable[LimitWindow], hit: str | None = None) -> float | None:
    """How long a 429 says to wait, from the vendor's per-limit reset headers.

    The reset of the limit that was hit: the one the error names (`hit`), else those with
    nothing remaining; when the headers do not say which, the longest reset, after which every
    limit has room again (retrying sooner would only be refused again).
    """
    known = [window for window in windows if window.reset_seconds is not None]
    named = [window for window in known if window.name == hit]
    exhausted = [window for window in known if window.remaining == 0]
    chosen = named or exhausted or known
    return max((window.reset_seconds or 0.0 for window in chosen), default=None)


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


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
    retry_hint: float | None = None,
    context_length: bool = False,
    content_filtered: bool = False,
) -> LLMError:
    """The taxonomy class for an HTTP error status.

    `retry_hint` is the adapter's reading of the vendor's own wait hints (reset headers, the
    message text), used when the response has no Retry-After. `context_length` and
    `content_filtered` are its reading of a 4xx body, since each vendor words those differently.
    """
    if status_code in RATE_LIMIT_STATUSES:
        retry_after = retry_after_seconds(headers)
        return RateLimitedError(
            message,
            provider=provider,
            model=model,
            status_code=status_code,
            retry_after=retry_after if retry_after is not None else retry_hint,
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
