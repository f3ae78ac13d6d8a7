"""The autouse guard in tests/conftest.py keeps the runtime tests offline."""

from __future__ import annotations

import asyncio
import socket

import pytest

OFFLINE = "runtime tests stay offline"


def test_connecting_to_a_public_address_is_refused() -> None:
    with pytest.raises(RuntimeError, match=OFFLINE) as caught:
        socket.create_connection(("192.0.2.10", 443), timeout=1)

    assert "connect to 192.0.2.10:443" in str(caught.value)


def test_resolving_a_public_name_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"DNS lookup of api\.openai\.com"):
        socket.getaddrinfo("api.openai.com", 443)


async def test_asyncio_connections_are_refused_too() -> None:
    with pytest.raises(RuntimeError, match=OFFLINE):
        await asyncio.open_connection("198.51.100.7", 80)


async def test_loopback_stays_open_for_local_test_servers() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("localhost", port)
        writer.write(b"ping\n")
        await writer.drain()
        assert await reader.readline() == b"ping\n"
        writer.close()
        await writer.wait_closed()
