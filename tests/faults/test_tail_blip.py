"""Scenario 7: a database blip does not disconnect every follower. The private PostgreSQL is
stopped for a few seconds under a live SSE stream; the session's tail retries its reads with
backoff, and the same HTTP response goes on to deliver every event, none twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.keys import FEEDS
from agentlog.transport.settings import Settings
from tests.faults.servers import PrivatePostgres
from tests.support.sse_client import SseParser

ClientFactory = Callable[..., Awaitable[TestClient]]

pytestmark = pytest.mark.slow


async def test_a_follower_stays_connected_through_a_database_blip(
    aiohttp_client: ClientFactory, private_postgres: PrivatePostgres
) -> None:
    async with open_store(private_postgres.url, db_timeout=1.0) as store:
        app = create_app(Settings(sse_keepalive_seconds=0.5), store=store)
        client = await aiohttp_client(app)
        await store.append("s", [SessionCreated()])
        response = await client.get(
            "/v1/sessions/s/events", headers={"Accept": "text/event-stream"}
        )
        assert response.status == 200
        parser = SseParser()
        received: list[int] = []

        async def read() -> None:
            async for chunk in response.content.iter_any():
                received.extend(int(e.id) for e in parser.feed(chunk.decode()) if e.id)  # type: ignore[arg-type]

        reader = asyncio.create_task(read())
        for n in range(5):
            await store.append("s", [CustomEventRecorded(name="before", data=n)])
        tail = app[FEEDS]._tails["s"]

        await asyncio.to_thread(private_postgres.stop, "fast")
        for _ in range(3):  # make the tail read while the database is down
            store.wakeups.local.wake_everyone()  # type: ignore[attr-defined]
            await asyncio.sleep(0.7)
        await asyncio.to_thread(private_postgres.start)
        back = time.monotonic()
        for n in range(5):
            await store.append("s", [CustomEventRecorded(name="after", data=n)])

        async with asyncio.timeout(15):
            while len(received) < 11:
                await asyncio.sleep(0.01)
        print(
            f"\ndatabase blip: the open stream had every event {time.monotonic() - back:.2f} s"
            " after the database accepted connections"
        )
        assert not reader.done(), "the follower was disconnected"
        reader.cancel()
        response.close()
        assert tail.read_failures >= 1 and tail.failed is None
        assert received == list(range(1, 12))
