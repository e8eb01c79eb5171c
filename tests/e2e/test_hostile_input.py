"""Bad input a client sends gets a precise 4xx JSON error and changes nothing: deep nesting,
header bytes that are not UTF-8, oversized headers, offsets that are not plain digits; and
/healthz tells strangers only what is up."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings
from tests.support.server import ServerProcess

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: StoreBase) -> TestClient:
    return await aiohttp_client(create_app(Settings(), store=store))


async def error_of(response: object, status: int) -> str:
    assert response.status == status, await response.text()  # type: ignore[attr-defined]
    assert response.content_type == "application/json"  # type: ignore[attr-defined]
    return str((await response.json())["error"]["code"])  # type: ignore[attr-defined]


async def test_a_body_nested_thousands_deep_is_400(client: TestClient, store: StoreBase) -> None:
    deep = '{"id": "x", "metadata": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    response = await client.post(
        "/v1/sessions", data=deep, headers={"Content-Type": "application/json"}
    )
    assert await error_of(response, 400) == "invalid_body"
    assert await store.read_all() == []


async def test_an_idempotency_key_that_is_not_printable_is_400(
    client: TestClient, store: StoreBase
) -> None:
    assert (await client.post("/v1/sessions", json={"id": "s"})).status == 201
    # aiohttp's client sends header values as given, so raw bytes go through a raw socket too.
    for key in ["x" * 256, "\u200b"]:
        response = await client.post(
            "/v1/sessions/s/events",
            json={"events": [{"type": "custom", "name": "n"}]},
            headers={"Idempotency-Key": key},
        )
        assert await error_of(response, 400) == "invalid_idempotency_key"
    assert len(await store.read_all()) == 1


@pytest.mark.parametrize("offset", ["+1", " 1", "1_0", "\u0661", "-1", "0x1", "1.0", ""])
async def test_offsets_must_be_plain_digits(client: TestClient, offset: str) -> None:
    assert (await client.post("/v1/sessions", json={"id": "s"})).status == 201
    response = await client.get("/v1/sessions/s/events", params={"offset": offset})
    assert await error_of(response, 400) == "invalid_offset"
    response = await client.get("/v1/admin/events", params={"after": offset})
    assert await error_of(response, 400) == "invalid_after"


def raw_request(port: int, request: bytes) -> tuple[int, dict[str, object]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    return status, json.loads(body)


def test_a_real_server_answers_header_errors_as_json(tmp_path: Path, sqlite_url: str) -> None:
    server = ServerProcess(tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url}).start()
    try:
        huge = b"1" * 100_000
        status, body = raw_request(
            server.port,
            b"GET /v1/sessions/s/events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: "
            + huge
            + b"\r\nConnection: close\r\n\r\n",
        )
        assert status == 431 and body["error"]["code"] == "header_too_large"
        status, body = raw_request(server.port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n")
        assert status == 431
        status, body = raw_request(server.port, b"NOT HTTP AT ALL\r\n\r\n")
        assert status == 400 and body["error"]["code"] == "bad_request"
        # Header bytes that are not UTF-8, in a key the store would have to keep.
        post = (
            b"POST /v1/sessions%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            b"\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s"
        )
        status, _ = raw_request(server.port, post % (b"", b"", 11, b'{"id": "s"}'))
        assert status == 201
        event = b'{"events": [{"type": "custom", "name": "n"}]}'
        key = b"Idempotency-Key: \xff\xfe\r\n"
        status, body = raw_request(server.port, post % (b"/s/events", key, len(event), event))
        assert status == 400 and body["error"]["code"] == "invalid_idempotency_key"
        status, body = raw_request(server.port, post % (b"/s/events", b"", len(event), event))
        assert status == 200 and body["seqs"] == [2]
    finally:
        server.stop()


async def test_healthz_shows_strangers_component_status_only(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert await response.json() == {
        "status": "ok",
        "database": {"ok": True},
        "writes": {"ok": True},
    }


async def test_a_session_id_ending_in_a_newline_is_400_and_creates_nothing(
    client: TestClient, store: StoreBase
) -> None:
    # A `$` anchor accepts one trailing newline; the session was created, and every answer
    # naming it (a Location header) then broke the connection with no response at all.
    for bad in ["nl\n", "nl\r\n", "\nnl"]:
        response = await client.post("/v1/sessions", json={"id": bad})
        assert await error_of(response, 400) == "invalid_session_id"
    assert (await client.post("/v1/sessions", json={"id": "s"})).status == 201
    response = await client.post("/v1/sessions/s/fork", json={"id": "nl\n", "at_seq": 1})
    assert await error_of(response, 400) == "invalid_session_id"
    assert {e.session_id for e in await store.read_all()} == {"s"}
