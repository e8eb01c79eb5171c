"""A real browser's EventSource (headless Chromium) receives every event of a live session
across a server-side disconnect: the server is killed and restarted mid-stream, and the browser
reconnects by itself with Last-Event-ID."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest

from tests.support.browser import chromium_available, open_browser
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

TYPES = ["session_created", "custom"]
LISTEN = """
window.received = []; window.opens = 0;
const source = new EventSource('/v1/sessions/b/events');
source.onopen = () => { window.opens += 1; };
for (const type of %s) {
  source.addEventListener(type, (e) => window.received.push(Number(e.lastEventId)));
}
true
"""


async def test_eventsource_gets_every_event_across_a_server_restart(
    tmp_path: Path, sqlite_url: str
) -> None:
    if not chromium_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed")
    env = {"AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_SSE_RETRY_MS": "200"}
    server = ServerProcess(tmp_path, env).start()
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
            open_browser() as page,
        ):
            async with http.post(f"{server.url}/v1/sessions", json={"id": "b"}) as response:
                assert response.status == 201
            await page.navigate(f"{server.url}/healthz")  # same origin as the stream
            await page.evaluate(LISTEN % TYPES)
            await page.wait_for("window.opens === 1")

            async def post(count: int, base: str) -> None:
                for i in range(count):
                    body = {"events": [{"type": "custom", "name": "tick", "data": i}]}
                    async with http.post(f"{base}/v1/sessions/b/events", json=body) as r:
                        assert r.status == 200

            await post(25, server.url)
            await page.wait_for("window.received.length === 26")
            server.kill()  # the browser sees the connection drop mid-stream
            server = ServerProcess(tmp_path, env, server.port).start()
            await post(25, server.url)
            await page.wait_for("window.received.length >= 51", timeout=60)
            await asyncio.sleep(0.5)  # anything duplicated would arrive now
            received = await page.evaluate("window.received")
            assert received == list(range(1, 52))
            assert await page.evaluate("window.opens") >= 2  # it really reconnected
    finally:
        server.stop()
