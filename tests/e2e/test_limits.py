"""Per-process limits: active runs beyond AGENTLOG_MAX_ACTIVE_RUNS get 429 with Retry-After,
SSE streams beyond AGENTLOG_MAX_SSE_CONNECTIONS 503; bodies and headers over their limits
413 and 431; every limit and every refusal shows in /metrics."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import RunStarted
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.keys import AGENT_RUNS
from agentlog.transport.settings import Settings
from tests.support.prometheus_text import parse
from tests.support.server import ServerProcess

ClientFactory = Callable[..., Awaitable[TestClient]]
SSE = {"Accept": "text/event-stream"}


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


def metric(text: str, name: str, **labels: str) -> float:
    family = parse(text)[name.removesuffix("_total")] if name not in parse(text) else None
    family = family or parse(text)[name]
    values = [v for _, got, v in family.samples if got == labels]
    assert len(values) == 1, (name, labels, family.samples)
    return values[0]


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    return await response.text()


@pytest.mark.slow
async def test_a_run_beyond_the_limit_is_429_with_retry_after(
    aiohttp_client: ClientFactory, store: StoreBase, tmp_path: Path
) -> None:
    settings = Settings(max_active_runs=1)
    client = await aiohttp_client(create_app(settings, store=store))
    for sid in ("one", "two"):
        assert (await client.post("/v1/sessions", json={"id": sid})).status == 201
    prompt = {"prompt": "[scenario:long-tool] Run the slow operation for 2 seconds"}
    first = await client.post("/v1/sessions/one/runs", json=prompt)
    assert first.status == 202
    refused = await client.post("/v1/sessions/two/runs", json={"prompt": "hello"})
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "5"
    assert (await refused.json())["error"]["code"] == "too_many_runs"
    assert [e.type for e in await store.read("two")] == ["session_created"]  # nothing written
    text = await scrape(client)
    assert metric(text, "agentlog_requests_refused_total", limit="active_runs") == 1
    assert metric(text, "agentlog_max_active_runs") == 1
    async with asyncio.timeout(30):
        while True:  # the slot frees once the first run has ended
            again = await client.post("/v1/sessions/two/runs", json={"prompt": "hello"})
            if again.status == 202:
                break
            assert again.status == 429
            await asyncio.sleep(0.1)
        while (await (await client.get("/v1/sessions/two")).json())["status"] == "running":
            await asyncio.sleep(0.1)  # ended before the app closes


async def test_a_stream_beyond_the_limit_is_503_with_retry_after(
    aiohttp_client: ClientFactory, store: StoreBase
) -> None:
    settings = Settings(max_sse_connections=2, sse_keepalive_seconds=0.2)
    client = await aiohttp_client(create_app(settings, store=store))
    assert (await client.post("/v1/sessions", json={"id": "s"})).status == 201
    open_streams = [await client.get("/v1/sessions/s/events", headers=SSE) for _ in range(2)]
    assert [r.status for r in open_streams] == [200, 200]
    refused = await client.get("/v1/sessions/s/events", headers=SSE)
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "5"
    assert (await refused.json())["error"]["code"] == "too_many_streams"
    assert (await client.get("/v1/sessions/s/events")).status == 200  # JSON pages are not streams
    text = await scrape(client)
    assert metric(text, "agentlog_requests_refused_total", limit="sse_connections") == 1
    assert metric(text, "agentlog_max_sse_connections") == 2
    open_streams[0].close()
    async with asyncio.timeout(10):
        while True:
            again = await client.get("/v1/sessions/s/events?live=false", headers=SSE)
            if again.status == 200:
                break
            await asyncio.sleep(0.05)
    for response in open_streams[1:]:
        response.close()


@pytest.mark.slow
async def test_a_live_stream_whose_client_left_frees_its_slot_before_its_keep_alive(
    tmp_path: Path, sqlite_url: str
) -> None:
    # A caught-up stream is written to by its session's tail while its handler sleeps until
    # the next keep-alive (30 s here). `agentlog serve` does not cancel a handler when its
    # client leaves (the test server does, hence a real process): with no event to find the
    # closed connection, the tail's re-check (2 s) must let it go, or the slot stays taken
    # until the keep-alive.
    env = {
        "AGENTLOG_DATABASE_URL": sqlite_url,
        "AGENTLOG_MAX_SSE_CONNECTIONS": "1",
        "AGENTLOG_SSE_KEEPALIVE_SECONDS": "30",
    }
    server = ServerProcess(tmp_path, env).start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.url}/v1/sessions", json={"id": "s"}) as created:
                assert created.status == 201
            stream = await http.get(f"{server.url}/v1/sessions/s/events", headers=SSE)
            assert stream.status == 200
            await stream.content.readuntil(b"event: session_created")  # caught up: live
            await asyncio.sleep(0.3)  # the handler hands its connection to the tail
            stream.close()
            async with asyncio.timeout(8):
                while True:
                    url = f"{server.url}/v1/sessions/s/events?live=false"
                    async with http.get(url, headers=SSE) as again:
                        if again.status == 200:
                            break
                        assert again.status == 503
                    await asyncio.sleep(0.1)
    finally:
        server.stop()


async def test_a_body_over_the_limit_is_413_and_counted(
    aiohttp_client: ClientFactory, store: StoreBase
) -> None:
    client = await aiohttp_client(create_app(Settings(max_body_bytes=2048), store=store))
    response = await client.post("/v1/sessions", json={"metadata": {"x": "y" * 4096}})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "body_too_large"
    text = await scrape(client)
    assert metric(text, "agentlog_requests_refused_total", limit="body_too_large") == 1
    assert metric(text, "agentlog_max_body_bytes") == 2048
    assert await store.read_all() == []


def test_a_header_over_the_limit_is_431_and_counted(tmp_path: Path, sqlite_url: str) -> None:
    env = {"AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_MAX_HEADER_BYTES": "2048"}
    server = ServerProcess(tmp_path, env).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                + b"a" * 4096
                + b"\r\nConnection: close\r\n\r\n"
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.split(b"\r\n", 1)[0].endswith(b" 431 Request Header Fields Too Large")
        import urllib.request

        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert metric(text, "agentlog_requests_refused_total", limit="header_too_large") == 1
        assert metric(text, "agentlog_max_header_bytes") == 2048
    finally:
        server.stop()


@pytest.mark.slow
async def test_a_crash_continuation_beyond_the_limit_waits_for_the_running_turn(
    aiohttp_client: ClientFactory, store: StoreBase, tmp_path: Path
) -> None:
    settings = Settings(max_active_runs=1)
    app = create_app(settings, store=store)
    client = await aiohttp_client(app)
    for sid in ("one", "dead"):
        assert (await client.post("/v1/sessions", json={"id": sid})).status == 201
    prompt = {"prompt": "[scenario:long-tool] Run the slow operation for 2 seconds"}
    assert (await client.post("/v1/sessions/one/runs", json=prompt)).status == 202
    # A run whose server died, as the sweep finds it: open, nobody holding its lease.
    await store.append("dead", [RunStarted(run_id="run_dead", prompt="hello")])
    runner = app[AGENT_RUNS]
    assert await runner.sweep(["dead"]) == []
    assert runner.waiting_for_slot == ["dead"]
    async with asyncio.timeout(60):
        while True:  # continued once the first run ended, with nothing asked again
            events = await store.read("dead")
            if any(isinstance(e.event, RunStarted) and e.event.continues_run_id for e in events):
                break
            await asyncio.sleep(0.1)
        while (await (await client.get("/v1/sessions/dead")).json())["status"] == "running":
            await asyncio.sleep(0.1)  # ended before the app closes
