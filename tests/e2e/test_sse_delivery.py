"""Delivery guarantees of the SSE endpoint under hostile clients, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings
from tests.support.sse_client import SseParser

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


async def test_a_client_cut_at_random_points_ends_with_every_seq_exactly_once(
    aiohttp_client: ClientFactory, store: StoreBase
) -> None:
    """150 reconnects with Last-Event-ID while a writer appends: cuts land mid-frame, mid-line
    and between frames; the client must end with exactly 1..N, each once, in order."""
    client = await aiohttp_client(create_app(Settings(sse_keepalive_seconds=0.5), store=store))
    await store.append("s", [SessionCreated()])
    total = 1500
    rng = random.Random(7)
    writer_done = asyncio.Event()

    async def writer() -> None:
        for i in range(total - 1):
            await store.append(
                "s",
                [CustomEventRecorded(name="tick", data={"i": i, "pad": "x" * rng.randint(0, 300)})],
            )
            if i % 7 == 0:
                await asyncio.sleep(0.001)
        writer_done.set()

    received: list[int] = []
    parser = SseParser()
    reconnects = 0
    task = asyncio.create_task(writer())
    try:
        async with asyncio.timeout(120):
            while len(received) < total:
                headers = {"Accept": "text/event-stream"}
                if parser.last_event_id is not None:
                    headers["Last-Event-ID"] = parser.last_event_id
                response = await client.get("/v1/sessions/s/events", headers=headers)
                assert response.status == 200
                # A new connection's parser starts clean (a half-read frame is lost, as in a
                # browser), but the last dispatched id carries over.
                parser = SseParser(last_event_id=parser.last_event_id)
                budget = rng.randint(1, 4000)
                while budget > 0 and len(received) < total:
                    chunk = await response.content.read(min(budget, rng.randint(1, 700)))
                    if not chunk:
                        break
                    budget -= len(chunk)
                    received.extend(
                        int(e.id) for e in parser.feed(chunk.decode("utf-8", "replace")) if e.id
                    )  # type: ignore[arg-type]
                response.close()  # cut: possibly mid-frame
                reconnects += 1
    except TimeoutError:
        missing = sorted(set(range(1, total + 1)) - set(received))[:5]
        pytest.fail(f"stalled after {len(received)} events; missing {missing}")
    await task
    assert reconnects >= 100, reconnects
    assert received == list(range(1, total + 1))


async def test_a_client_that_stops_reading_is_disconnected_and_never_slows_others(
    aiohttp_client: ClientFactory, store: StoreBase
) -> None:
    app = create_app(
        Settings(sse_write_timeout_seconds=0.5, sse_keepalive_seconds=0.2), store=store
    )
    client = await aiohttp_client(app)
    await store.append("s", [SessionCreated()])
    host, port = client.server.host, client.server.port

    # The stalled client: a raw socket with a tiny receive buffer that never reads.
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, port))
    # A loopback Host: any other name is refused as DNS rebinding before the stream starts.
    stalled.sendall(
        f"GET /v1/sessions/s/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )

    healthy = await client.get("/v1/sessions/s/events", headers={"Accept": "text/event-stream"})
    parser = SseParser()
    got: list[int] = []
    big = "y" * 20_000
    for i in range(300):  # ~6 MB: far beyond what the stalled socket can buffer
        await store.append("s", [CustomEventRecorded(name="big", data={"i": i, "pad": big})])
        while True:
            try:
                async with asyncio.timeout(0.001):
                    chunk = await healthy.content.readany()
            except TimeoutError:
                break
            got.extend(int(e.id) for e in parser.feed(chunk.decode()) if e.id)  # type: ignore[arg-type]
    async with asyncio.timeout(20):
        while len(got) < 301:
            chunk = await healthy.content.readany()
            got.extend(int(e.id) for e in parser.feed(chunk.decode()) if e.id)  # type: ignore[arg-type]
    assert got == list(range(1, 302))
    # The stalled connection was dropped by the server: reading it now drains what the
    # kernel buffered, then hits EOF or a reset. Still open after 20 s is a failure, not a
    # disconnect (a timeout here used to count as "disconnected", so this could never fail).
    stalled.setblocking(False)
    await asyncio.sleep(1.0)
    closed = False
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(20):  # generous: the suite shares a loaded machine
            while True:
                data = await loop.sock_recv(stalled, 65536)
                if not data:
                    closed = True
                    break
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        closed = False
    stalled.close()
    healthy.close()
    assert closed, "the server kept a stalled SSE client connected"
