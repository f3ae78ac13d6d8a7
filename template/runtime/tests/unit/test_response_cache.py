from __future__ import annotations

from contextlib import closing
from pathlib import Path

from airuntime.resilience.cache import ResponseCache, cache_key
from airuntime.types import LLMRequest, LLMResponse, Message

RESPONSE = LLMResponse(text="cached answer", model="m", provider="mock")


def request(content: str = "hello", **fields: object) -> LLMRequest:
    return LLMRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": content}], **fields}
    )


def test_key_ignores_the_request_id_but_not_what_shapes_the_answer() -> None:
    base = cache_key(request())

    assert cache_key(request()) == base  # a new request id each time
    assert cache_key(request("other")) != base
    assert cache_key(request(temperature=0.5)) != base
    assert cache_key(request(model="m2")) != base
    assert cache_key(request(max_tokens=10)) != base
    assert cache_key(request(metadata={"prompt.version": "2.0.0"})) != base
    assert cache_key(request(metadata={"feature": "x"})) == base


def test_stores_and_expires_by_ttl(tmp_path: Path) -> None:
    now = [1000.0]
    key = cache_key(request())
    with closing(
        ResponseCache(tmp_path / "cache.sqlite3", ttl_seconds=60, clock=lambda: now[0])
    ) as cache:
        cache.put(key, RESPONSE)
        now[0] += 60
        assert cache.get(key) == RESPONSE
        now[0] += 1
        assert cache.get(key) is None
        assert cache.purge_expired() == 1


def test_idempotency_keys_live_apart_from_cache_keys(tmp_path: Path) -> None:
    with closing(ResponseCache(tmp_path / "cache.sqlite3", ttl_seconds=60)) as cache:
        cache.put_idempotent("job-42", RESPONSE)

        assert cache.get_idempotent("job-42") == RESPONSE
        assert cache.get("job-42") is None
        assert cache.get_idempotent("job-43") is None


def test_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with closing(ResponseCache(path, ttl_seconds=60)) as cache:
        cache.put("k", RESPONSE)

    with closing(ResponseCache(path, ttl_seconds=60)) as reopened:
        assert reopened.get("k") == RESPONSE


def test_messages_are_part_of_the_key() -> None:
    two = LLMRequest(
        model="m",
        messages=(Message(role="system", content="a"), Message(role="user", content="b")),
    )
    merged = LLMRequest(model="m", messages=(Message(role="user", content="ab"),))

    assert cache_key(two) != cache_key(merged)
