from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airuntime.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextLengthExceededError,
    LLMError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    parse_retry_after,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error_class", "retryable", "kind"),
    [
        (RateLimitedError, True, "rate_limited"),
        (ProviderTimeoutError, True, "timeout"),
        (ServerError, True, "server_error"),
        (ProviderConnectionError, True, "connection_error"),
        (AuthenticationError, False, "authentication"),
        (BadRequestError, False, "bad_request"),
        (ContextLengthExceededError, False, "context_length_exceeded"),
        (ContentFilteredError, False, "content_filtered"),
    ],
)
def test_each_error_says_whether_a_retry_can_help(
    error_class: type[LLMError], retryable: bool, kind: str
) -> None:
    error = error_class("boom", provider="openai", model="gpt-x")

    assert error.retryable is retryable
    assert error.kind == kind
    assert error.provider == "openai"
    assert error.model == "gpt-x"
    assert isinstance(error, LLMError)


def test_message_names_provider_model_kind_and_status() -> None:
    error = ServerError("upstream failed", provider="anthropic", model="claude", status_code=503)

    assert str(error) == "anthropic/claude: server_error (HTTP 503): upstream failed"


def test_rate_limit_carries_retry_after() -> None:
    error = RateLimitedError("slow down", provider="p", model="m", retry_after=2.5)

    assert error.retry_after == 2.5
    assert error.status_code == 429


def test_context_length_is_not_a_bad_request() -> None:
    """A larger model can fix a context-length error; nothing fixes a malformed request."""
    assert not issubclass(ContextLengthExceededError, BadRequestError)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:59:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(
    header: str | None, expected: float | None
) -> None:
    assert parse_retry_after(header, now=NOW) == expected


def test_retry_after_date_defaults_to_the_current_time() -> None:
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT") == 0.0
