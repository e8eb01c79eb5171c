"""Browsers cannot be turned against the server: a foreign Origin or Host, or a body a page can
send without a preflight, is refused before anything is written; allowed origins get CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings

ClientFactory = Callable[..., Awaitable[TestClient]]
ALLOWED = "http://app.example.test:3000"


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: StoreBase) -> TestClient:
    settings = Settings(allowed_origins=(ALLOWED,), allowed_hosts=("agentlog.example.test",))
    return await aiohttp_client(create_app(settings, store=store))


async def sessions(store: StoreBase) -> int:
    return len(await store.read_all())


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_write_that_is_not_json_is_415_and_creates_nothing(
    client: TestClient, store: StoreBase, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/v1/sessions", data=b'{"id": "x"}', headers=headers)
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"
    response = await client.post("/v1/sessions/x/runs", data=b'{"prompt": "bash"}', headers=headers)
    assert response.status == 415
    assert await sessions(store) == 0
    ok = await client.post("/v1/sessions", json={"id": "x"})
    assert ok.status == 201
    assert await sessions(store) == 1


async def test_a_foreign_origin_is_403_for_reads_writes_and_preflights(
    client: TestClient, store: StoreBase
) -> None:
    evil = {"Origin": "http://evil.example.test"}
    response = await client.post("/v1/sessions", json={"id": "x"}, headers=evil)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden_origin"
    assert (await client.get("/v1/sessions", headers=evil)).status == 403
    preflight = await client.options(
        "/v1/sessions", headers={**evil, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    null_origin = await client.post("/v1/sessions", json={}, headers={"Origin": "null"})
    assert null_origin.status == 403
    assert await sessions(store) == 0


async def test_the_servers_own_origin_is_allowed(client: TestClient) -> None:
    own = {"Origin": f"http://{client.host}:{client.port}"}
    response = await client.post("/v1/sessions", json={"id": "mine"}, headers=own)
    assert response.status == 201
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_rebinding_host_is_403_and_configured_or_loopback_hosts_pass(
    client: TestClient, store: StoreBase
) -> None:
    for host in ["evil.example.test", "evil.example.test:8080", "127.0.0.1.evil.test"]:
        response = await client.post("/v1/sessions", json={}, headers={"Host": host})
        assert response.status == 403, host
        assert (await response.json())["error"]["code"] == "forbidden_host"
        assert (await client.get("/healthz", headers={"Host": host})).status == 403
    assert await sessions(store) == 0
    for host in ["localhost:1", "127.0.0.5", "[::1]:8080", "agentlog.example.test"]:
        response = await client.get("/v1/sessions", headers={"Host": host})
        assert response.status == 200, host


async def test_an_allowed_origin_gets_a_preflight_and_cors_headers(client: TestClient) -> None:
    origin = {"Origin": ALLOWED}
    preflight = await client.options(
        "/v1/sessions/x/runs",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed_headers = preflight.headers["Access-Control-Allow-Headers"].lower()
    for header in ["content-type", "authorization", "last-event-id"]:
        assert header in allowed_headers
    assert "Origin" in preflight.headers["Vary"]
    created = await client.post("/v1/sessions", json={"id": "cors"}, headers=origin)
    assert created.status == 201
    assert created.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Location" in created.headers["Access-Control-Expose-Headers"]
    streamed = await client.get(
        "/v1/sessions/cors/events?live=false",
        headers={**origin, "Accept": "text/event-stream"},
    )
    assert streamed.status == 200
    assert streamed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "session_created" in await streamed.text()
    refused = await client.post("/v1/sessions", data="{}", headers={**origin})
    assert refused.status == 415
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED  # the page can read why
