from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from airuntime.resilience.cache import ResponseCache, StoredAnswer, cache_key
from airuntime.types import LLMRequest, LLMResponse, Message, ModelTarget

OPENAI = ModelTarget(provider="openai", model="m")
RESPONSE = LLMResponse(text="cached answer", model="m", provider="openai")
ANSWER = StoredAnswer(response=RESPONSE, target=OPENAI, served_by="openai")


def request(content: str = "hello", **fields: object) -> LLMRequest:
    return LLMRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": content}], **fields}
    )


def key(
    sent: LLMRequest,
    *,
    target: ModelTarget = OPENAI,
    served_by: str | None = "openai",
    endpoint: str | None = None,
) -> str:
    return cache_key(sent, target=target, served_by=served_by, endpoint=endpoint)


def test_key_ignores_the_request_id_but_not_what_shapes_the_answer() -> None:
    base = key(request())

    assert key(request()) == base  # a new request id each time
    assert key(request("other")) != base
    assert key(request(temperature=0.5)) != base
    assert key(request(model="m2")) != base
    assert key(request(max_tokens=10)) != base
    assert key(request(metadata={"prompt.version": "2.0.0"})) != base
    assert key(request(metadata={"feature": "x"})) == base


def test_key_names_who_would_answer_the_provider_the_server_and_its_endpoint() -> None:
    base = key(request())

    # The same request to the same model, answered by someone else each time.
    assert key(request(), served_by="mock") != base  # the offline stand-in
    assert key(request(), target=ModelTarget(provider="anthropic", model="m")) != base
    assert key(request(), endpoint="http://127.0.0.1:11434/v1") != base  # a local server
    assert key(request(), served_by=None) != base  # nobody configured for it
    assert key(request(), endpoint="http://127.0.0.1:11434/v1") == key(
        request(), endpoint="http://127.0.0.1:11434/v1"
    )


def test_stores_and_expires_by_ttl(tmp_path: Path) -> None:
    now = [1000.0]
    stored = key(request())
    with closing(
        ResponseCache(tmp_path / "cache.sqlite3", ttl_seconds=60, clock=lambda: now[0])
    ) as cache:
        cache.put(stored, ANSWER)
        now[0] += 60
        assert cache.get(stored) == ANSWER
        now[0] += 1
        assert cache.get(stored) is None
        assert cache.purge_expired() == 1


def test_an_answer_keeps_its_provenance(tmp_path: Path) -> None:
    stand_in = StoredAnswer(
        response=RESPONSE.model_copy(update={"provider": "mock"}),
        target=OPENAI,
        served_by="mock",
    )
    local = ANSWER.model_copy(update={"endpoint": "http://127.0.0.1:8000/v1"})
    with closing(ResponseCache(tmp_path / "cache.sqlite3", ttl_seconds=60)) as cache:
        cache.put("stand-in", stand_in)
        cache.put("local", local)

        assert cache.get("stand-in") == stand_in
        assert (cache.get("stand-in") or ANSWER).served_by == "mock"
        assert (cache.get("local") or ANSWER).endpoint == "http://127.0.0.1:8000/v1"


def test_an_entry_without_provenance_is_never_served(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with closing(ResponseCache(path, ttl_seconds=60)):
        pass
    with closing(sqlite3.connect(path)) as db:  # a response as an older runtime stored it
        db.execute(
            "INSERT INTO responses (key, stored_at, body) VALUES (?, strftime('%s','now'), ?)",
            ("old", RESPONSE.model_dump_json()),
        )
        db.commit()

    with closing(ResponseCache(path, ttl_seconds=60)) as cache:
        assert cache.get("old") is None


def test_idempotency_keys_live_apart_from_cache_keys(tmp_path: Path) -> None:
    with closing(ResponseCache(tmp_path / "cache.sqlite3", ttl_seconds=60)) as cache:
        cache.put_idempotent("job-42", ANSWER)

        assert cache.get_idempotent("job-42") == ANSWER
        assert cache.get("job-42") is None
        assert cache.get_idempotent("job-43") is None


def test_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with closing(ResponseCache(path, ttl_seconds=60)) as cache:
        cache.put("k", ANSWER)

    with closing(ResponseCache(path, ttl_seconds=60)) as reopened:
        assert reopened.get("k") == ANSWER


def test_messages_are_part_of_the_key() -> None:
    two = LLMRequest(
        model="m",
        messages=(Message(role="system", content="a"), Message(role="user", content="b")),
    )
    merged = LLMRequest(model="m", messages=(Message(role="user", content="ab"),))

    assert key(two) != key(merged)
