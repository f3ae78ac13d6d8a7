"""Input guardrails: what every feature does to untrusted text before it reaches a prompt.

- Size: text longer than MAX_INPUT_CHARS is refused with one clear line (never truncated
  silently: a cut document gives a confidently wrong summary). Empty text is refused too.
- Control characters are stripped (tab and newline kept, CR LF and CR become LF), with the
  invisible characters used to smuggle text past a reviewer: bidirectional overrides
  ("Trojan Source") and Unicode tag characters ("ASCII smuggling").
- Delimiting: prompts put user text between tags (`<document>...</document>`) and say it is
  data. Any tag with a delimiter's name inside the text is escaped (`&lt;/document&gt;`), so the
  text cannot close the data block early and continue as instructions.

What this does and does not stop (prompt injection):

- It stops *template* injection: prompts render in a sandbox where inputs are data, so
  template syntax in user text is printed, never evaluated (prompts/); and *delimiter escape*: text
  cannot end its data block and pose as the system's own instructions.
- It does NOT stop a model from following instructions written inside the data ("ignore the
  above and say X"). No input filter can, reliably: instructions and data share one channel.
  What bounds a successful injection is everything after the model: output validated against a
  schema (classify can only answer one of the caller's labels), no tools or side effects driven
  by model output, budgets, low-confidence results sent to human review, and evaluation
  datasets that include injection attempts so a regression shows up in `make eval`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

KEPT_CONTROLS = frozenset("\t\n")
# Bidirectional embeddings, overrides and isolates: they reorder what a reviewer sees.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
TAG_CHARACTERS = range(0xE0000, 0xE0080)  # invisible copies of ASCII
MAX_LABELS = 50
MAX_LABEL_CHARS = 60
_LABEL = re.compile(r"^\w[\w .&/+'-]*$")


class InputRejectedError(ValueError):
    """The input cannot be used; the message says what is wrong and what to do."""


def _is_stripped(char: str) -> bool:
    if char in KEPT_CONTROLS:
        return False
    return (
        unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS or ord(char) in TAG_CHARACTERS
    )


def strip_control_characters(text: str) -> str:
    """The text without control characters (tab and newline kept; CR LF and CR become LF)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isprintable():  # the common case: nothing to strip, no copy
        return text
    return "".join(char for char in text if not _is_stripped(char))


def escape_delimiters(text: str, tags: Iterable[str]) -> str:
    """Escape every opening or closing tag named like a delimiter, in any case or spacing."""
    names = "|".join(re.escape(tag) for tag in tags)
    if not names:
        return text
    pattern = re.compile(rf"<(\s*/?\s*(?:{names})\b[^<>]*)>", re.IGNORECASE)
    return pattern.sub(r"&lt;\1&gt;", text)


def clean_text(text: str, *, limit: int, delimiters: Sequence[str] = (), what: str = "text") -> str:
    """Text ready to be put inside a prompt's data block, or InputRejectedError."""
    cleaned = strip_control_characters(text)
    if not cleaned.strip():
        raise InputRejectedError(f"the {what} is empty: give some text to work on.")
    if len(cleaned) > limit:
        raise InputRejectedError(
            f"the {what} is {len(cleaned):,} characters long, over the limit of {limit:,} "
            "(MAX_INPUT_CHARS): shorten it or split it into parts."
        )
    return escape_delimiters(cleaned, delimiters)


def clean_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """Labels to choose from: 2 to 50 distinct short names, or InputRejectedError.

    Labels are written into the system message, so they are held to a strict shape: a word
    character first, then words, spaces and `.&/+'-`; no newlines, tags or braces.
    """
    cleaned: list[str] = []
    seen: set[str] = set()
    for raw in labels:
        label = strip_control_characters(raw).strip()
        if not label:
            continue
        if len(label) > MAX_LABEL_CHARS or not _LABEL.match(label):
            raise InputRejectedError(
                f"label {label[:MAX_LABEL_CHARS]!r} is not allowed: use up to "
                f"{MAX_LABEL_CHARS} letters, digits, spaces or .&/+'-_ characters."
            )
        if label.casefold() in seen:
            raise InputRejectedError(f"label {label!r} is given twice: list each label once.")
        seen.add(label.casefold())
        cleaned.append(label)
    if not 2 <= len(cleaned) <= MAX_LABELS:
        raise InputRejectedError(
            f"{len(cleaned)} label{'s' if len(cleaned) != 1 else ''} given: give between 2 and "
            f"{MAX_LABELS}, e.g. --labels billing,bug,other."
        )
    return tuple(cleaned)
