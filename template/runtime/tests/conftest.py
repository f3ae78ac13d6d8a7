"""Test tiers and isolation shared by every runtime test.

Each test is marked with the tier of the directory it lives in (tests/unit, tests/functional),
so `pytest -m unit` selects exactly that tier. The runtime reads no settings of its own, but
its tests still never reach the network, and logging configured by one test never leaks into
the next.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airuntime.observability.logs import reset_logging

TESTS_DIR = Path(__file__).parent
TIERS = ("unit", "functional")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(TESTS_DIR):
            continue  # another suite's test, collected in the same run
        tier = item.path.relative_to(TESTS_DIR).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(
                f"{item.nodeid}: every runtime test must live in tests/unit or tests/functional; "
                "move it into one of them."
            )
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def in_tmp_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Relative paths (var/, reports/) land in the test's own directory."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """Logging configured by one test never leaks into the next."""
    yield
    reset_logging()


class NetworkAccessError(RuntimeError):
    """A runtime test tried to reach the network."""


def _is_local(host: object) -> bool:
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _is_ip_address(host: object) -> bool:
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return True


def _refuse(what: str) -> NetworkAccessError:
    return NetworkAccessError(
        f"{what}: runtime tests stay offline; mock the HTTP transport or use a server on loopback."
    )


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests cannot resolve or connect to anything but loopback. Mocked HTTP transports
    (httpx2.MockTransport) never open a socket, so they keep working."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guarded(real: Callable[..., Any]) -> Callable[..., Any]:
        def connect(sock: socket.socket, address: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
                sock.close()  # callers only clean up after an OSError
                raise _refuse(f"connect to {address[0]}:{address[1]}")
            return real(sock, address)

        return connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if not (_is_local(name) or _is_ip_address(name)):  # an IP address needs no DNS query
            raise _refuse(f"DNS lookup of {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
