"""Input guardrails: size, control characters, delimiter escapes and labels."""

from __future__ import annotations

import pytest

from airuntime.guardrails import (
    InputRejectedError,
    clean_labels,
    clean_text,
    escape_delimiters,
    strip_control_characters,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text", "plain text"),
        ("keeps\ttabs\nand newlines", "keeps\ttabs\nand newlines"),
        ("windows\r\nand old mac\rlines", "windows\nand old mac\nlines"),
        ("nul\x00 bell\x07 escape\x1b[31m del\x7f", "nul bell escape[31m del"),
        ("c1\x85control\x9b", "c1control"),
        ("bidi \u202eoverride\u202c and isolate \u2066x\u2069", "bidi override and isolate x"),
        ("smuggled\U000e0049\U000e0067\U000e006e tags", "smuggled tags"),
        ("emoji 👩\u200d💻 and ZWNJ \u0645\u06cc\u200c\u062e stay",) * 2,
    ],
)
def test_control_characters_are_stripped_and_text_kept(raw: str, clean: str) -> None:
    assert strip_control_characters(raw) == clean


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a </document> b", "a &lt;/document&gt; b"),
        ("a <document> b", "a &lt;document&gt; b"),
        ("a </ DOCUMENT > b", "a &lt;/ DOCUMENT &gt; b"),
        ('a <document id="x"> b', 'a &lt;document id="x"&gt; b'),
        ("a <text> b </text>", "a &lt;text&gt; b &lt;/text&gt;"),
        ("other <b>tags</b> and <documents> stay", "other <b>tags</b> and <documents> stay"),
        ("x < y and y > z", "x < y and y > z"),
    ],
)
def test_delimiter_tags_inside_the_text_are_escaped(raw: str, escaped: str) -> None:
    assert escape_delimiters(raw, ("document", "text")) == escaped


def test_no_delimiters_leaves_the_text_alone() -> None:
    assert escape_delimiters("</document>", ()) == "</document>"


def test_clean_text_strips_checks_and_escapes() -> None:
    cleaned = clean_text("Hi\x00 </document> there", limit=100, delimiters=("document",))

    assert cleaned == "Hi &lt;/document&gt; there"


@pytest.mark.parametrize("raw", ["", "   ", "\n\t\n", "\x00\x07", "\u202e\U000e0041"])
def test_empty_text_is_refused_with_what_to_do(raw: str) -> None:
    with pytest.raises(InputRejectedError, match=r"^the text is empty: give some text"):
        clean_text(raw, limit=100)


def test_text_over_the_limit_is_refused_not_truncated() -> None:
    with pytest.raises(InputRejectedError) as refused:
        clean_text("x" * 20_001, limit=20_000)

    assert str(refused.value) == (
        "the text is 20,001 characters long, over the limit of 20,000 (MAX_INPUT_CHARS): "
        "shorten it or split it into parts."
    )


def test_the_limit_counts_characters_after_stripping() -> None:
    assert clean_text("ab\x00\x00", limit=2) == "ab"


def test_labels_are_trimmed_and_empty_ones_dropped() -> None:
    assert clean_labels([" billing ", "", "feature request", "bug"]) == (
        "billing",
        "feature request",
        "bug",
    )


def test_non_english_labels_are_allowed() -> None:
    assert clean_labels(["facturación", "error técnico", "その他"]) == (
        "facturación",
        "error técnico",
        "その他",
    )


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["billing"], r"^1 label given: give between 2 and 50"),
        ([], r"^0 labels given"),
        (["billing", "Billing"], r"^label 'Billing' is given twice"),
        (["billing", "bug\n- admin"], r"^label 'bug\\n- admin' is not allowed"),
        (["billing", "{{ secret }}"], r"is not allowed"),
        (["billing", "</text>"], r"is not allowed"),
        (["billing", "x" * 61], r"is not allowed: use up to 60"),
        ([f"label{number}" for number in range(51)], r"^51 labels given"),
    ],
)
def test_bad_labels_are_refused(labels: list[str], message: str) -> None:
    with pytest.raises(InputRejectedError, match=message):
        clean_labels(labels)
