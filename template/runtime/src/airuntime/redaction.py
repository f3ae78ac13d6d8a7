"""Redaction of personal data and secrets from text before it is logged.

Message content is not logged at all by default (LOG_CONTENT=false). When it is turned on,
everything written passes through `redact` first. The patterns favour catching real personal
data over sparing look-alikes, but avoid the common false positives: dates, versions, ids and
ordinary numbers are left alone (see the tests for the table of both).
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# Provider keys and common credential shapes: sk-..., sk-proj-..., sk-ant-..., AWS access keys,
# GitHub tokens, Slack tokens, bearer tokens.
SECRET = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,})"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/-]{20,}=*"
)
# 13-19 digits, optionally grouped by spaces or dashes; confirmed by the Luhn checksum.
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# International (+ country code) or North-American style numbers with separators.
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4})(?![\w-])"
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_valid(digits) else match.group()


def redact(text: str) -> str:
    """Replace emails, phone numbers, card numbers and secrets with placeholders."""
    text = SECRET.sub("[SECRET]", text)
    text = EMAIL.sub("[EMAIL]", text)
    text = CARD.sub(_card, text)
    return PHONE.sub("[PHONE]", text)
