from __future__ import annotations

import pytest

from airuntime.redaction import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ada@example.com now", "mail [EMAIL] now"),
        ("first.last+tag@sub.example.co.uk.", "[EMAIL]."),
        ("call +44 20 7946 0958 today", "call [PHONE] today"),
        ("call +1 (415) 555-2671", "call [PHONE]"),
        ("call (415) 555-2671", "call [PHONE]"),
        ("call 415-555-2671 or 415.555.2671", "call [PHONE] or [PHONE]"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("card 5500005555555559", "card [CARD]"),
        ("key sk-proj-abcdefghijklmnop1234", "key [SECRET]"),
        ("key sk-ant-api03-abcdefghijklmnopqrstu", "key [SECRET]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [SECRET]"),
        ("token ghp_" + "a" * 36, "token [SECRET]"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz123", "Authorization: [SECRET]"),
    ],
)
def test_personal_data_and_secrets_are_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "released 2026-01-15 as version 1.2.3",
        "order 1234567890 shipped",  # 10 digits: not a card, no phone separators
        "invoice 4111111111111112",  # 16 digits failing the Luhn check
        "the answer is 42 and pi is 3.14159",
        "see https://example.com/docs?id=123",
        "user @handle said hi",
        "temperature 0.7, max_tokens 1024",
        "sk-short is not a key",
        "ISBN 978-3-16-148410-0",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact(text) == text
