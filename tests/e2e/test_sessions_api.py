"""The HTTP API through a real aiohttp client against the real app (SQLite unless noted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import CustomEventRecorded, ToolCallStarted
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings
from tests.support.sse_client import SseParser, iter_events

ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: StoreBase) -> TestClient:
    settings = Settings(sse_keepalive_seconds=0.2, max_body_bytes=64 * 1024)
    return await aiohttp_client(create_app(settings, store=store))


async def new_session(client: TestClient, **body: Any) -> str:
    response = await client.post("/v1/sessions", json=body)
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def test_creates_and_shows_a_session(client: TestClient) -> None:
    response = await client.post("/v1/sessions", json={"title": "demo"})
    assert response.status == 201
    created = await response.json()
    assert response.headers["Location"] == f"/v1/sessions/{created['id']}"
    shown = await (await client.get(f"/v1/sessions/{created['id']}")).json()
    assert shown["id"] == created["id"]
    assert shown["status"] == "idle"
    assert shown["head"] == 1
    assert shown["active_run"] is None
    assert shown["title"] == "demo"


async def test_unknown_session_is_a_404_with_a_json_error(client: TestClient) -> None:
    for path in ["/v1/sessions/nope", "/v1/sessions/nope/events"]:
        response = await client.get(path)
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "unknown_session"
    response = await client.post(
        "/v1/sessions/nope/events", json={"events": [{"type": "custom", "name": "x"}]}
    )
    assert response.status == 404


async def test_a_chosen_session_id_is_kept_and_cannot_be_taken_twice(client: TestClient) -> None:
    assert await new_session(client, id="chat-1") == "chat-1"
    response = await client.post("/v1/sessions", json={"id": "chat-1"})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "session_exists"
    response = await client.post("/v1/sessions", json={"id": "bad id!"})
    assert response.status == 400


async def test_appends_custom_events_and_returns_seqs_and_head(client: TestClient) -> None:
    sid = await new_session(client)
    response = await client.post(
        f"/v1/sessions/{sid}/events",
        json={
            "events": [
                {"type": "custom", "name": "note", "data": {"a": 1}},
                {"type": "custom", "name": "n2"},
            ]
        },
    )
    assert response.status == 200
    assert await response.json() == {"seqs": [2, 3], "head": 3}


async def test_expected_offset_mismatch_is_409_with_the_head_and_writes_nothing(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)
    body = {"events": [{"type": "custom", "name": "x"}], "expected_offset": 5}
    response = await client.post(f"/v1/sessions/{sid}/events", json=body)
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "expected_seq_mismatch" and error["head"] == 1
    assert await store.head(sid) == 1
    body["expected_offset"] = 1
    assert (await client.post(f"/v1/sessions/{sid}/events", json=body)).status == 200


async def test_an_idempotency_key_returns_the_first_result_and_writes_nothing(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)
    body = {"events": [{"type": "custom", "name": "x"}]}
    headers = {"Idempotency-Key": "req-1"}
    first = await (
        await client.post(f"/v1/sessions/{sid}/events", json=body, headers=headers)
    ).json()
    second = await (
        await client.post(f"/v1/sessions/{sid}/events", json=body, headers=headers)
    ).json()
    assert first == second == {"seqs": [2], "head": 2}
    assert await store.head(sid) == 2


async def test_tool_output_only_for_a_call_still_waiting(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)
    await store.append(
        sid, [ToolCallStarted(run_id="r1", tool_call_id="t1", tool_name="job", input={})]
    )
    output = {"events": [{"type": "tool_output", "tool_call_id": "t1", "output": {"ok": True}}]}
    response = await client.post(f"/v1/sessions/{sid}/events", json=output)
    assert response.status == 200, await response.text()
    events = await store.read(sid, after=2)
    assert events[0].type == "tool_call_succeeded" and events[0].run_id == "r1"
    assert events[0].event.source == "external"  # type: ignore[union-attr]
    again = await client.post(f"/v1/sessions/{sid}/events", json=output)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "tool_call_not_waiting"
    unknown = {"events": [{"type": "tool_output", "tool_call_id": "zz", "output": 1}]}
    assert (await client.post(f"/v1/sessions/{sid}/events", json=unknown)).status == 409
    assert await store.head(sid) == 3


async def test_concurrent_tool_outputs_for_one_call_land_once(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)
    await store.append(sid, [ToolCallStarted(run_id="r", tool_call_id="t", tool_name="job")])
    body = {"events": [{"type": "tool_output", "tool_call_id": "t", "output": 1}]}
    statuses = await asyncio.gather(
        *(client.post(f"/v1/sessions/{sid}/events", json=body) for _ in range(8))
    )
    assert sorted(r.status for r in statuses) == [200] + [409] * 7
    assert [e.type for e in await store.read(sid)].count("tool_call_succeeded") == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "invalid_body"),
        (b"", 400, "invalid_body"),
        (b'{"events": []}', 400, "invalid_body"),
        (b'{"events": [{"type": "custom"}]}', 400, "invalid_body"),
        (b'{"events": [{"type": "custom", "name": 3}]}', 400, "invalid_body"),
        (b'{"events": [{"type": "run_started", "prompt": "x"}]}', 400, "invalid_body"),
        (b'{"events": [{"type": "custom", "name": "x"}], "extra": 1}', 400, "invalid_body"),
        (b'{"events": [{"type": "custom", "name": ""}]}', 400, "invalid_event"),
        (
            b'{"events": [{"type": "custom", "name": "x", "data": "' + b"y" * 70_000 + b'"}]}',
            413,
            "body_too_large",
        ),
    ],
)
async def test_bad_bodies_get_a_precise_error_and_change_nothing(
    client: TestClient, store: StoreBase, body: bytes, status: int, code: str
) -> None:
    sid = await new_session(client)
    response = await client.post(
        f"/v1/sessions/{sid}/events", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code and error["message"]
    assert await store.head(sid) == 1


async def test_reads_a_json_page_of_flat_events_from_an_offset(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)
    await store.append(sid, [CustomEventRecorded(name=f"e{i}", data=i) for i in range(5)])
    page = await (await client.get(f"/v1/sessions/{sid}/events?offset=2&limit=2")).json()
    assert page["next_offset"] == 4 and page["head"] == 6
    first = page["events"][0]
    assert {k: first[k] for k in ("seq", "type", "session_id", "run_id", "name", "data")} == {
        "seq": 3,
        "type": "custom",
        "session_id": sid,
        "run_id": None,
        "name": "e1",
        "data": 1,
    }
    assert first["time"].endswith("Z") or "+" in first["time"]
    rest = await (await client.get(f"/v1/sessions/{sid}/events?offset=6")).json()
    assert rest == {"events": [], "next_offset": 6, "head": 6}


@pytest.mark.parametrize(
    ("query", "headers", "parameter"),
    [
        ("?offset=abc", {}, "offset"),
        ("?offset=-1", {}, "offset"),
        ("?offset=99", {}, "offset"),
        ("", {"Last-Event-ID": "x"}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "42"}, "Last-Event-ID"),
    ],
)
async def test_a_bad_offset_is_a_400_naming_the_parameter(
    client: TestClient, query: str, headers: dict[str, str], parameter: str
) -> None:
    sid = await new_session(client)
    for accept in ["application/json", "text/event-stream"]:
        response = await client.get(
            f"/v1/sessions/{sid}/events{query}", headers={**headers, "Accept": accept}
        )
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["code"] == "invalid_offset" and error["parameter"] == parameter


async def read_sse(
    client: TestClient, path: str, headers: dict[str, str] | None = None
) -> tuple[list[Any], SseParser, Any]:
    parser = SseParser()
    response = await client.get(path, headers={"Accept": "text/event-stream", **(headers or {})})
    events = [e async for e in iter_events(response, parser)]
    return events, parser, response


async def test_sse_replays_from_an_offset_and_ends_when_live_is_false(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)
    await store.append(sid, [CustomEventRecorded(name="x", data=i) for i in range(4)])
    events, parser, response = await read_sse(
        client, f"/v1/sessions/{sid}/events?offset=2&live=false"
    )
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert parser.retry_ms == 1000
    assert [e.id for e in events] == ["3", "4", "5"]
    assert [e.event for e in events] == ["custom"] * 3
    assert [e.json()["seq"] for e in events] == [3, 4, 5]


async def test_a_replay_of_many_pages_sends_each_event_once_as_the_json_page_has_it(
    client: TestClient, store: StoreBase
) -> None:
    # Pages of the log are read ahead while the previous one is written: 2,500 events are
    # three pages, read from offsets inside and at the edge of a page.
    sid = await new_session(client)
    for start in range(0, 2500, 700):  # several group commits: several times
        await store.append(
            sid, [CustomEventRecorded(name="x", data=i) for i in range(start, start + 700)]
        )
    head = 2801
    for offset in (0, 1, 999, 1000, 1800, 2800, head):
        events, _, _ = await read_sse(
            client, f"/v1/sessions/{sid}/events?offset={offset}&live=false"
        )
        assert [int(e.id) for e in events] == list(range(offset + 1, head + 1))
        page = await client.get(f"/v1/sessions/{sid}/events?offset={offset}&limit=5")
        expected = (await page.json())["events"]
        assert [e.json() for e in events[:5]] == expected
        assert all(e.event == e.json()["type"] for e in events)


async def test_a_replay_sends_the_frames_of_the_events_read_byte_for_byte(
    client: TestClient, store: StoreBase
) -> None:
    from agentlog.domain.events import ModelCallMetered
    from agentlog.transport.streaming.session_feed import sse_frame

    # Rows sent as stored and one encoded again (stored `1`, sent `1.0`), over two pages.
    sid = await new_session(client)
    await store.append(sid, [CustomEventRecorded(name="x", data='é\n"')])
    await store.append(sid, [ModelCallMetered(endpoint="messages", status=200, cost_usd=1)])
    await store.append(sid, [CustomEventRecorded(name="x", data=i) for i in range(1200)])
    response = await client.get(
        f"/v1/sessions/{sid}/events?live=false", headers={"Accept": "text/event-stream"}
    )
    body = await response.read()
    read = await store.read_session(sid)
    assert body == b"retry: 1000\n\n" + b"".join(sse_frame(e) for e in read)


async def test_the_offset_query_wins_over_last_event_id(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)
    await store.append(sid, [CustomEventRecorded(name="x") for _ in range(3)])
    events, _, _ = await read_sse(
        client, f"/v1/sessions/{sid}/events?live=false&offset=3", {"Last-Event-ID": "1"}
    )
    assert [e.id for e in events] == ["4"]
    events, _, _ = await read_sse(
        client, f"/v1/sessions/{sid}/events?live=false", {"Last-Event-ID": "2"}
    )
    assert [e.id for e in events] == ["3", "4"]


async def test_sse_stays_live_with_no_gap_at_the_seam_and_sends_keepalives(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)
    await store.append(sid, [CustomEventRecorded(name="before") for _ in range(3)])
    parser = SseParser()
    response = await client.get(
        f"/v1/sessions/{sid}/events", headers={"Accept": "text/event-stream"}
    )
    seen: list[int] = []

    async def writer() -> None:
        for i in range(50):
            await store.append(sid, [CustomEventRecorded(name="live", data=i)])
            if i % 10 == 0:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # longer than the keep-alive interval

    task = asyncio.create_task(writer())
    async for event in iter_events(response, parser):
        seen.append(int(event.id))  # type: ignore[arg-type]
        if len(seen) == 54:
            break
    await task
    assert seen == list(range(1, 55))
    # the stream stays open and keeps the line busy
    async with asyncio.timeout(5):
        while "keep-alive" not in parser.comments:
            chunk = await response.content.readany()
            parser.feed(chunk.decode())
    response.close()


async def test_auth_tokens_guard_v1_and_admin_routes(
    aiohttp_client: ClientFactory, store: StoreBase
) -> None:
    app = create_app(Settings(api_token="user-t", admin_token="admin-t"), store=store)
    client = await aiohttp_client(app)
    response = await client.post("/v1/sessions", json={})
    assert response.status == 401 and (await response.json())["error"]["code"] == "unauthorized"
    wrong, user = {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer user-t"}
    response = await client.post("/v1/sessions", json={}, headers=wrong)
    assert response.status == 401
    response = await client.post("/v1/sessions", json={}, headers=user)
    assert response.status == 201
    response = await client.post("/v1/admin/anything", json={}, headers=user)
    assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden"
    assert (await client.get("/healthz")).status == 200


async def test_concurrent_writers_without_expected_offset_never_collide(
    client: TestClient, store: StoreBase
) -> None:
    sid = await new_session(client)

    async def post(i: int) -> list[int]:
        body = {"events": [{"type": "custom", "name": "w", "data": i}]}
        response = await client.post(f"/v1/sessions/{sid}/events", json=body)
        assert response.status == 200, await response.text()
        return list((await response.json())["seqs"])

    results = await asyncio.gather(*(post(i) for i in range(60)))
    assert sorted(seq for r in results for seq in r) == list(range(2, 62))
    assert sorted(e.event.data for e in await store.read(sid, after=1)) == list(range(60))  # type: ignore[union-attr]
