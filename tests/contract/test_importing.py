"""Importing and exporting a session, on every backend (the Backend's `import_session` under
agentlog.infra.sessions.importing): a session round-trips exactly (seqs, event JSON, times,
fields this version does not know, its transcripts); only positions, which are global to a
database, differ. An existing session is refused with nothing written; an import wakes other
processes' readers and takes appends after it, as an append would."""

from __future__ import annotations

import sqlite3

import pytest

from agentlog.domain.errors import SessionAlreadyExists
from agentlog.domain.events import HeartbeatRecorded, SessionCreated
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.postgres.event_store import PostgresEventStore
from agentlog.infra.sessions.importing import import_session, parse_export
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.infra.store import statistics
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from tests.conftest import StoreOpener
from tests.contract.conftest import NewDatabaseUrl
from tests.support.exports import AGENT, export, fill, with_transcript, without_positions


async def test_a_session_round_trips_exactly(
    open_test_store: StoreOpener,
    new_database_url: NewDatabaseUrl,
    backend_redis_url: str | None,
) -> None:
    fresh_url = await new_database_url()
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


async def test_times_are_kept_to_the_microsecond(database_url: str) -> None:
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
    database_url: str,
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
    open_test_store: StoreOpener, backend_redis_url: str | None
) -> None:
    async with open_test_store() as store:
        await fill(store)
        original = await export(store, "chat-1")
    async with open_test_store() as server, open_test_store() as operator:
        await server.append("busy", [SessionCreated()])  # the server remembers its position
        async with server.subscribe_all() as wakeup:
            await wakeup.wait(0)
            await import_session(operator, parse_export(original, rename_to="restored"))
            # A database one process serves has no wake-ups between store instances (readers
            # re-check); the others wake every process, as an append does.
            if not server.backend.serves_one_process or backend_redis_url:
                assert await wakeup.wait(5)
        # Appends from either process land after the imported events, in order.
        assert await server.append("busy", [HeartbeatRecorded()]) == [2]
        assert await server.append("restored", [HeartbeatRecorded()]) == [len(original) + 1]
        assert await operator.append("restored", [HeartbeatRecorded()]) == [len(original) + 2]
        feed = await server.read_all(after=0, limit=10_000)
    positions = [r.position for r in feed]
    assert positions == list(range(1, len(positions) + 1))


async def test_an_export_carries_the_sessions_transcripts_and_an_import_restores_them(
    open_test_store: StoreOpener,
    new_database_url: NewDatabaseUrl,
    backend_redis_url: str | None,
) -> None:
    fresh_url = await new_database_url()
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


async def rows_the_planner_counts(store: StoreBase) -> int | None:
    """How many events the planner's statistics say the log holds, as of their last refresh
    (PostgreSQL's pg_class.reltuples; the row count of SQLite's sqlite_stat1), None if none."""
    if isinstance(store, PostgresEventStore):
        rows = await store.pool.fetchval(
            "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = 'agentlog_events'",
            store.schema,
        )
        return None if rows is None or rows < 0 else int(rows)
    assert isinstance(store, SQLiteEventStore)

    def read(conn: sqlite3.Connection) -> int | None:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return None
        row = conn.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = 'agentlog_events'").fetchone()
        return None if row is None else int(row[0].split()[0])

    return await store.threads.on_reader(read)


async def test_a_bulk_import_refreshes_the_planners_statistics_and_a_small_one_does_not(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statistics, "BULK_EVENTS", 40)
    await store.append("small-source", [SessionCreated(), *[HeartbeatRecorded()] * 10])
    before = await rows_the_planner_counts(store)
    await import_session(store, parse_export(await export(store, "small-source"), rename_to="s"))
    assert await rows_the_planner_counts(store) == before  # 22 events: no refresh

    await store.append("big-source", [SessionCreated(), *[HeartbeatRecorded()] * 60])
    await import_session(store, parse_export(await export(store, "big-source"), rename_to="b"))
    assert await rows_the_planner_counts(store) == 22 + 2 * 61
