"""Extractive summaries: sentence splitting, word limits, salience."""

from __future__ import annotations

from airuntime.extractive import (
    fit,
    lead,
    ranked,
    shorten,
    split_sentences,
)


def test_sentences_split_on_punctuation_and_paragraphs() -> None:
    text = 'Title line\n\nHe said "stop." Then he left! Did it work? Yes… done.\nSame paragraph.'

    assert split_sentences(text) == [
        "Title line",
        'He said "stop."',
        "Then he left!",
        "Did it work?",
        "Yes…",
        "done.",
        "Same paragraph.",
    ]


def test_cjk_sentences_split_without_spaces() -> None:
    bang, question = "\uff01", "\uff1f"  # full-width ! and ?
    text = f"駅ビルは春に開業します。店舗が入ります{bang}本当{question}"

    assert split_sentences(text) == [
        "駅ビルは春に開業します。",
        f"店舗が入ります{bang}",
        f"本当{question}",
    ]


def test_fit_keeps_whole_sentences_within_the_limit() -> None:
    sentences = ["One two three.", "Four five.", "Six seven eight nine."]

    assert fit(sentences, 5) == "One two three. Four five."
    assert fit(sentences, 4) == "One two three."


def test_fit_shortens_a_first_sentence_that_alone_is_too_long() -> None:
    assert fit(["one two three four five six"], 3) == "one two three…"


def test_fit_ends_a_heading_with_a_full_stop() -> None:
    assert fit(["Incident report", "It broke."], 10) == "Incident report. It broke."


def test_lead_takes_the_first_sentences() -> None:
    assert lead("First one. Second one. Third one.", 4) == "First one. Second one."


def test_shorten_marks_a_cut() -> None:
    assert shorten("a b c", 3) == "a b c"
    assert shorten("a b c d", 2) == "a b…"


def test_ranked_puts_the_sentence_about_the_main_topic_first() -> None:
    sentences = [
        "The weather was fine.",
        "The outage hit checkout and payments.",
        "Checkout payments failed during the outage.",
        "Lunch was served.",
    ]

    order = ranked(sentences)

    assert set(order[:2]) == {1, 2}
    assert sorted(order) == [0, 1, 2, 3]
