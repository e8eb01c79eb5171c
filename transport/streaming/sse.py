"""Writing Server-Sent Events: headers proxies respect, bounded writes, keep-alive comments.

A client that stops reading fills the socket buffers; without a timeout on each write the
handler would hang forever. Each write gets `sse_write_timeout_seconds`: a client that cannot
take it is disconnected (it resumes later with Last-Event-ID) and never slows anyone else.

A stream the server ends before its client would (its session token expired or was revoked)
ends like any other: `end_stream` cancels the handler, which writes one last frame saying why
and the chunked body's end (`finish_ended`), so a client sees a clean end, not a dropped
connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class StreamEnding:
    """Why the server ends a stream: an error code and message, as in an error response."""

    code: str
    message: str


STREAM_ENDING = web.RequestKey("stream_ending", StreamEnding)
# The task serving a stream: `end_stream` cancels it, and only it.
STREAM_TASK: web.RequestKey[asyncio.Task[Any]] = web.RequestKey("stream_task")


def end_stream(request: web.Request, code: str, message: str) -> None:
    """Make the stream's handler end it with a last frame saying why (see `finish_ended`)."""
    task = request.get(STREAM_TASK)
    if task is None or task.done() or STREAM_ENDING in request:
        return
    request[STREAM_ENDING] = StreamEnding(code, message)
    task.cancel("the server ends this stream")


def ending_of(request: web.Request) -> StreamEnding | None:
    """Why the server is ending this stream, when a cancellation is `end_stream`'s."""
    return request.get(STREAM_ENDING)


async def finish_ended(
    request: web.Request, response: web.StreamResponse, last_frame: bytes, timeout: float
) -> web.StreamResponse:
    """In the handler, on `end_stream`'s cancellation: the last frame, then the end of the
    chunked body. The cancellation is taken back: it was a request to end, not to abort."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    try:
        await send(request, response, last_frame, timeout)
        await response.write_eof()
    except (ClientGone, ConnectionError, RuntimeError):
        pass  # the client left on its own meanwhile
    return response
