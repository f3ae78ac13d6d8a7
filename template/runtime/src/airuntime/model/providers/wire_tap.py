"""The recording tap: an HTTP transport under a vendor SDK that keeps each response's bytes
for the `RecordingClient` call in progress (see model/recording.py)."""

from __future__ import annotations

import httpx2

from airuntime.model.cassettes import kept_headers
from airuntime.model.recording import TAPE, WireExchange

# Headers of a rebuilt response that describe the original encoding of a body now decoded.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class WireTap(httpx2.AsyncBaseTransport):
    """An HTTP transport that passes requests on and keeps a copy of each response for the
    recording call in progress (a contextvar, so concurrent calls keep theirs apart)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self._inner = inner if inner is not None else httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        tape = TAPE.get()
        if tape is None:
            return response
        body = await response.aread()  # decoded: the rebuilt response drops content-encoding
        await response.aclose()
        exchange = WireExchange(response.status_code, kept_headers(response.headers.items()), body)
        tape.append(exchange)
        headers = [
            (name, value)
            for name, value in response.headers.items()
            if name.lower() not in _ENCODING_HEADERS
        ]
        return httpx2.Response(response.status_code, headers=headers, content=body, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def tapped_http_client() -> httpx2.AsyncClient:
    """An HTTP client for an adapter whose responses are to be recorded."""
    return httpx2.AsyncClient(transport=WireTap())
