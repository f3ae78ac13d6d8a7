"""Grounded answers: retrieve, answer only from the retrieved chunks, cite them, or say
"not found".

The question's top-k chunks go into the prompt as data, each in a `<chunk id="...">` block
(their text escaped so a document cannot close the block and speak as the prompt). The model
answers with structured output whose every citation must be the id of one of those chunks: a
made-up or mistyped id fails validation, the structured layer re-asks once with the error,
then fails typed (StructuredOutputError). When no chunk scores above `min_score`, no model is
asked: the answer is "not found in the documents". When every model target fails, the
answer is extractive (the retrieved sentences that share most words with the question),
marked degraded; the same extractive answerer is the offline stand-in for the prompt.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from typing import Any, cast

from pydantic import ConfigDict, Field, field_validator, model_validator

from airuntime.extractive import STOPWORDS, split_sentences, words
from airuntime.features import FeatureOutput, FeatureResult, FeatureSystem
from airuntime.guardrails import escape_delimiters, strip_control_characters
from airuntime.retrieval.indexer import Retriever
from airuntime.retrieval.stores import Hit
from airuntime.structured import Generated
from airuntime.types import LLMRequest, Usage, new_request_id

NOT_FOUND_ANSWER = "Not found in the documents."
DEFAULT_TOP_K = 5
# Cosine similarity below which a chunk is not evidence. Tuned for the offline hashing
# embedder on the sample documents; for a model's embeddings measure it on your eval dataset
# (text-embedding-3-small puts unrelated text around 0.1 to 0.2).
DEFAULT_MIN_SCORE = 0.15
DELIMITERS = ("question", "chunk")
_CHUNK = re.compile(r'<chunk id="(?P<id>[^"]+)"[^>]*>\n?(?P<body>.*?)\n?</chunk>', re.DOTALL)
_QUESTION = re.compile(r"<question>\n?(?P<body>.*?)\n?</question>", re.DOTALL)
STEM_CHARS = 5
_SENTENCE_ENDS = frozenset(".!?\u2026\u3002\uff01\uff1f\"')\u201d\u2019")
EXTRACTED_SENTENCES = 2
# An extractive answer needs a sentence holding at least this share of the question's words.
MIN_COVERAGE = 0.34


class GroundedAnswer(FeatureOutput):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(description="The answer, from the chunks only.")
    citations: list[str] = Field(
        description="The ids of the chunks the answer comes from (only ids of given chunks)."
    )
    found: bool = Field(description="False when the chunks do not hold the answer.")


@functools.lru_cache(maxsize=256)
def grounded_answer_model(allowed: tuple[str, ...]) -> type[GroundedAnswer]:
    """A GroundedAnswer whose citations must be among `allowed` (the retrieved chunk ids)."""
    known = frozenset(allowed)

    class CitedAnswer(GroundedAnswer):
        @field_validator("citations")
        @classmethod
        def among_the_retrieved(cls, citations: list[str]) -> list[str]:
            unknown = [cited for cited in citations if cited not in known]
            if unknown:
                raise ValueError(
                    f"cites {', '.join(unknown)}, not among the given chunks: cite only the ids "
                    f"of the <chunk> blocks ({', '.join(allowed)})"
                )
            return list(dict.fromkeys(citations))

        @model_validator(mode="after")
        def found_is_cited(self) -> CitedAnswer:
            if self.found and not self.citations:
                raise ValueError("an answer that was found must cite at least one chunk")
            return self

    return CitedAnswer


def context_block(hits: Sequence[Hit]) -> str:
    """The chunks as the prompt's data: one delimited block each, best first."""
    blocks = []
    for hit in hits:
        chunk = hit.chunk
        text = escape_delimiters(strip_control_characters(chunk.text), DELIMITERS)
        source = chunk.source.replace('"', "'")
        blocks.append(f'<chunk id="{chunk.id}" source="{source}">\n{text}\n</chunk>')
    return "\n".join(blocks)


def _stems(text: str) -> set[str]:
    return {word[:STEM_CHARS] for word in words(text) if word not in STOPWORDS}


def extractive_answer(question: str, chunks: Sequence[tuple[str, str]]) -> GroundedAnswer:
    """The sentences of the chunks (id, text) sharing most words with the question, cited; not
    found when none holds at least half of the question's words. No model involved."""
    wanted = _stems(question)
    scored: list[tuple[float, int, str, str]] = []
    for rank, (chunk_id, text) in enumerate(chunks):
        for sentence in split_sentences(text):
            if sentence[-1] not in _SENTENCE_ENDS:  # a heading, not a statement
                continue
            shared = len(wanted & _stems(sentence))
            if shared:
                scored.append((shared / len(wanted), rank, chunk_id, sentence))
    scored.sort(key=lambda item: (-item[0], item[1]))
    best = scored[0][0] if scored else 0.0
    if not wanted or best < MIN_COVERAGE:
        return GroundedAnswer(answer=NOT_FOUND_ANSWER, citations=[], found=False, confidence=0.0)
    chosen = scored[:EXTRACTED_SENTENCES]
    return GroundedAnswer(
        answer=" ".join(sentence for _, _, _, sentence in chosen),
        citations=list(dict.fromkeys(chunk_id for _, _, chunk_id, _ in chosen)),
        found=True,
        confidence=round(min(0.95, 0.4 + 0.5 * best), 2),
    )


def extractive_answer_reply(request: LLMRequest) -> str:
    """The offline stand-in for a grounded-answer prompt: reads the <question> and <chunk>
    blocks of the last user message and answers extractively, as the JSON the prompt asks."""
    message = request.last_user_message
    question = _QUESTION.search(message)
    chunks = [(found.group("id"), found.group("body")) for found in _CHUNK.finditer(message)]
    answer = extractive_answer(question.group("body") if question else "", chunks)
    return json.dumps(answer.model_dump(mode="json"))


class EvaluatedAnswer(GroundedAnswer):
    """A grounded answer with what retrieval found, for the evaluation's scorers."""

    retrieved_ids: list[str] = Field(description="The retrieved chunk ids, best first.")
    retrieved_sources: list[str] = Field(description="Their documents, best first, once each.")
    cited_sources: list[str] = Field(description="The documents of the cited chunks.")


@dataclass(frozen=True, slots=True)
class AnswerResult:
    """A grounded answer, the chunks it was drawn from, and how it was produced."""

    question: str
    hits: tuple[Hit, ...]  # what retrieval returned (above and below the threshold)
    result: FeatureResult[GroundedAnswer]
    embedding_cost: Decimal
    asked_model: bool  # False: nothing scored above the threshold, so no model was asked
    offline: bool = False  # the mock stood in for every provider

    @property
    def value(self) -> GroundedAnswer:
        return self.result.value

    @property
    def found(self) -> bool:
        return self.value.found

    @property
    def served_by(self) -> str:
        generated = self.result.generated
        if not self.asked_model:
            return "retrieval only (nothing relevant enough to ask a model)"
        if generated.degraded:
            return "degraded: extractive, no model answered"
        return f"{generated.target}{' (offline: the mock stood in)' if self.offline else ''}"

    @property
    def cost(self) -> Decimal:
        return self.result.generated.cost + self.embedding_cost

    def citations(self) -> list[dict[str, Any]]:
        by_id = {hit.chunk.id: hit for hit in self.hits}
        cited = []
        for chunk_id in self.value.citations:
            hit = by_id[chunk_id]
            cited.append(
                {
                    "id": chunk_id,
                    "source": hit.chunk.source,
                    "title": hit.chunk.title,
                    "heading": hit.chunk.heading,
                    "score": round(hit.score, 4),
                }
            )
        return cited

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.result.to_dict(),
            "question": self.question,
            "citations": self.citations(),
            "retrieved": [
                {"id": hit.chunk.id, "source": hit.chunk.source, "score": round(hit.score, 4)}
                for hit in self.hits
            ],
            "served_by": self.served_by,
            "cost_usd": str(self.cost),
        }

    def for_evaluation(self) -> FeatureResult[EvaluatedAnswer]:
        """The result with what retrieval found in its value, for the eval's scorers."""
        sources = {hit.chunk.id: hit.chunk.source for hit in self.hits}
        value = EvaluatedAnswer(
            **self.value.model_dump(),
            retrieved_ids=[hit.chunk.id for hit in self.hits],
            retrieved_sources=list(dict.fromkeys(hit.chunk.source for hit in self.hits)),
            cited_sources=list(dict.fromkeys(sources[c] for c in self.value.citations)),
        )
        generated = cast("Generated[EvaluatedAnswer]", replace(self.result.generated, value=value))
        return FeatureResult(self.result.feature, generated, self.result.review_reason)


def not_found(feature: str) -> FeatureResult[GroundedAnswer]:
    """The answer when nothing relevant was retrieved: certain, and no model asked."""
    value = GroundedAnswer(answer=NOT_FOUND_ANSWER, citations=[], found=False, confidence=1.0)
    generated = Generated(
        value=value,
        raw_text="",
        request_id=new_request_id(),
        target=None,
        served_by=None,  # nobody answered: nothing relevant was found
        fallback_index=None,
        attempts=0,
        repairs=0,
        usage=Usage(),
        cost=Decimal(0),  # the query's embedding is counted by the AnswerResult
    )
    return FeatureResult(feature, generated, None)


async def answer_question(
    system: FeatureSystem,
    retriever: Retriever,
    question: str,
    *,
    prompt_id: str,
    feature: str,
    k: int = DEFAULT_TOP_K,
    min_score: float = DEFAULT_MIN_SCORE,
    use_cache: bool = True,
) -> AnswerResult:
    """Answer from the documents. InputRejectedError before anything is spent when the
    question cannot be used; StructuredOutputError when the citations never validate."""
    data = system.clean(question, DELIMITERS, what="question")
    spent_before = retriever.embedder.cost
    hits = tuple(await retriever.search(data, k))
    spent = retriever.embedder.cost - spent_before
    relevant = [hit for hit in hits if hit.score >= min_score]
    if not relevant:
        return AnswerResult(
            question, hits, not_found(feature), spent, asked_model=False, offline=system.offline
        )
    model = grounded_answer_model(tuple(hit.chunk.id for hit in relevant))
    pairs = [(hit.chunk.id, hit.chunk.text) for hit in relevant]
    generated = await system.generator.generate(
        prompt_id,
        {"question": data, "context": context_block(relevant)},
        model,
        degraded=partial(_degraded, model, question, pairs),
        use_cache=use_cache,
    )
    result = system.finish(feature, question, generated)
    return AnswerResult(question, hits, result, spent, asked_model=True, offline=system.offline)


def _degraded(
    model: type[GroundedAnswer], question: str, pairs: Sequence[tuple[str, str]]
) -> GroundedAnswer:
    answer = extractive_answer(question, pairs)
    return model(**{**answer.model_dump(), "confidence": 0.0})


def reciprocal_rank(retrieved: Sequence[str], relevant: Sequence[str]) -> float:
    """1/rank of the first relevant item retrieved (0 when none is): MRR's term."""
    wanted = set(relevant)
    for rank, item in enumerate(retrieved, start=1):
        if item in wanted:
            return 1.0 / rank
    return 0.0


def recall_at_k(retrieved: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """The share of the relevant items among the first k retrieved."""
    wanted = set(relevant)
    if not wanted:
        return math.nan
    return len(wanted & set(retrieved[:k])) / len(wanted)
