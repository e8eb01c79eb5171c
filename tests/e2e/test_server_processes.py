"""Delivery across real server processes: several instances, kill -9 and restart, SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from agentlog.domain.events import CustomEventRecorded
from agentlog.infra.store.opening import open_store
from tests.support.server import ServerProcess
from tests.support.sse_client import SseParser

pytestmark = pytest.mark.slow


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def start(
    servers: list[ServerProcess], tmp_path: Path, env: dict[str, str], port: int | None = None
) -> ServerProcess:
    server = ServerProcess(tmp_path, env, port).start()
    servers.append(server)
    return server


async def collect(
    http: aiohttp.ClientSession,
    url: str,
    parser: SseParser,
    want: int,
    received: list[int],
    timeout: float = 30,
) -> None:
    headers = {"Accept": "text/event-stream"}
    if parser.last_event_id:
        headers["Last-Event-ID"] = parser.last_event_id
    async with asyncio.timeout(timeout), http.get(url, headers=headers) as response:
        assert response.status == 200
        async for chunk in response.content.iter_any():
            received.extend(int(e.id) for e in parser.feed(chunk.decode()) if e.id)  # type: ignore[arg-type]
            if len(received) >= want:
                return


async def post_events(
    http: aiohttp.ClientSession, base: str, session: str, count: int, tag: str
) -> None:
    for i in range(count):
        body = {"events": [{"type": "custom", "name": tag, "data": i}]}
        async with http.post(f"{base}/v1/sessions/{session}/events", json=body) as response:
            assert response.status == 200, await response.text()


async def test_two_instances_share_live_delivery_and_resume_across_each_other(
    postgres_url: str, redis_url: str, servers: list[ServerProcess], tmp_path: Path
) -> None:
    # postgres_url comes first so its teardown (dropping the schema) runs after the servers stop.
    env = {"AGENTLOG_DATABASE_URL": postgres_url, "AGENTLOG_REDIS_URL": redis_url}
    a = start(servers, tmp_path, env)
    b = start(servers, tmp_path, env)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{a.url}/v1/sessions", json={"id": "shared"}) as response:
            assert response.status == 201
        received: list[int] = []
        parser = SseParser()
        # Subscribed on A while everything is written through B: delivered live by Redis.
        reader = asyncio.create_task(
            collect(http, f"{a.url}/v1/sessions/shared/events", parser, 41, received)
        )
        await asyncio.sleep(0.3)
        await post_events(http, b.url, "shared", 40, "via-b")
        await reader
        assert received == list(range(1, 42))
        # More events while nobody listens; the client then resumes on the OTHER instance.
        await post_events(http, a.url, "shared", 20, "via-a")
        await collect(http, f"{b.url}/v1/sessions/shared/events", parser, 61, received)
        assert received == list(range(1, 62))


async def test_kill_9_mid_stream_then_restart_resumes_with_nothing_lost_or_repeated(
    servers: list[ServerProcess], tmp_path: Path, sqlite_url: str
) -> None:
    env = {"AGENTLOG_DATABASE_URL": sqlite_url}
    server = start(servers, tmp_path, env)
    port = server.port
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v1/sessions", json={"id": "k"}) as response:
            assert response.status == 201
        received: list[int] = []
        parser = SseParser()
        url = f"{server.url}/v1/sessions/k/events"
        reader = asyncio.create_task(collect(http, url, parser, 10_000, received, timeout=60))
        await post_events(http, server.url, "k", 30, "before")
        await asyncio.sleep(0.3)
        server.kill()
        with pytest.raises((aiohttp.ClientError, ConnectionError)):
            await reader  # the stream is cut, not ended
        assert received == list(range(1, len(received) + 1)) and len(received) > 1
        # Events written while the server is down (another writer straight to the log).
        async with open_store(sqlite_url) as store:
            await store.append("k", [CustomEventRecorded(name="offline", data=i) for i in range(5)])
        restarted = start(servers, tmp_path, env, port=port)
        await post_events(http, restarted.url, "k", 10, "after")
        await collect(http, url, parser, 46, received)
        assert received == list(range(1, 47))


async def test_sigterm_ends_sse_responses_cleanly(
    servers: list[ServerProcess], tmp_path: Path, sqlite_url: str
) -> None:
    server = start(servers, tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v1/sessions", json={"id": "t"}) as response:
            assert response.status == 201
        async with http.get(
            f"{server.url}/v1/sessions/t/events", headers={"Accept": "text/event-stream"}
        ) as response:
            parser = SseParser()
            first = await response.content.readany()
            parser.feed(first.decode())
            code = await asyncio.to_thread(server.terminate)
            # A clean end: the chunked body finishes with EOF, not a reset.
            rest = await asyncio.wait_for(response.content.read(), 20)
            parser.feed(rest.decode())
            assert response.content.at_eof()
        assert code == 0
        assert parser.last_event_id == "1"
