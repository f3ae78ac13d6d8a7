"""Feature-hashing embeddings: deterministic vectors from the words of a text, no model needed.

The offline embedder (and the mock provider's `embed`) hash each word, its first five letters
(a crude stem: refund~refunds), each pair of adjacent words and the character trigrams of each
word into a fixed number of signed buckets, then
normalise the vector to unit length. Texts that share words, phrases or word stems get a high
cosine similarity, so offline search finds lexically related text and tests of retrieval are
meaningful; the same text always gets the same vector, in every process (CRC-32, not Python's
salted `hash`).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import zlib

from airuntime.extractive import STOPWORDS

DEFAULT_DIMENSIONS = 384
_WORD = re.compile(r"\w+")
# How much each kind of feature counts: whole words most, phrases next, the trigrams (which
# match inflections: index~indexing) spread over the word so a long word does not dominate.
WORD_WEIGHT = 1.0
STEM_WEIGHT = 0.7
STEM_CHARS = 5
BIGRAM_WEIGHT = 0.5
TRIGRAMS_WEIGHT = 1.0
STOPWORD_FACTOR = 0.1
_SIGN_BIT = 1 << 31


def _bucket(feature: str, dimensions: int) -> tuple[int, float]:
    hashed = zlib.crc32(feature.encode("utf-8"))
    return hashed % dimensions, (1.0 if hashed & _SIGN_BIT else -1.0)


@functools.lru_cache(maxsize=65_536)
def _word_features(word: str, dimensions: int) -> tuple[tuple[int, float], ...]:
    """The buckets of one word and its trigrams (cached: words repeat across chunks)."""
    factor = STOPWORD_FACTOR if word in STOPWORDS else 1.0
    features = []
    index, sign = _bucket(word, dimensions)
    features.append((index, sign * WORD_WEIGHT * factor))
    index, sign = _bucket("~" + word[:STEM_CHARS], dimensions)
    features.append((index, sign * STEM_WEIGHT * factor))
    padded = f"<{word}>"
    trigrams = [padded[start : start + 3] for start in range(len(padded) - 2)]
    weight = TRIGRAMS_WEIGHT * factor / math.sqrt(len(trigrams))
    for trigram in trigrams:
        index, sign = _bucket("#" + trigram, dimensions)
        features.append((index, sign * weight))
    return tuple(features)


def hashed_features(text: str, dimensions: int) -> tuple[list[int], list[float]]:
    """The bucket and signed weight of every feature of `text` (a bucket may repeat: the
    vector is their sum), for callers that sum them faster (numpy's bincount)."""
    indexes: list[int] = []
    weights: list[float] = []
    words = _WORD.findall(text.casefold())
    for word in words:
        for index, weight in _word_features(word, dimensions):
            indexes.append(index)
            weights.append(weight)
    for first, second in itertools.pairwise(words):
        if first in STOPWORDS and second in STOPWORDS:
            continue
        index, sign = _bucket(f"{first} {second}", dimensions)
        indexes.append(index)
        weights.append(sign * BIGRAM_WEIGHT)
    return indexes, weights


def hashed_vector(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The unit-length feature-hashing vector of `text` (all zeros when it has no words)."""
    vector = [0.0] * dimensions
    for index, weight in zip(*hashed_features(text, dimensions), strict=True):
        vector[index] += weight
    norm = math.sqrt(sum(value * value for value in vector))
    if norm == 0.0:
        return vector
    return [value / norm for value in vector]
