"""The fault and latency specs a developer types into MOCK_FAULTS and MOCK_LATENCY_MS."""

from __future__ import annotations

import random
import re

import pytest

from airuntime.errors import RateLimitedError
from airuntime.model.mock_faults import (
    FAULT_KINDS,
    ChaosMonkey,
    Fault,
    Latency,
    fault_error,
    parse_fault_spec,
    parse_latency_spec,
)


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", {}),
        ("  ", {}),
        ("rate_limit=0.1", {"rate_limit": 0.1}),
        ("rate_limit=0.1,timeout=0.05", {"rate_limit": 0.1, "timeout": 0.05}),
        (" server_error = 1 , ", {"server_error": 1.0}),
        ("truncated=0,malformed_json=0.5", {"truncated": 0.0, "malformed_json": 0.5}),
    ],
)
def test_fault_spec_reads_name_probability_pairs(spec: str, expected: dict[str, float]) -> None:
    assert parse_fault_spec(spec) == expected


def test_every_fault_kind_can_be_named_in_a_spec() -> None:
    spec = ",".join(f"{kind}=0.1" for kind in FAULT_KINDS)

    assert set(parse_fault_spec(spec)) == set(FAULT_KINDS)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ratelimit=0.1", "unknown fault 'ratelimit'; use one of: timeout, rate_limit"),
        ("rate_limit", "fault 'rate_limit' has no probability; write it as rate_limit=0.1"),
        ("rate_limit=often", "probability of rate_limit must be a number from 0 to 1, got 'often'"),
        ("timeout=1.5", "probability of timeout must be a number from 0 to 1, got '1.5'"),
        ("timeout=-0.1", "probability of timeout must be a number from 0 to 1"),
        ("timeout=nan", "probability of timeout must be a number from 0 to 1"),
        ("timeout=0.1,timeout=0.2", "fault timeout is listed twice"),
        ("timeout=0.6,rate_limit=0.6", "fault probabilities add up to 1.2; keep the total at 1"),
    ],
)
def test_bad_fault_specs_say_what_is_wrong_in_one_line(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_fault_spec(spec)

    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0", Latency(0, 0)),
        ("250", Latency(250, 250)),
        (" 12.5 ", Latency(12.5, 12.5)),
        ("50-400", Latency(50, 400)),
    ],
)
def test_latency_spec_is_fixed_or_a_range(spec: str, expected: Latency) -> None:
    assert parse_latency_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "fast", "-5", "400-50", "1-2-3", "inf", "10-nan"])
def test_bad_latency_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="is not milliseconds; write a number like 250"):
        parse_latency_spec(spec)


def test_fixed_latency_ignores_the_random_source() -> None:
    assert Latency(120, 120).draw_seconds(seeded(1)) == 0.12


def test_chaos_monkey_is_off_without_positive_probabilities() -> None:
    assert not ChaosMonkey({}, seeded(0))
    assert not ChaosMonkey({"timeout": 0.0}, seeded(0))
    assert ChaosMonkey({"timeout": 0.5}, seeded(0))


def test_chaos_monkey_gives_each_fault_its_slice() -> None:
    monkey = ChaosMonkey({"timeout": 0.25, "server_error": 0.25}, seeded(0))
    draws = [monkey.draw() for _ in range(4000)]
    kinds = [draw.kind if draw else None for draw in draws]

    assert 850 < kinds.count("timeout") < 1150
    assert 850 < kinds.count("server_error") < 1150
    assert 1850 < kinds.count(None) < 2150


def test_chaos_rate_limits_carry_the_configured_retry_after() -> None:
    monkey = ChaosMonkey({"rate_limit": 1.0}, seeded(0), retry_after=3.0)

    assert monkey.draw() == Fault("rate_limit", retry_after=3.0)


def test_output_faults_are_not_errors() -> None:
    error = fault_error(Fault("rate_limit", retry_after=None), provider="p", model="m")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after is None
    with pytest.raises(ValueError, match="truncated is an output fault"):
        fault_error(Fault("truncated"), provider="p", model="m")
