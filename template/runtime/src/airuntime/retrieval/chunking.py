"""Token-aware chunking that respects headings and paragraphs, with overlap and stable ids.

A document splits into sections at its Markdown headings (HTML headings arrive as Markdown);
a chunk never spans two sections, and carries its section's heading path, which is also the
first line of its text (so a chunk says what it is about even when its body does not).
Paragraphs are packed whole while they fit; a paragraph too long for one chunk is split at
sentences, and a sentence too long at tokens. Each chunk after the first of a section starts
with the last sentences of the one before, up to `overlap_tokens`, so a fact split across a
boundary is whole in one of them.

Tokens are counted as words and punctuation marks (`\\w+|[^\\w\\s]`): close to, and for
English text a little above, what BPE tokenizers count, with no tokenizer to download. The
id of a chunk is a hash of its source, its position and its text: the same document chunked
with the same settings gets the same ids in every run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from airuntime.extractive import split_sentences
from airuntime.retrieval.documents import Document

DEFAULT_MAX_TOKENS = 256
DEFAULT_OVERLAP_TOKENS = 48
_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass(frozen=True, slots=True)
class DocumentChunk:
    """One piece of a document, as stored and retrieved."""

    id: str
    source: str
    title: str
    heading: str  # the section's heading path ("Guide > Install"); "" before any heading
    ordinal: int  # position in the document, from 0
    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    max_tokens: int = DEFAULT_MAX_TOKENS
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError(f"max_tokens must be at least 16, not {self.max_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError(
                f"overlap_tokens must be between 0 and half of max_tokens ({self.max_tokens // 2})"
                f", not {self.overlap_tokens}"
            )


def sections(text: str) -> list[tuple[str, str]]:
    """(heading path, body) per section, in order; headings nest by their level."""
    found: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            found.append((" > ".join(title for _, title in path), content))
        body.clear()

    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading is None:
            body.append(line)
            continue
        flush()
        level = len(heading.group("hashes"))
        path = [(depth, title) for depth, title in path if depth < level]
        path.append((level, heading.group("text")))
    flush()
    return found


def _pieces(paragraph: str, max_tokens: int) -> list[str]:
    """A paragraph as sentences, each at most max_tokens (a longer one cut at tokens)."""
    pieces: list[str] = []
    for sentence in split_sentences(paragraph) or [paragraph]:
        if count_tokens(sentence) <= max_tokens:
            pieces.append(sentence)
            continue
        words = sentence.split()
        current: list[str] = []
        for word in words:
            if current and count_tokens(" ".join([*current, word])) > max_tokens:
                pieces.append(" ".join(current))
                current = []
            current.append(word)
        if current:
            pieces.append(" ".join(current))
    return pieces


def _units(body: str, max_tokens: int) -> list[tuple[str, int, bool]]:
    """(text, tokens, starts a paragraph) for the packing: whole paragraphs that fit, else
    their sentences."""
    units: list[tuple[str, int, bool]] = []
    for paragraph in _PARAGRAPH_BREAK.split(body):
        paragraph = " ".join(paragraph.split()) if "\n" not in paragraph else paragraph.strip()
        if not paragraph:
            continue
        tokens = count_tokens(paragraph)
        if tokens <= max_tokens:
            units.append((paragraph, tokens, True))
            continue
        for index, piece in enumerate(_pieces(paragraph, max_tokens)):
            units.append((piece, count_tokens(piece), index == 0))
    return units


def _overlap(units: list[tuple[str, int, bool]], budget: int) -> list[tuple[str, int, bool]]:
    """The trailing sentences of a chunk, at most `budget` tokens in all."""
    kept: list[tuple[str, int, bool]] = []
    total = 0
    for text, _, _ in reversed(units):
        for sentence in reversed(split_sentences(text) or [text]):
            tokens = count_tokens(sentence)
            if total + tokens > budget:
                return kept
            kept.insert(0, (sentence, tokens, False))
            total += tokens
    return kept


def _join(units: list[tuple[str, int, bool]]) -> str:
    text = ""
    for index, (unit, _, starts_paragraph) in enumerate(units):
        if index:
            text += "\n\n" if starts_paragraph else " "
        text += unit
    return text


def _section_bodies(body: str, budget: int, overlap: int) -> list[str]:
    bodies: list[str] = []
    current: list[tuple[str, int, bool]] = []
    used = 0
    fresh = 0  # tokens of the current chunk that are not overlap
    for unit in _units(body, budget):
        if current and used + unit[1] > budget:
            bodies.append(_join(current))
            current = _overlap(current, overlap)
            used = sum(tokens for _, tokens, _ in current)
            fresh = 0
            if used + unit[1] > budget:  # no room for the overlap and this unit
                current, used = [], 0
        current.append(unit)
        used += unit[1]
        fresh += unit[1]
    if current and fresh:
        bodies.append(_join(current))
    return bodies


def chunk_document(document: Document, policy: ChunkingPolicy | None = None) -> list[DocumentChunk]:
    """The document's chunks, in order."""
    rules = policy if policy is not None else ChunkingPolicy()
    chunks: list[DocumentChunk] = []
    for heading, body in sections(document.text):
        # The heading line is part of the chunk's text: keep room for it.
        budget = max(8, rules.max_tokens - count_tokens(heading))
        for part in _section_bodies(body, budget, rules.overlap_tokens):
            text = f"{heading}\n\n{part}" if heading else part
            ordinal = len(chunks)
            digest = hashlib.sha256(f"{document.source}\0{ordinal}\0{text}".encode()).hexdigest()
            chunks.append(
                DocumentChunk(
                    id=digest[:24],
                    source=document.source,
                    title=document.title,
                    heading=heading,
                    ordinal=ordinal,
                    text=text,
                    tokens=count_tokens(text),
                )
            )
    return chunks
