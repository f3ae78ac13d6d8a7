"""Chunking: sections at headings, whole paragraphs, the token limit, overlap, stable ids."""

from __future__ import annotations

import itertools

import pytest

from airuntime.retrieval.chunking import (
    ChunkingPolicy,
    chunk_document,
    count_tokens,
    sections,
)
from airuntime.retrieval.documents import Document

GUIDE = """# Guide

Intro paragraph about the product.

## Install

Run make install. Then run make test.

### On Linux

Use the package manager.

## Usage

Call the command with a file.
"""


def test_tokens_are_words_and_punctuation() -> None:
    assert count_tokens("Hello, world! It's 3.5") == 10  # Hello , world ! It ' s 3 . 5


def test_sections_nest_heading_paths_by_level() -> None:
    assert sections(GUIDE) == [
        ("Guide", "Intro paragraph about the product."),
        ("Guide > Install", "Run make install. Then run make test."),
        ("Guide > Install > On Linux", "Use the package manager."),
        ("Guide > Usage", "Call the command with a file."),
    ]


def test_a_chunk_never_spans_two_sections_and_starts_with_its_heading() -> None:
    chunks = chunk_document(Document.of("guide.md", "Guide", GUIDE))
    assert [chunk.heading for chunk in chunks] == [
        "Guide",
        "Guide > Install",
        "Guide > Install > On Linux",
        "Guide > Usage",
    ]
    assert chunks[1].text == "Guide > Install\n\nRun make install. Then run make test."
    assert [chunk.ordinal for chunk in chunks] == [0, 1, 2, 3]
    assert {chunk.source for chunk in chunks} == {"guide.md"}


def long_text(paragraphs: int, sentences: int) -> str:
    return "\n\n".join(
        " ".join(f"Paragraph {p} sentence {s} says something useful." for s in range(sentences))
        for p in range(paragraphs)
    )


def test_chunks_respect_the_token_limit_and_keep_paragraphs_whole_when_they_fit() -> None:
    policy = ChunkingPolicy(max_tokens=64, overlap_tokens=0)
    text = long_text(6, 3)  # paragraphs of 3 x 8 = 24 tokens
    chunks = chunk_document(Document.of("a.txt", "a", text), policy)
    assert all(chunk.tokens <= 64 for chunk in chunks)
    paragraphs = text.split("\n\n")
    for chunk in chunks:  # every chunk is whole paragraphs
        assert all(part in paragraphs for part in chunk.text.split("\n\n"))
    assert "\n\n".join(chunk.text for chunk in chunks) == text  # nothing lost, no overlap


def test_a_long_paragraph_is_split_at_sentences_with_overlap() -> None:
    policy = ChunkingPolicy(max_tokens=40, overlap_tokens=10)
    text = long_text(1, 12)  # one paragraph of 96 tokens, sentences of 8
    chunks = chunk_document(Document.of("a.txt", "a", text), policy)
    assert len(chunks) > 2
    assert all(chunk.tokens <= 40 for chunk in chunks)
    for before, after in itertools.pairwise(chunks):
        last_sentence = before.text.rsplit(". ", 1)[-1]
        assert after.text.startswith(last_sentence.rstrip("."))  # the overlap
    covered = " ".join(chunk.text for chunk in chunks)
    for s in range(12):
        assert f"sentence {s} says" in covered


def test_a_sentence_longer_than_a_chunk_is_cut_at_words() -> None:
    policy = ChunkingPolicy(max_tokens=20, overlap_tokens=0)
    text = " ".join(f"word{index}" for index in range(50))
    chunks = chunk_document(Document.of("a.txt", "a", text), policy)
    assert all(chunk.tokens <= 20 for chunk in chunks)
    assert " ".join(chunk.text for chunk in chunks) == text


def test_ids_are_stable_across_runs_and_change_with_the_text() -> None:
    first = chunk_document(Document.of("guide.md", "Guide", GUIDE))
    again = chunk_document(Document.of("guide.md", "Guide", GUIDE))
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    edited = chunk_document(Document.of("guide.md", "Guide", GUIDE.replace("product", "tool")))
    assert edited[0].id != first[0].id
    assert [c.id for c in edited[1:]] == [c.id for c in first[1:]]
    elsewhere = chunk_document(Document.of("other.md", "Guide", GUIDE))
    assert elsewhere[0].id != first[0].id


def test_an_empty_document_has_no_chunks() -> None:
    assert chunk_document(Document.of("e.txt", "e", "  \n\n ")) == []


@pytest.mark.parametrize(("max_tokens", "overlap"), [(8, 0), (64, 32), (64, -1)])
def test_a_policy_out_of_range_is_refused(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        ChunkingPolicy(max_tokens=max_tokens, overlap_tokens=overlap)
