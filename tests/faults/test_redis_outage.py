"""A Redis outage decides nothing and is never a 500 (issue 22: every `POST /runs` answered 500
`internal_error`, an unhandled ConnectionError from the run lock in Redis). The lease is the
database's, so a run starts and finishes with Redis down; whatever else meets a dead Redis is a
503 JSON answer with `Retry-After`. Redis is a private redis-server, killed by its pid."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.exceptions
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings
from tests.faults.servers import PrivateRedis

ClientFactory = Callable[..., Awaitable[TestClient]]


async def event_types(client: TestClient, session_id: str) -> list[str]:
    answer = await (await client.get(f"/v1/sessions/{session_id}/events")).json()
    return [event["type"] for event in answer["events"]]


async def test_a_run_starts_and_finishes_while_redis_is_down(
    aiohttp_client: ClientFactory, sqlite_url: str, private_redis: PrivateRedis
) -> None:
    settings = Settings(database_url=sqlite_url, redis_url=private_redis.url)
    client = await aiohttp_client(create_app(settings))
    assert (await client.post("/v1/sessions", json={"id": "s"})).status == 201
    private_redis.kill()
    response = await client.post("/v1/sessions/s/runs", json={"prompt": "Hello"})
    assert response.status == 202, await response.text()
    async with asyncio.timeout(60):
        while "run_finished" not in (types := await event_types(client, "s")):
            await asyncio.sleep(0.1)
    assert "run_abandoned" not in types and "run_failed" not in types


async def test_a_request_that_meets_a_dead_redis_is_503_json_with_retry_after(
    aiohttp_client: ClientFactory, sqlite_url: str
) -> None:
    async def needs_redis(request: web.Request) -> web.Response:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6390.")

    # The app's own request steps (transport/middleware/request_steps.py) answer it.
    app = create_app(Settings(database_url=sqlite_url))
    app.router.add_post("/v1/needs-redis", needs_redis)
    client = await aiohttp_client(app)
    response = await client.post("/v1/needs-redis", json={})
    assert response.status == 503
    assert response.content_type == "application/json"
    assert (await response.json())["error"]["code"] == "redis_unavailable"
    assert int(response.headers["Retry-After"]) >= 1
