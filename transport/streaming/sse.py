"""Writing Server-Sent Events: headers proxies respect, bounded writes, keep-alive comments.

A client that stops reading fills the socket buffers; without a timeout on each write the
handler would hang forever. Each write gets `sse_write_timeout_seconds`: a client that cannot
take it is disconnected (it resumes later with Last-Event-ID) and never slows anyone else.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    # nginx buffers responses unless told not to; buffering breaks live delivery.
    "X-Accel-Buffering": "no",
}
KEEPALIVE = b": keep-alive\n\n"


class ClientGone(Exception):
    """The client disconnected or was too slow to take a write."""


async def open_sse(
    request: web.Request, extra_headers: dict[str, str] | None = None
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **(extra_headers or {})})
    await response.prepare(request)
    return response


async def send(
    request: web.Request, response: web.StreamResponse, data: bytes, timeout: float
) -> None:
    try:
        async with asyncio.timeout(timeout):
            await response.write(data)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()  # drop what is buffered: the client resumes from its last id
        raise ClientGone("write timed out") from None
    except (ConnectionError, RuntimeError) as exc:
        # aiohttp raises ConnectionResetError (or RuntimeError on a closed payload writer).
        raise ClientGone(str(exc)) from None
