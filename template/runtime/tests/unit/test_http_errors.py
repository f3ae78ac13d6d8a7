"""The readers of the vendors' wait hints that every adapter shares, on values the vendors do
not send as documented: each is unreadable (None), never a wrong wait."""

from __future__ import annotations

import pytest

from airuntime.model.providers.http_errors import (
    LimitWindow,
    header_int,
    parse_duration,
    reset_wait,
    seconds_until,
    status_in,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20ms", 0.02),
        ("1s", 1.0),
        ("59.82s", 59.82),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        (" 12ms ", 0.012),
        ("", None),
        ("soon", None),
        ("-1s", None),
        ("1.5", None),
        ("1s20ms", None),
        (None, None),
    ],
)
def test_a_go_duration_is_read_in_seconds(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("timestamp", "headers", "seconds"),
    [
        ("2026-12-02T03:20:12Z", {"date": "Wed, 02 Dec 2026 03:20:00 GMT"}, 12.0),
        ("2026-12-02T03:20:12+01:00", {"date": "Wed, 02 Dec 2026 02:20:00 GMT"}, 12.0),
        ("2026-12-02T03:20:12", {"date": "Wed, 02 Dec 2026 03:20:00 GMT"}, 12.0),
        ("next minute", {"date": "Wed, 02 Dec 2026 03:20:00 GMT"}, None),
        (None, {}, None),
    ],
)
def test_a_reset_time_is_measured_from_the_server_s_date(
    timestamp: str | None, headers: dict[str, str], seconds: float | None
) -> None:
    assert seconds_until(timestamp, headers) == seconds


def test_without_a_readable_date_a_reset_is_measured_from_now() -> None:
    wait = seconds_until("2099-01-01T00:00:00Z", {"date": "yesterday"})

    assert wait is not None
    assert wait > 1_000_000


def test_no_reset_header_means_no_hint() -> None:
    assert reset_wait([LimitWindow("requests", 0, None)]) is None
    assert reset_wait([]) is None


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (400, 400),
        ("429", 429),
        (" 503 ", 503),
        (399, None),
        (600, None),
        ("4xx", None),
        (True, None),
        (None, None),
        (400.0, None),
    ],
)
def test_an_error_status_is_a_whole_number_from_400_to_599(
    value: object, status: int | None
) -> None:
    assert status_in(value) == status


def test_a_remaining_count_that_is_not_a_number_is_unknown() -> None:
    headers = {"x-ratelimit-remaining-tokens": "plenty", "x-ratelimit-remaining-requests": "0"}

    assert header_int(headers, "x-ratelimit-remaining-tokens") is None
    assert header_int(headers, "x-ratelimit-remaining-requests") == 0
    assert header_int(headers, "x-ratelimit-remaining-images") is None
