"""One Redis connection for every shared part, its key prefix, and what its failures mean.

At start the server must answer (else a one-line ConfigurationError: a missing piece of
production configuration is an error, not a silent local stand-in). Mid-run, each part decides:
the budget fails closed (or falls back when configured), the cache answers a miss, the limits
and breakers use this instance's own. Every such failure is counted in `errors` (by part) and
logged once per part until that part works again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from airuntime.errors import ConfigurationError
from airuntime.resilience.state import RedisConfig, SharedStateUnavailableError

T = TypeVar("T")

log = structlog.get_logger("airuntime.shared_state")


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisState:
    """The asyncio client, the key prefix and the failure counts of the shared parts."""

    def __init__(self, config: RedisConfig, client: redis.asyncio.Redis) -> None:
        self.config = config
        self.client = client
        self.prefix = config.key_prefix
        self.where = redacted(config.url)
        self.errors: Counter[str] = Counter()
        self._failing: set[str] = set()

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def call(self, part: str, operation: Awaitable[T]) -> T:
        """Await one Redis operation; any Redis failure becomes SharedStateUnavailableError,
        counted and logged (once, until `part` works again)."""
        try:
            result = await operation
        except (RedisError, OSError) as error:
            self.failed(part, error)
            raise SharedStateUnavailableError(f"{type(error).__name__}: {error}") from error
        self.worked(part)
        return result

    def failed(self, part: str, error: BaseException) -> None:
        """Count a failure of `part`; log it if `part` was working until now."""
        self.errors[part] += 1
        if part not in self._failing:
            self._failing.add(part)
            log.warning(
                f"shared state: Redis at {self.where} failed for the {part} "
                f"({type(error).__name__}: {error}); {FALLBACKS[part]}"
            )

    def worked(self, part: str) -> None:
        if part in self._failing:
            self._failing.discard(part)
            log.info(f"shared state: Redis at {self.where} works again for the {part}")

    def subscriber(self) -> redis.asyncio.Redis:
        """A client of its own for a subscription (it holds its connection while it listens).
        It never reconnects by itself: a lost connection must end the listening, so that what
        was learned while subscribed is dropped (messages sent meanwhile are lost)."""
        return redis.asyncio.Redis.from_url(
            self.config.url,
            socket_timeout=self.config.socket_timeout_seconds,
            socket_connect_timeout=self.config.connect_timeout_seconds,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
        )

    async def aclose(self) -> None:
        await self.client.aclose()


FALLBACKS = {
    "budget": "the budget refuses calls until it is back (or falls back, when configured)",
    "breaker": "this instance's own breakers decide meanwhile",
    "breaker_events": "every attempt asks Redis meanwhile (nothing is cached)",
    "limits": "this instance's own rate limits apply meanwhile",
    "cache": "answered as a cache miss",
    "switch": "the kill switch keeps the state it last read, and refuses changes",
}


def connect(config: RedisConfig) -> RedisState:
    """The shared state's connection, after checking the server answers: otherwise one
    ConfigurationError line saying what to do. (The check uses a short-lived synchronous
    connection: assembly runs before any event loop.)"""
    where = redacted(config.url)
    try:
        probe = redis.Redis.from_url(
            config.url,
            socket_timeout=config.socket_timeout_seconds,
            socket_connect_timeout=config.connect_timeout_seconds,
        )
        try:
            probe.ping()
        finally:
            probe.close()
    except ValueError as error:
        raise ConfigurationError(
            f"REDIS_URL {where!r} is not a Redis URL ({error}): use redis://HOST:PORT/DB."
        ) from None
    except (RedisError, OSError) as error:
        raise ConfigurationError(
            f"Redis at {where} (REDIS_URL) cannot be reached ({type(error).__name__}: {error}): "
            "start it, fix REDIS_URL, or unset REDIS_URL to keep this instance's state local."
        ) from None
    options: dict[str, Any] = {
        "socket_timeout": config.socket_timeout_seconds,
        "socket_connect_timeout": config.connect_timeout_seconds,
        "decode_responses": True,
    }
    return RedisState(config, redis.asyncio.Redis.from_url(config.url, **options))
