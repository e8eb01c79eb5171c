"""Session tokens: signed, expiring, bound to one session and a scope; minted by the admin
route, the session's token route or `agentlog token`; Bearer, or `?access_token=` for read."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.middleware.session_tokens import (
    TokenRejected,
    mint,
    parse_ttl,
    signing_key,
    verify,
)
from agentlog.transport.settings import Settings
from tests.support.server import AGENTLOG

ClientFactory = Callable[..., Awaitable[TestClient]]
SETTINGS = Settings(api_token="api-t", admin_token="admin-t", token_secret="s3cret-for-tokens")
KEY = signing_key("s3cret-for-tokens")
assert KEY is not None
ADMIN = {"Authorization": "Bearer admin-t"}
API = {"Authorization": "Bearer api-t"}
CUSTOM = {"events": [{"type": "custom", "name": "n"}]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: StoreBase) -> TestClient:
    client = await aiohttp_client(create_app(SETTINGS, store=store))
    for sid in ("a", "b"):
        assert (await client.post("/v1/sessions", json={"id": sid}, headers=API)).status == 201
    return client


def test_a_token_verifies_until_it_expires_and_not_after_any_change() -> None:
    token, _ = mint(KEY, "a", "read", 60, now=1000)
    grant = verify(KEY, token, now=1059)
    assert (grant.session_id, grant.scope, grant.expires_at) == ("a", "read", 1060)
    with pytest.raises(TokenRejected) as expired:
        verify(KEY, token, now=1060)
    assert expired.value.code == "token_expired"
    prefix, payload, signature = token.split(".")
    forged = base64.urlsafe_b64encode(
        json.dumps({"sid": "b", "scope": "write", "exp": 9_999_999_999}).encode()
    )
    for bad in [
        f"{prefix}.{forged.decode().rstrip('=')}.{signature}",  # another payload, old signature
        f"{prefix}.{payload}.{signature[:-2]}AA",  # a changed signature
        f"{prefix}.{payload}",
        "agl1...",
    ]:
        with pytest.raises(TokenRejected) as rejected:
            verify(KEY, bad, now=1000)
        assert rejected.value.code == "invalid_token"
    other_key = signing_key("another secret")
    assert other_key is not None
    with pytest.raises(TokenRejected):
        verify(other_key, token, now=1000)
    assert [parse_ttl(t) for t in ["90", "90s", "15m", "1h", "7d"]] == [90, 90, 900, 3600, 604800]
    for bad_ttl in ["0", "1w", "-1h", "31d", "1.5h", ""]:
        with pytest.raises(ValueError):
            parse_ttl(bad_ttl)


async def minted(client: TestClient, session_id: str, scope: str, ttl: int = 3600) -> str:
    body = {"session_id": session_id, "scope": scope, "ttl_seconds": ttl}
    response = await client.post("/v1/admin/tokens", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()
    answer = await response.json()
    assert (answer["session_id"], answer["scope"]) == (session_id, scope)
    return str(answer["token"])


async def test_a_read_token_opens_only_its_sessions_reads(
    client: TestClient, store: StoreBase
) -> None:
    read = bearer(await minted(client, "a", "read"))
    for path in ["/v1/sessions/a", "/v1/sessions/a/events", "/v1/sessions/a/messages"]:
        assert (await client.get(path, headers=read)).status == 200, path
    before = len(await store.read_all())
    refused = [
        await client.get("/v1/sessions/b/events", headers=read),
        await client.get("/v1/sessions/b", headers=read),
        await client.get("/v1/sessions", headers=read),
        await client.get("/v1/admin/events", headers=read),
        await client.post("/v1/sessions/a/events", json=CUSTOM, headers=read),
        await client.post("/v1/sessions/a/runs", json={"prompt": "hi"}, headers=read),
        await client.post("/v1/sessions", json={"id": "c"}, headers=read),
        await client.post("/v1/sessions/a/tokens", json={"scope": "write"}, headers=read),
    ]
    assert [r.status for r in refused] == [403] * len(refused)
    assert len(await store.read_all()) == before


async def test_a_write_token_writes_to_its_session_only(
    client: TestClient, store: StoreBase
) -> None:
    write = bearer(await minted(client, "a", "write"))
    response = await client.post("/v1/sessions/a/events", json=CUSTOM, headers=write)
    assert response.status == 200
    response = await client.post("/v1/sessions/b/events", json=CUSTOM, headers=write)
    assert response.status == 403
    assert (await client.get("/v1/admin/events", headers=write)).status == 403
    assert [e.session_id for e in await store.read_all()] == ["a", "b", "a"]


async def test_expired_and_tampered_tokens_are_401(client: TestClient) -> None:
    expired, _ = mint(KEY, "a", "write", 1, now=0)
    response = await client.get("/v1/sessions/a/events", headers=bearer(expired))
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "token_expired"
    good = await minted(client, "a", "write")
    prefix, payload, signature = good.split(".")
    tampered = f"{prefix}.{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{signature}"
    response = await client.get("/v1/sessions/a/events", headers=bearer(tampered))
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_token"
    unsigned_by_us, _ = mint(signing_key("guess") or b"", "a", "write", 3600)
    response = await client.get("/v1/sessions/a/events", headers=bearer(unsigned_by_us))
    assert response.status == 401


async def test_access_token_in_the_query_takes_read_tokens_only(client: TestClient) -> None:
    read = await minted(client, "a", "read")
    sse = {"Accept": "text/event-stream"}
    response = await client.get(
        f"/v1/sessions/a/events?live=false&access_token={read}", headers=sse
    )
    assert response.status == 200
    assert "event: session_created" in await response.text()
    response = await client.get(f"/v1/sessions/b/events?access_token={read}")
    assert response.status == 403
    write = await minted(client, "a", "write")
    for token in [write, "api-t", "admin-t"]:
        response = await client.get(f"/v1/sessions/a/events?access_token={token}")
        assert response.status == 401, token


async def test_the_api_token_mints_for_a_session_and_the_admin_for_any(client: TestClient) -> None:
    response = await client.post("/v1/sessions/a/tokens", json={"scope": "read"}, headers=API)
    assert response.status == 201
    token = (await response.json())["token"]
    assert (await client.get("/v1/sessions/a/events", headers=bearer(token))).status == 200
    response = await client.post("/v1/sessions/nope/tokens", json={}, headers=API)
    assert response.status == 404
    response = await client.post(
        "/v1/admin/tokens", json={"session_id": "a", "scope": "read"}, headers=API
    )
    assert response.status == 403  # the admin route needs the admin token
    response = await client.post(
        "/v1/admin/tokens", json={"session_id": "a", "ttl_seconds": 0}, headers=ADMIN
    )
    assert response.status == 400


async def test_agentlog_token_mints_what_the_server_accepts(client: TestClient) -> None:
    env = {**os.environ, "AGENTLOG_API_TOKEN": "api-t", "AGENTLOG_ADMIN_TOKEN": "admin-t"}
    env["AGENTLOG_TOKEN_SECRET"] = "s3cret-for-tokens"
    done = await asyncio.to_thread(
        subprocess.run,
        [str(AGENTLOG), "token", "--session", "a", "--scope", "read", "--ttl", "1h"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert "valid until" in done.stderr and token not in done.stderr
    token_id = verify(KEY, token).token_id
    assert f"id {token_id}" in done.stderr  # what an operator revokes it by
    assert (await client.get("/v1/sessions/a/messages", headers=bearer(token))).status == 200
    assert (await client.get("/v1/sessions/b/messages", headers=bearer(token))).status == 403
    env.pop("AGENTLOG_TOKEN_SECRET")
    for name in ["AGENTLOG_API_TOKEN", "AGENTLOG_ADMIN_TOKEN"]:
        env.pop(name)
    done = await asyncio.to_thread(
        subprocess.run,
        [str(AGENTLOG), "token", "--session", "a"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "AGENTLOG_TOKEN_SECRET" in done.stderr


async def test_only_a_delete_scoped_token_deletes_its_session(
    client: TestClient, store: StoreBase
) -> None:
    for scope in ["read", "write"]:
        token = bearer(await minted(client, "a", scope))
        response = await client.delete("/v1/sessions/a", headers=token)
        assert response.status == 403, scope
        assert (await response.json())["error"]["code"] == "forbidden"
    assert (await client.get("/v1/sessions/a", headers=API)).status == 200
    delete = bearer(await minted(client, "a", "delete"))
    # A delete token also reads and writes its session, and deletes no other.
    response = await client.post("/v1/sessions/a/events", json=CUSTOM, headers=delete)
    assert response.status == 200
    assert (await client.delete("/v1/sessions/b", headers=delete)).status == 403
    assert (await client.delete("/v1/sessions/a", headers=delete)).status == 200
    assert (await client.get("/v1/sessions/a", headers=API)).status in (404, 410)
    assert (await client.get("/v1/sessions/b", headers=API)).status == 200


SSE = {"Accept": "text/event-stream"}


async def test_one_token_cannot_take_every_stream_slot(
    aiohttp_client: ClientFactory, store: StoreBase
) -> None:
    # Issue 22: one read token filled every SSE slot, and the API token then got 503.
    settings = replace(
        SETTINGS, max_sse_connections=8, max_streams_per_token=2, max_streams_per_session=3
    )
    client = await aiohttp_client(create_app(settings, store=store))
    assert (await client.post("/v1/sessions", json={"id": "a"}, headers=API)).status == 201
    first, second = [bearer(await minted(client, "a", "read")) for _ in range(2)]
    url = "/v1/sessions/a/events"
    opened = [await client.get(url, headers={**first, **SSE}) for _ in range(2)]
    try:
        assert [r.status for r in opened] == [200, 200]
        refused = await client.get(url, headers={**first, **SSE})
        assert refused.status == 429, await refused.text()
        assert (await refused.json())["error"]["code"] == "too_many_streams"
        assert "Retry-After" in refused.headers
        opened.append(await client.get(url, headers={**second, **SSE}))
        assert opened[-1].status == 200
        refused = await client.get(url, headers={**second, **SSE})  # the session's third
        assert refused.status == 429
        opened.append(await client.get(url, headers={**API, **SSE}))
        assert opened[-1].status == 200  # the API token is not held back by session tokens
    finally:
        for response in opened:
            response.close()


async def test_session_tokens_leave_a_tenth_of_the_stream_slots_to_the_operator(
    aiohttp_client: ClientFactory, store: StoreBase
) -> None:
    # Issue 22: session tokens filled every SSE slot (here one token, its caps set high, as
    # many tokens of many sessions would) and the API token then got 503.
    settings = replace(
        SETTINGS, max_sse_connections=20, max_streams_per_token=50, max_streams_per_session=50
    )
    client = await aiohttp_client(create_app(settings, store=store))
    assert (await client.post("/v1/sessions", json={"id": "a"}, headers=API)).status == 201
    read = {**bearer(await minted(client, "a", "read")), **SSE}
    url = "/v1/sessions/a/events"
    opened = []
    try:
        for _ in range(18):
            opened.append(await client.get(url, headers=read))
            assert opened[-1].status == 200
        refused = await client.get(url, headers=read)
        opened.append(refused)  # closed at the end whatever it is (a stream never ends)
        assert refused.status == 503
        assert (await refused.json())["error"]["code"] == "too_many_streams"
        assert "Retry-After" in refused.headers
        for operator in (API, ADMIN):  # the two reserved slots
            opened.append(await client.get(url, headers={**operator, **SSE}))
            assert opened[-1].status == 200
        full = await client.get(url, headers={**API, **SSE})
        opened.append(full)
        assert full.status == 503  # the reserve is a share of the limit, not more than it
    finally:
        for response in opened:
            response.close()


async def read_to_the_end(response: aiohttp.ClientResponse) -> bytes:
    """The whole body; raises ClientPayloadError when the server drops the connection instead
    of ending the chunked body (the bound is for a hung test only)."""
    async with asyncio.timeout(60):
        return await response.content.read()


async def test_a_stream_ends_cleanly_saying_why_when_its_token_expires(client: TestClient) -> None:
    token, _ = mint(KEY, "a", "read", 2)
    response = await client.get("/v1/sessions/a/events", headers={**bearer(token), **SSE})
    assert response.status == 200
    body = await read_to_the_end(response)  # a dropped connection fails here
    *_, last = body.decode().strip().split("\n\n")
    event, data = last.split("\n")
    assert event == "event: error"
    assert json.loads(data.removeprefix("data: "))["error"]["code"] == "token_expired"
    again = await client.get("/v1/sessions/a/events", headers={**bearer(token), **SSE})
    assert again.status == 401


async def test_a_run_streamed_with_a_token_that_expires_ends_with_an_error_chunk(
    client: TestClient,
) -> None:
    """The UI message stream of a run (GET /stream, as useChat resumes): its last chunks are
    the AI SDK's error chunk, then [DONE], and the chunked body ends; the run goes on."""
    prompt = "[scenario:long-tool] Run the slow operation for 8 seconds"
    started = await client.post("/v1/sessions/a/runs", json={"prompt": prompt}, headers=API)
    assert started.status == 202, await started.text()
    run_id = (await started.json())["run_id"]
    token, _ = mint(KEY, "a", "read", 3)
    response = await client.get("/v1/sessions/a/stream", headers=bearer(token))
    assert response.status == 200, await response.text()
    body = await read_to_the_end(response)
    *_, error, done = body.decode().strip().split("\n\n")
    assert done == "data: [DONE]"
    chunk = json.loads(error.removeprefix("data: "))
    assert chunk["type"] == "error" and "expired" in chunk["errorText"], chunk
    session = await (await client.get("/v1/sessions/a", headers=API)).json()
    assert session["active_run"]["run_id"] == run_id
    await client.post(f"/v1/sessions/a/runs/{run_id}/cancel", headers=API)


async def test_a_run_streamed_by_its_post_ends_when_the_token_expires(
    client: TestClient,
) -> None:
    """A run streamed by the POST that starts it (as useChat's send is) is a stream too: it
    ends at its write token's expiry with the error chunk and [DONE]; the run goes on."""
    token, _ = mint(KEY, "a", "write", 3)
    prompt = "[scenario:long-tool] Run the slow operation for 8 seconds"
    response = await client.post(
        "/v1/sessions/a/runs", json={"prompt": prompt}, headers={**bearer(token), **SSE}
    )
    assert response.status == 200
    body = await read_to_the_end(response)
    *_, error, done = body.decode().strip().split("\n\n")
    assert done == "data: [DONE]"
    chunk = json.loads(error.removeprefix("data: "))
    assert chunk["type"] == "error" and "expired" in chunk["errorText"], chunk
    session = await (await client.get("/v1/sessions/a", headers=API)).json()
    run_id = session["active_run"]["run_id"]
    await client.post(f"/v1/sessions/a/runs/{run_id}/cancel", headers=API)


async def test_a_revoked_token_is_refused_by_every_instance_and_its_streams_end(
    aiohttp_client: ClientFactory, sqlite_url: str, client: TestClient
) -> None:
    # `client` serves the database; `other` is a second instance on the same file.
    async with open_store(sqlite_url) as other_store:
        other = await aiohttp_client(create_app(SETTINGS, store=other_store))
        body = {"session_id": "a", "scope": "read", "ttl_seconds": 3600}
        minted_answer = await (
            await client.post("/v1/admin/tokens", json=body, headers=ADMIN)
        ).json()
        token, token_id = minted_answer["token"], minted_answer["token_id"]
        kept = bearer(await minted(client, "a", "read"))
        stream = await other.get("/v1/sessions/a/events", headers={**bearer(token), **SSE})
        assert stream.status == 200

        assert (await client.delete(f"/v1/admin/tokens/{token_id}", headers=API)).status == 403
        response = await client.delete(f"/v1/admin/tokens/{token_id}", headers=ADMIN)
        assert response.status == 200, await response.text()
        assert await response.json() == {"token_id": token_id, "revoked": True}

        # The other instance ends the stream, cleanly, with an error event saying why.
        body = await read_to_the_end(stream)
        assert body.decode().strip().split("\n\n")[-1].startswith("event: error\n")
        assert b'"token_revoked"' in body
        for instance in (client, other):
            refused = await instance.get("/v1/sessions/a/events", headers=bearer(token))
            assert refused.status == 401
            assert (await refused.json())["error"]["code"] == "token_revoked"
            assert (await instance.get("/v1/sessions/a/events", headers=kept)).status == 200
        for bad in ["nope", "0" * 31, "g" * 32]:
            response = await client.delete(f"/v1/admin/tokens/{bad}", headers=ADMIN)
            assert response.status == 400, bad
            assert (await response.json())["error"]["code"] == "invalid_token_id"
