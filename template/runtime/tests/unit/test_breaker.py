from __future__ import annotations

from airuntime.errors import (
    BadRequestError,
    RateLimitedError,
    ServerError,
)
from airuntime.resilience.breaker import BreakerBoard, BreakerState, CircuitBreaker
from airuntime.types import ModelTarget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def server_error() -> ServerError:
    return ServerError("down", provider="p", model="m", status_code=500)


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cooldown_seconds=30, clock=clock)


def state(subject: CircuitBreaker) -> BreakerState:
    """Read through a call so mypy does not narrow the property between assertions."""
    return subject.state


def test_opens_after_consecutive_failures_and_blocks_until_cooldown() -> None:
    clock = Clock()
    subject = breaker(clock)

    for _ in range(2):
        subject.record_failure(server_error())
    assert state(subject) is BreakerState.CLOSED
    subject.record_failure(server_error())

    assert state(subject) is BreakerState.OPEN
    assert not subject.allow()
    clock.now += 29.9
    assert not subject.allow()


def test_success_resets_the_count() -> None:
    subject = breaker(Clock())
    subject.record_failure(server_error())
    subject.record_failure(server_error())
    subject.record_success()
    subject.record_failure(server_error())

    assert state(subject) is BreakerState.CLOSED
    assert subject.consecutive_failures == 1


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    subject = breaker(clock)
    for _ in range(3):
        subject.record_failure(server_error())
    clock.now += 30

    assert state(subject) is BreakerState.HALF_OPEN
    assert subject.allow()
    assert not subject.allow()  # a second caller waits for the probe
    subject.record_success()
    assert state(subject) is BreakerState.CLOSED
    assert subject.allow()


def test_failed_probe_opens_again_for_a_full_cooldown() -> None:
    clock = Clock()
    subject = breaker(clock)
    for _ in range(3):
        subject.record_failure(server_error())
    clock.now += 30
    assert subject.allow()

    subject.record_failure(server_error())

    assert state(subject) is BreakerState.OPEN
    clock.now += 29
    assert not subject.allow()
    clock.now += 1
    assert subject.allow()


def test_rate_limit_opens_at_once_for_the_longer_of_retry_after_and_cooldown() -> None:
    clock = Clock()
    subject = breaker(clock)

    subject.record_failure(RateLimitedError("slow", provider="p", model="m", retry_after=90))

    assert state(subject) is BreakerState.OPEN
    clock.now += 60
    assert not subject.allow()
    clock.now += 30
    assert subject.allow()


def test_rate_limit_with_short_retry_after_holds_for_the_cooldown() -> None:
    clock = Clock()
    subject = breaker(clock)

    subject.record_failure(RateLimitedError("slow", provider="p", model="m", retry_after=1))

    clock.now += 29
    assert not subject.allow()


def test_terminal_errors_say_nothing_about_health() -> None:
    subject = breaker(Clock())

    for _ in range(10):
        subject.record_failure(BadRequestError("bad", provider="p", model="m"))

    assert state(subject) is BreakerState.CLOSED
    assert subject.consecutive_failures == 0


def test_board_keeps_one_breaker_per_target_and_reports_states() -> None:
    board = BreakerBoard(failure_threshold=1, cooldown_seconds=5, clock=Clock())
    first = ModelTarget(provider="openai", model="a")
    second = ModelTarget(provider="openai", model="b")

    board.get(first).record_failure(server_error())

    assert board.get(first) is board.get(first)
    assert board.states() == {"openai/a": "open"}
    board.get(second)
    assert board.states() == {"openai/a": "open", "openai/b": "closed"}


def test_a_probe_in_flight_reads_as_half_open() -> None:
    clock = Clock()
    board = BreakerBoard(failure_threshold=3, cooldown_seconds=30, clock=clock)
    subject = board.get(ModelTarget(provider="p", model="m"))
    for _ in range(3):
        subject.record_failure(server_error())
    clock.now += 30

    assert subject.allow()

    assert state(subject) is BreakerState.HALF_OPEN
    assert board.states() == {"p/m": "half_open"}


def test_a_probe_answered_with_a_terminal_error_closes_the_breaker() -> None:
    clock = Clock()
    subject = breaker(clock)
    for _ in range(3):
        subject.record_failure(server_error())
    clock.now += 30
    assert subject.allow()

    subject.record_failure(BadRequestError("bad", provider="p", model="m"))

    assert state(subject) is BreakerState.CLOSED  # the model answered: it is up
    assert subject.allow()


def test_a_terminal_error_while_open_keeps_the_breaker_open() -> None:
    clock = Clock()
    subject = breaker(clock)
    for _ in range(3):
        subject.record_failure(server_error())

    subject.record_failure(BadRequestError("bad", provider="p", model="m"))  # a call in flight

    assert state(subject) is BreakerState.OPEN
    assert not subject.allow()


def test_a_clock_starting_at_zero_reopens_after_exactly_the_cooldown() -> None:
    clock = Clock()
    clock.now = 0.0
    subject = CircuitBreaker(failure_threshold=1, cooldown_seconds=0.5, clock=clock)

    subject.record_failure(server_error())
    clock.now = 0.5

    assert state(subject) is BreakerState.HALF_OPEN
