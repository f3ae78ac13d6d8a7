"""API keys: stored as SHA-256 hashes (a leaked settings file leaks no key), compared in
constant time, each with a name (a team, a department) that limits and spend are kept by.

A key entry is `name:sha256:<hex>`; `new_api_key()` makes a key and the entry to configure.
A key is a random 256-bit token, so one unsalted SHA-256 is enough: there is nothing to guess
that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from airuntime.errors import ConfigurationError
from airuntime.service.errors import ServiceError

KEY_PREFIX = "ak_"
HASH_SCHEME = "sha256"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def hash_api_key(key: str) -> str:
    """The stored form of a key: `sha256:<hex>`."""
    return f"{HASH_SCHEME}:{hashlib.sha256(key.encode()).hexdigest()}"


def new_api_key(name: str) -> tuple[str, str]:
    """A fresh key for `name`, and the entry that configures it (`name:sha256:<hex>`)."""
    _check_name(name)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, f"{name}:{hash_api_key(key)}"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    name: str
    digest: bytes


class ApiKeyring:
    """The configured keys; `identify` says whose a presented key is."""

    def __init__(self, entries: Iterable[KeyEntry], *, setting: str = "SERVICE_API_KEYS") -> None:
        self.entries = tuple(entries)
        names = [entry.name for entry in self.entries]
        if len(set(names)) != len(names):
            raise ConfigurationError(
                f"two API keys have the same name: give each key its own name ({setting})."
            )

    @classmethod
    def parse(cls, spec: str, *, setting: str = "SERVICE_API_KEYS") -> ApiKeyring:
        """Entries `name:sha256:<hex>`, separated by commas; a one-line ConfigurationError
        naming the bad entry (and `setting`, the variable it came from) otherwise."""
        entries = [_entry(item.strip(), setting) for item in spec.split(",") if item.strip()]
        return cls(entries, setting=setting)

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)

    def identify(self, presented: str) -> str | None:
        """The name of the key, or None. Every entry is compared, in constant time each, so
        the time taken says nothing about which entry (or how much of one) matched."""
        digest = hashlib.sha256(presented.encode()).digest()
        found: str | None = None
        for entry in self.entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry.name
        return found

    def authenticate(self, authorization: str | None, api_key_header: str | None) -> str:
        """The key's name from `Authorization: Bearer <key>` or `X-API-Key`; a 401 without
        a key, a 403 with an unknown one."""
        presented = presented_key(authorization, api_key_header)
        if not presented:
            raise ServiceError(
                401,
                "missing_api_key",
                "this service needs an API key: send it as 'Authorization: Bearer <key>'.",
            )
        name = self.identify(presented)
        if name is None:
            raise ServiceError(403, "invalid_api_key", "this API key is not known here.")
        return name


def presented_key(authorization: str | None, api_key_header: str | None) -> str | None:
    """The key a request presents: `X-API-Key`, else `Authorization: Bearer <key>`."""
    if api_key_header is not None:
        return api_key_header
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


def authenticate_admin(
    admin: ApiKeyring,
    service: ApiKeyring,
    authorization: str | None,
    api_key_header: str | None,
) -> str:
    """The admin key's name (SERVICE_ADMIN_KEYS): a 401 without a key, a 403 with a service
    key (it never opens the admin routes) or an unknown one. Both keyrings are compared in
    full, in constant time, whichever matches."""
    presented = presented_key(authorization, api_key_header)
    if not presented:
        raise ServiceError(
            401,
            "missing_api_key",
            "the admin routes need an admin key: send it as 'Authorization: Bearer <key>'.",
        )
    name = admin.identify(presented)
    as_service = service.identify(presented)
    if name is not None:
        return name
    if as_service is not None:
        raise ServiceError(
            403,
            "not_admin",
            "this is a service key, and the admin routes need an admin key (SERVICE_ADMIN_KEYS).",
        )
    raise ServiceError(403, "invalid_api_key", "this API key is not known here.")


# The command that makes an entry for each setting (the shell's `api-key`).
_MAKER = {"SERVICE_ADMIN_KEYS": "api-key NAME --admin"}


def _entry(item: str, setting: str) -> KeyEntry:
    name, _, rest = item.partition(":")
    scheme, _, hexdigest = rest.partition(":")
    if scheme != HASH_SCHEME or not _HEX.match(hexdigest):
        raise ConfigurationError(
            f"API key entry {name!r} is not name:sha256:<64 hex digits>: make entries with "
            f"the `{_MAKER.get(setting, 'api-key NAME')}` command ({setting})."
        )
    _check_name(name)
    return KeyEntry(name, bytes.fromhex(hexdigest))


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigurationError(
            f"API key name {name!r} is not usable: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)."
        )
