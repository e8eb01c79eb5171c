"""Export and import: a session round-trips exactly (seqs, event JSON, times) on every backend
and across backends; only positions, which are global to a database, differ."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from agentlog.domain.errors import SessionAlreadyExists
from agentlog.domain.events import (
    AgentErrorReported,
    CustomEventRecorded,
    HeartbeatRecorded,
    RunFinished,
    RunStarted,
    SessionCreated,
    TextCompleted,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.sessions.importing import (
    ImportRefused,
    export_lines,
    import_session,
    parse_export,
)
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store

from tests.conftest import POSTGRES_URL, StoreOpener
from tests.integration.projection_helpers import a_run

POSITION = re.compile(rb',"position":\d+')


@pytest.fixture
async def fresh_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """Another, empty database of the same kind as the test's `database_url`."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.db'}"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def fill(store: StoreBase, session_id: str = "chat-1") -> None:
    """A session with varied payloads, written over several appends (several times)."""
    await store.append(
        session_id, [SessionCreated(title="démo ✓", metadata={"n": 1.5, "nested": [None, True]})]
    )
    await store.append(session_id, a_run("r1", tools=3, words=4))
    await asyncio.sleep(0.002)
    await store.append(
        session_id,
        [
            CustomEventRecorded(name="note", data={"line": "a\nb\t\x1b[31m", "big": 2**62}),
            RunStarted(run_id="r2", prompt="🙂 again"),
            ToolCallStarted(run_id="r2", tool_call_id="c1", tool_name="mcp__x__y", input=[1, 2]),
            AgentErrorReported(run_id="r2", kind="rate_limit", message="slow down", status=429),
            HeartbeatRecorded(run_id="r2"),
        ],
    )
    await store.append(
        session_id,
        [
            ToolCallSucceeded(run_id="r2", tool_call_id="c1", output={"x": 0.1}),
            TextCompleted(run_id="r2", message_id="m", text="done"),
            RunFinished(run_id="r2", result="ok", total_cost_usd=0.0123, usage={"a": 1}),
        ],
    )


async def export(store: StoreBase, session_id: str) -> list[bytes]:
    return [line async for line in export_lines(store, session_id)]


def without_positions(lines: list[bytes]) -> list[bytes]:
    return [POSITION.sub(b"", line) for line in lines]


async def test_a_session_round_trips_exactly(
    open_test_store: StoreOpener, fresh_url: str, backend_redis_url: str | None
) -> None:
    async with open_test_store() as source:
        await source.append("other", [SessionCreated()])
        await fill(source)
        original = await export(source, "chat-1")
    async with open_store(fresh_url, redis_url=backend_redis_url) as target:
        # Positions are global: the target's log already holds something.
        await target.append("x", [SessionCreated()])
        await target.append("x", [HeartbeatRecorded()] * 5)
        result = await import_session(target, parse_export(original))
        again = await export(target, "chat-1")
        head = await target.session("chat-1")
    assert (result.events, result.first_position, result.last_position) == (
        len(original),
        7,
        6 + len(original),
    )
    assert without_positions(again) == without_positions(original)
    assert again != original
    first, last = (parse_export(original).events[i].time for i in (0, -1))
    assert head is not None
    assert (head.head, head.created_at, head.updated_at) == (len(original), first, last)


async def test_times_are_kept_to_the_microsecond(database_url: str, backend: str) -> None:
    lines = [
        b'{"seq":1,"position":40,"session_id":"t","time":"2024-02-29T23:59:59.999999Z",'
        b'"type":"session_created","run_id":null,"title":null,"metadata":{}}',
        b'{"seq":2,"position":41,"session_id":"t","time":"2024-03-01T00:00:00.000001Z",'
        b'"type":"custom","run_id":null,"name":"n","data":{"future_field_kept":true}}',
        b'{"seq":3,"position":42,"session_id":"t","time":"2031-12-31T12:00:00Z",'
        b'"type":"custom","run_id":"r","name":"n","data":null}',
    ]
    async with open_store(database_url) as store:
        await import_session(store, parse_export(lines))
        again = await export(store, "t")
    assert without_positions([line.rstrip(b"\n") for line in again]) == without_positions(lines)


async def test_fields_this_version_does_not_know_survive_import_and_export(
    database_url: str, backend: str
) -> None:
    # A log written by a newer agentlog: an event field added later, at the event's top level.
    lines = [
        b'{"seq":1,"position":1,"session_id":"newer","time":"2026-01-01T00:00:00Z",'
        b'"type":"session_created","run_id":null,"title":null,"metadata":{}}',
        b'{"seq":2,"position":2,"session_id":"newer","time":"2026-01-01T00:00:01Z",'
        b'"type":"custom","run_id":null,"name":"n","data":1,"added_later":{"kept":[1,2]}}',
    ]
    async with open_store(database_url) as store:
        await import_session(store, parse_export(lines))
        again = await export(store, "newer")
    assert without_positions([line.rstrip(b"\n") for line in again]) == without_positions(lines)


async def test_a_session_moves_between_sqlite_and_postgres(
    sqlite_url: str, postgres_url: str
) -> None:
    async with open_store(sqlite_url) as lite:
        await fill(lite)
        from_sqlite = await export(lite, "chat-1")
    async with open_store(postgres_url) as pg:
        await import_session(pg, parse_export(from_sqlite, rename_to="moved"))
        from_postgres = await export(pg, "moved")
    assert without_positions(from_postgres) == [
        line.replace(b'"session_id":"chat-1"', b'"session_id":"moved"')
        for line in without_positions(from_sqlite)
    ]
    async with open_store(sqlite_url) as lite:
        await import_session(lite, parse_export(from_postgres))
        assert without_positions(await export(lite, "moved")) == without_positions(from_postgres)


async def test_an_existing_session_is_refused_and_as_imports_a_copy(
    open_test_store: StoreOpener,
) -> None:
    async with open_test_store() as store:
        await fill(store)
        original = await export(store, "chat-1")
        last = await store.last_position()
        with pytest.raises(SessionAlreadyExists):
            await import_session(store, parse_export(original))
        assert await store.last_position() == last  # nothing written
        result = await import_session(store, parse_export(original, rename_to="chat-2"))
        assert result.first_position == last + 1
        copy = await export(store, "chat-2")
    assert len(copy) == len(original)


async def test_an_imported_session_wakes_followers_and_takes_appends(
    open_test_store: StoreOpener, backend: str
) -> None:
    async with open_test_store() as store:
        await fill(store)
        original = await export(store, "chat-1")
    async with open_test_store() as server, open_test_store() as operator:
        await server.append("busy", [SessionCreated()])  # the server remembers its position
        async with server.subscribe_all() as wakeup:
            await wakeup.wait(0)
            await import_session(operator, parse_export(original, rename_to="restored"))
            # SQLite has no wake-ups between store instances (readers re-check); the others
            # wake every process, as an append does.
            if backend != "sqlite":
                assert await wakeup.wait(5)
        # Appends from either process land after the imported events, in order.
        assert await server.append("busy", [HeartbeatRecorded()]) == [2]
        assert await server.append("restored", [HeartbeatRecorded()]) == [len(original) + 1]
        assert await operator.append("restored", [HeartbeatRecorded()]) == [len(original) + 2]
        feed = await server.read_all(after=0, limit=10_000)
    positions = [r.position for r in feed]
    assert positions == list(range(1, len(positions) + 1))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "the file holds no events"),
        ([b"not json"], "line 1: not an exported event"),
        (
            [b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"nope"}'],
            "line 1: not an event agentlog knows",
        ),
        (
            [b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00","type":"session_created"}'],
            "line 1: time 2024-01-01T00:00:00 has no timezone",
        ),
        (
            [b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"heartbeat"}'],
            "line 1: seq 1 is heartbeat; a session begins with session_created",
        ),
        (
            [
                b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"session_created"}',
                b"",
                b'{"seq":3,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"heartbeat"}',
            ],
            "line 3: seq 3 where seq 2 was expected",
        ),
        (
            [
                b'{"seq":1,"session_id":"a","time":"2024-01-01T00:00:00Z","type":"session_created"}',
                b'{"seq":2,"session_id":"b","time":"2024-01-01T00:00:00Z","type":"heartbeat"}',
            ],
            "line 2: session 'b', but the file began with session 'a'",
        ),
    ],
)
def test_a_file_that_is_not_an_export_is_refused_by_line(lines: list[bytes], message: str) -> None:
    with pytest.raises(ImportRefused) as refused:
        parse_export(lines)
    assert str(refused.value).startswith(message)


AGENT = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


async def with_transcript(store: StoreBase, session_id: str = "chat-1") -> list[object]:
    """The session's runs left a transcript (main and a subagent's), as the runner's store
    writes it: bound to the session, under the runner's project key."""
    bound = LogSessionStore(store).for_session(session_id)
    main = [
        {"type": "user", "uuid": "u1", "message": {"content": "hello ✓"}},
        {"type": "last-prompt", "lastPrompt": "hello"},  # no uuid: kept in order too
        {"type": "assistant", "uuid": "a1", "message": {"content": [{"type": "text"}]}},
    ]
    sub = [{"type": "user", "uuid": "s1", "isSidechain": True}]
    await bound.append({"project_key": RUNNER_PROJECT_KEY, "session_id": AGENT}, main)  # type: ignore[list-item]
    await bound.append(
        {"project_key": RUNNER_PROJECT_KEY, "session_id": AGENT, "subpath": "subagents/agent-1"},
        sub,  # type: ignore[arg-type]
    )
    return [main, sub]


async def test_an_export_carries_the_sessions_transcripts_and_an_import_restores_them(
    open_test_store: StoreOpener, fresh_url: str, backend_redis_url: str | None
) -> None:
    async with open_test_store() as source:
        await fill(source)
        main, sub = await with_transcript(source)
        original = await export(source, "chat-1")
        events = await source.head("chat-1")
    assert [line.startswith(b'{"transcript":') for line in original] == [False] * events + [
        True
    ] * 4
    parsed = parse_export(original)
    assert len(parsed.events) == events
    async with open_store(fresh_url, redis_url=backend_redis_url) as target:
        result = await import_session(target, parsed)
        restored = await LogSessionStore(target).transcripts_of("chat-1")
        resumed = (
            await LogSessionStore(target)
            .for_session("chat-1")
            .load({"project_key": "-any-cwd", "session_id": AGENT})
        )
        again = await export(target, "chat-1")
    assert result.transcript_entries == 4
    assert {(t.key.project_key, t.key.subpath): t.entries for t in restored} == {
        (RUNNER_PROJECT_KEY, ""): main,
        (RUNNER_PROJECT_KEY, "subagents/agent-1"): sub,
    }
    assert resumed == main
    assert without_positions(again) == without_positions(original)


async def test_a_copy_imported_beside_its_original_shares_no_transcript(
    open_test_store: StoreOpener,
) -> None:
    async with open_test_store() as store:
        await fill(store)
        await with_transcript(store)
        original = await export(store, "chat-1")
        result = await import_session(store, parse_export(original, rename_to="chat-2"))
        sessions = LogSessionStore(store)
        assert result.transcript_entries == 0  # the key is chat-1's: left out
        assert await sessions.transcripts_of("chat-2") == []
        assert len(await sessions.transcripts_of("chat-1")) == 2
        assert await sessions.owner(AGENT) == "chat-1"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"transcript":{"project_key":"p"},"entry":{}}', "not a transcript entry"),
        (
            b'{"transcript":{"project_key":"","agent_session":"a"},"entry":{}}',
            "a transcript entry needs",
        ),
        (b'{"transcript":{"project_key":"p","agent_session":"a"},"entry":[1]}', "not a tran"),
    ],
)
def test_a_malformed_transcript_line_is_refused_naming_it(line: bytes, why: str) -> None:
    first = (
        b'{"seq":1,"position":1,"session_id":"t","time":"2026-01-01T00:00:00Z",'
        b'"type":"session_created","run_id":null,"title":null,"metadata":{}}'
    )
    with pytest.raises(ImportRefused, match=f"line 2: {why}"):
        parse_export([first, line])
    with pytest.raises(ImportRefused, match="line 1: a transcript entry before"):
        parse_export([line, first])
