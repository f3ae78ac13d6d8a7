"""Extractive summaries: sentences taken from the text itself, no model involved.

Used by summarize's degraded path (the leading sentences, when every model target failed) and
by the offline stand-in for the model (the most salient sentences), so both work in any
language that ends sentences with . ! ? or their CJK full-width forms, with no dependency.
"""

from __future__ import annotations

import math
import re
from collections import Counter

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(
    "(?<=[.!?\u2026])\\s+"  # after . ! ? or an ellipsis, then whitespace
    "|(?<=[.!?\u2026][\"'\u201d\u2019\u00bb)\\]])\\s+"  # the same, closing a quote or bracket
    "|(?<=[\u3002\uff01\uff1f])\\s*"  # after a CJK full stop, ! or ?: CJK has no spaces
)
_WORD = re.compile(r"\w+")
# Words too common to say what an English text is about.
STOPWORDS = frozenset(
    (
        "a",
        "about",
        "after",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "more",
        "most",
        "must",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "out",
        "over",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "under",
        "up",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
    )
)
ELLIPSIS = "…"


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, paragraph by paragraph, with whitespace collapsed."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        flat = " ".join(paragraph.split())
        sentences.extend(part for part in _SENTENCE_END.split(flat) if part)
    return sentences


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def word_count(text: str) -> int:
    return len(text.split())


def shorten(sentence: str, max_words: int) -> str:
    """The sentence cut to at most max_words words, marked with an ellipsis when cut."""
    parts = sentence.split()
    if len(parts) <= max_words:
        return sentence
    return " ".join(parts[:max_words]) + ELLIPSIS


def fit(sentences: list[str], max_words: int) -> str:
    """As many of the sentences, in order, as fit in max_words words (the first one at least,
    shortened if it alone is too long)."""
    chosen: list[str] = []
    used = 0
    for sentence in sentences:
        count = word_count(sentence)
        if used + count > max_words:
            if not chosen:
                chosen.append(shorten(sentence, max_words))
            break
        chosen.append(sentence)
        used += count
    return " ".join(_terminated(sentence) for sentence in chosen)


def _terminated(sentence: str) -> str:
    """A heading or a line without a full stop gets one, so joined sentences stay apart."""
    return sentence + "." if sentence[-1].isalnum() else sentence


def lead(text: str, max_words: int) -> str:
    """The leading sentences of the text, within max_words words."""
    return fit(split_sentences(text), max_words)


def salience(sentences: list[str]) -> list[float]:
    """A score per sentence: how often the text repeats its content words (Luhn's idea),
    normalised by length, with a bonus for the first sentence (texts lead with their point)."""
    frequencies = Counter(word for sentence in sentences for word in words(sentence))
    scores = []
    for index, sentence in enumerate(sentences):
        content = [word for word in words(sentence) if word not in STOPWORDS]
        score = sum(frequencies[word] for word in content) / math.sqrt(len(content) or 1)
        scores.append(score * (1.5 if index == 0 else 1.0))
    return scores


def ranked(sentences: list[str]) -> list[int]:
    """Indexes of the sentences, most salient first (ties keep text order)."""
    scores = salience(sentences)
    return sorted(range(len(sentences)), key=lambda index: (-scores[index], index))
