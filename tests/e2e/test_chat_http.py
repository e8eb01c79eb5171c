"""The chat route's refusals and its reconnect route, in process: a bad first send creates no
session, a session token sends only to its own session, and the reconnect route answers 204
when nothing runs, also for a chat that does not exist yet. (Sends that run: test_use_chat.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings

ClientFactory = Callable[..., Awaitable[TestClient]]
SETTINGS = Settings(api_token="api-t", token_secret="s3cret-for-tokens")
API = {"Authorization": "Bearer api-t"}


def said(text: str) -> dict[str, Any]:
    return {"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: StoreBase) -> TestClient:
    client = await aiohttp_client(create_app(SETTINGS, store=store))
    assert (await client.post("/v1/sessions", json={"id": "a"}, headers=API)).status == 201
    return client


async def token_for(client: TestClient, session_id: str, scope: str) -> dict[str, str]:
    response = await client.post(
        f"/v1/sessions/{session_id}/tokens", json={"scope": scope}, headers=API
    )
    assert response.status == 201
    return {"Authorization": "Bearer " + (await response.json())["token"]}


async def exists(client: TestClient, session_id: str) -> bool:
    response = await client.get(f"/v1/sessions/{session_id}", headers=API)
    assert response.status in (200, 404)
    return response.status == 200


async def error_of(client: TestClient, body: Any, headers: dict[str, str]) -> tuple[int, str]:
    response = await client.post("/v1/chat", json=body, headers=headers)
    return response.status, (await response.json())["error"]["code"]


async def test_a_bad_first_send_is_refused_and_creates_no_session(client: TestClient) -> None:
    cases: list[tuple[Any, str]] = [
        ({"messages": [said("hi")]}, "invalid_body"),  # no id
        ({"id": "no spaces", "messages": [said("hi")]}, "invalid_session_id"),
        ({"id": "new", "messages": [said(" \n ")]}, "invalid_prompt"),
        ({"id": "new", "messages": []}, "invalid_prompt"),
        ({"id": "new", "messages": [said("x" * 100_001)]}, "invalid_prompt"),
    ]
    for body, code in cases:
        assert await error_of(client, body, API) == (400, code), body
    assert not await exists(client, "new")
    assert not await exists(client, "no spaces")


async def test_a_session_token_sends_only_to_its_own_session(client: TestClient) -> None:
    write = await token_for(client, "a", "write")
    body = {"id": "b", "messages": [said("hi")]}
    assert await error_of(client, body, write) == (403, "forbidden")
    assert not await exists(client, "b")  # a session token never creates one
    read = await token_for(client, "a", "read")
    assert await error_of(client, {**body, "id": "a"}, read) == (403, "forbidden")
    # The reconnect route is the session's like /v1/sessions/{id}/stream.
    assert (await client.get("/v1/chat/b/stream", headers=write)).status == 403
    assert (await client.get("/v1/chat/a/stream", headers=read)).status == 204
    assert (await client.get("/v1/chat/a/stream")).status == 401


async def test_reconnecting_when_nothing_runs_is_204_even_before_the_first_send(
    client: TestClient,
) -> None:
    for chat_id in ("a", "not-created-yet"):
        response = await client.get(f"/v1/chat/{chat_id}/stream", headers=API)
        assert response.status == 204, chat_id
    assert not await exists(client, "not-created-yet")


async def test_a_deleted_chat_is_gone_for_sends_and_reconnects(client: TestClient) -> None:
    assert (await client.delete("/v1/sessions/a", headers=API)).status in (200, 202, 204)
    assert await error_of(client, {"id": "a", "messages": [said("hi")]}, API) == (
        410,
        "session_deleted",
    )
    assert (await client.get("/v1/chat/a/stream", headers=API)).status == 410


async def test_stopping_a_chat_with_nothing_running_is_no_error(client: TestClient) -> None:
    response = await client.post("/v1/chat/a/stop", json={}, headers=API)
    assert (response.status, await response.json()) == (200, {"run_id": None, "status": "idle"})
    response = await client.post("/v1/chat/nope/stop", json={}, headers=API)
    assert (response.status, (await response.json())["error"]["code"]) == (
        404,
        "unknown_session",
    )
    read = await token_for(client, "a", "read")
    assert (await client.post("/v1/chat/a/stop", json={}, headers=read)).status == 403
    assert (await client.post("/v1/chat/a/stop", json=[], headers=API)).status == 400
