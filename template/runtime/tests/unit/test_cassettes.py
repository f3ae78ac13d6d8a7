"""Cassette files: what a recording is matched on, how a miss is explained, bad files, and the
scan that no cassette holds a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airuntime.errors import ConfigurationError
from airuntime.model.cassette_mode import CassetteSession, check_mode
from airuntime.model.cassettes import (
    Cassette,
    CassetteError,
    Interaction,
    cassette_name,
    explain_miss,
    find_secrets,
    load_cassette,
    load_cassettes,
    match_key,
    normalized,
    redacted,
)
from airuntime.model.factory import ProviderConfig
from airuntime.model.recording import parse_events
from airuntime.types import LLMRequest, Message


def request(*texts: str, **extra: object) -> LLMRequest:
    return LLMRequest(
        model="m",
        messages=tuple(Message(role="user", content=text) for text in texts),
        **extra,  # type: ignore[arg-type]
    )


def test_the_match_ignores_the_request_id_and_tracing_metadata_but_not_the_prompt() -> None:
    one = request("hi", metadata={"prompt.id": "p", "prompt.version": "1.0.0", "trace": "a"})
    two = one.model_copy(update={"request_id": "other", "metadata": {**one.metadata, "trace": "b"}})
    bumped = one.model_copy(update={"metadata": {"prompt.id": "p", "prompt.version": "1.1.0"}})

    key = match_key(normalized("openai", "complete", one))

    assert key == match_key(normalized("openai", "complete", two))
    assert key != match_key(normalized("openai", "complete", bumped))
    assert key != match_key(normalized("openai", "stream", one))
    assert key != match_key(normalized("anthropic", "complete", one))


def test_content_is_matched_redacted_as_the_cassette_holds_it() -> None:
    wanted = normalized("openai", "complete", request("mail ada@example.com or +44 20 7946 0958"))

    assert wanted["messages"] == [{"role": "user", "content": "mail [EMAIL] or [PHONE]"}]
    assert redacted({"a": ["sk-ant-abcdefghijklmnopqrstuvwxyz"], "n": 3}) == {
        "a": ["[SECRET]"],
        "n": 3,
    }


def test_a_miss_names_the_message_count_that_differs() -> None:
    recorded = normalized("openai", "complete", request("a"))
    wanted = normalized("openai", "complete", request("a", "b"))

    line = explain_miss(wanted, [(Path("c/openai-adhoc.json"), recorded)])

    assert line == (
        "no recording for an unprompted m request (openai, complete): 2 messages, recorded 1 "
        "(nearest recording in openai-adhoc.json); re-record with `make record` (real keys), "
        "or set LLM_CASSETTES=off."
    )


def test_cassettes_are_named_by_provider_and_prompt() -> None:
    prompted = request("a", metadata={"prompt.id": "sum/marize", "prompt.version": "1.0.0"})

    assert cassette_name(normalized("openai", "complete", prompted)) == "openai-sum-marize.json"
    assert cassette_name(normalized("anthropic", "stream", request("a"))) == (
        "anthropic-adhoc.json"
    )


def test_a_cassette_round_trips_with_its_example_label(tmp_path: Path) -> None:
    item = Interaction(normalized("openai", "complete", request("a")), {"wire": "x"}, 12.5)
    Cassette(tmp_path / "c.json", [item], example=True, note="made by hand").save()

    loaded = load_cassette(tmp_path / "c.json")

    assert loaded.example
    assert loaded.note == "made by hand"
    assert loaded.interactions == [item]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read cassette"),
        ('{"cassette": 9}', r"is not a cassette \(format 1\): re-record it"),
        ('{"cassette": 1, "interactions": [{"request": {}}]}', "interaction 0 needs a request"),
    ],
)
def test_a_bad_cassette_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(content, encoding="utf-8")

    with pytest.raises(CassetteError, match=message) as raised:
        load_cassettes(tmp_path)

    assert "\n" not in str(raised.value)


def test_no_cassettes_at_all_says_how_to_make_some(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match=r"no cassettes in .*: record some with `make record`"):
        load_cassettes(tmp_path / "missing")


def test_the_key_scan_finds_keys_and_auth_headers(tmp_path: Path) -> None:
    (tmp_path / "clean.json").write_text('{"text": "Bearer of bad news"}\n', encoding="utf-8")
    (tmp_path / "leaky.json").write_text(
        '{\n"a": "sk-proj-abcdefghijklmnopqrstuv",\n"ok": 1,\n"Authorization": "Basic x"\n}\n',
        encoding="utf-8",
    )

    assert find_secrets(tmp_path) == [
        f"{tmp_path / 'leaky.json'}:2",
        f"{tmp_path / 'leaky.json'}:4",
    ]


def test_server_sent_events_parse_into_names_and_json() -> None:
    body = b'event: ping\ndata: {"type": "ping"}\n\n: a comment\n\ndata: [DONE]\r\n\r\n'

    assert parse_events(body) == [{"event": "ping", "data": {"type": "ping"}}, {"data": "[DONE]"}]


def test_cassette_modes_are_checked_and_only_the_adapters_are_recorded(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown cassette mode 'tape': use one of off"):
        check_mode("tape")
    with pytest.raises(ConfigurationError, match=r"not 'acme': wrap your own client"):
        CassetteSession("replay", tmp_path).client(ProviderConfig("acme"))


def test_a_cassette_written_by_hand_must_name_its_wire_format(tmp_path: Path) -> None:
    pytest.importorskip("httpx2", reason="no vendor extra installed")
    from airuntime.model.replay import ReplayClient

    item = {"request": {"provider": "openai"}, "response": {"wire": "anthropic.messages"}}
    (tmp_path / "c.json").write_text(
        json.dumps({"cassette": 1, "interactions": [item]}), encoding="utf-8"
    )

    with pytest.raises(CassetteError, match=r"wire format 'anthropic.messages': use"):
        ReplayClient("openai", load_cassettes(tmp_path))
