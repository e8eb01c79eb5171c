"""On PostgreSQL a plain append is one statement, whoever else appends: two stores on one
database (what two processes of `serve --workers 2` are) taking turns on the same sessions."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from agentlog.domain.errors import (
    RunFenced,
    SessionAlreadyExists,
    SessionDeleted,
    UnknownSession,
)
from agentlog.domain.events import (
    CustomEventRecorded,
    Event,
    RunStarted,
    SessionCreated,
    TextDelta,
)
from agentlog.domain.ports.event_store import RunFence
from agentlog.domain.rules.appending import encode_batch
from agentlog.infra.postgres.array_literals import bool_array, int_array, text_array
from agentlog.infra.postgres.event_store import PostgresEventStore, plain_call_arguments
from agentlog.infra.store.append_plan import PlainPlan, plan_plain
from agentlog.infra.store.group_commit import PendingAppend
from agentlog.infra.store.opening import open_store, parse_database_url


def plain_batch(sessions: list[str], event: Event) -> PlainPlan:
    """One append of `event` to each session, planned as the store plans a plain batch."""
    loop = asyncio.get_running_loop()
    batch = [
        PendingAppend(s, [event], encode_batch([event], 1 << 20), None, loop.create_future())
        for s in sessions
    ]
    plain = plan_plain(batch)
    assert plain is not None
    return plain


async def statements_of(store: PostgresEventStore, sent: list[str]) -> None:
    """Record every statement the store's writer connection sends from now on."""
    conn = await store._writer()
    conn.add_query_logger(lambda record: sent.append(record.query))


async def test_appends_taking_turns_from_two_stores_are_one_statement_each(
    postgres_url: str,
) -> None:
    async with open_store(postgres_url) as first, open_store(postgres_url) as second:
        assert isinstance(first, PostgresEventStore) and isinstance(second, PostgresEventStore)
        await first.append("shared", [SessionCreated()])
        await second.append("other", [SessionCreated()])
        sent: list[str] = []
        await statements_of(first, sent)
        await statements_of(second, sent)
        seqs = []
        for n in range(20):
            store = first if n % 2 else second
            seqs += await store.append("shared", [CustomEventRecorded(name="turn", data=n)])
            await store.append("other", [CustomEventRecorded(name="turn", data=n)])
        assert seqs == list(range(2, 22))
        assert len(sent) == 40, sent
        assert first.plain_path_misses == second.plain_path_misses == 0
        events = await first.read_session("shared")
        assert [e.event.data for e in events[1:]] == list(range(20))  # type: ignore[attr-defined]


async def test_concurrent_stores_keep_seqs_and_positions_dense(postgres_url: str) -> None:
    sessions = [f"s{n}" for n in range(8)]
    async with open_store(postgres_url) as first, open_store(postgres_url) as second:
        await asyncio.gather(*(first.append(s, [SessionCreated()]) for s in sessions))

        async def writer(store: object, lane: int) -> None:
            assert isinstance(store, PostgresEventStore)
            for n in range(30):
                session = sessions[(lane + n) % len(sessions)]
                await store.append(session, [CustomEventRecorded(name="w", data=[lane, n])] * 2)

        await asyncio.gather(
            *(writer(store, lane) for lane in range(8) for store in (first, second))
        )
        log = await first.read_all(limit=10_000)
        assert [e.position for e in log] == list(range(1, len(log) + 1))
        assert len(log) == len(sessions) + 2 * 8 * 30 * 2
        for session in sessions:
            assert [e.seq for e in await first.read_session(session)] == list(
                range(1, 1 + 1 + 2 * 30 * 2)
            )


async def test_a_plain_append_to_a_session_unknown_deleted_or_taken_is_refused(
    postgres_url: str,
) -> None:
    """What the one statement will not write goes the locked way, which refuses it."""
    async with open_store(postgres_url) as first, open_store(postgres_url) as second:
        assert isinstance(first, PostgresEventStore)
        await second.append("taken", [SessionCreated()])
        with pytest.raises(UnknownSession):
            await first.append("nobody", [CustomEventRecorded(name="x")])
        with pytest.raises(SessionAlreadyExists):
            await first.append("taken", [SessionCreated()])
        await second.backend.delete_session("taken", "test")
        with pytest.raises(SessionDeleted):
            await first.append("taken", [CustomEventRecorded(name="late")])
        # A session this store appended to (its head remembered), deleted through this same
        # store's backend: the deletion moved the log, so the remembered head is not trusted.
        await first.append("mine", [SessionCreated()])
        await first.append("mine", [CustomEventRecorded(name="x")])
        await first.backend.delete_session("mine", "test")
        with pytest.raises(SessionDeleted):
            await first.append("mine", [CustomEventRecorded(name="late")])
        assert first.plain_path_misses == 4


async def test_a_run_streaming_fenced_appends_writes_one_statement_each_until_fenced_out(
    postgres_url: str,
) -> None:
    """A run's streamed events are fenced: each is one statement, checked against the run
    index under the lock; once another store starts a newer run, the old fence is refused."""
    async with open_store(postgres_url) as first, open_store(postgres_url) as second:
        assert isinstance(first, PostgresEventStore)
        await first.append("chat", [SessionCreated()])
        [started] = await first.append("chat", [RunStarted(run_id="r1", prompt="go")])
        fence = RunFence(run_id="r1", token=started)
        sent: list[str] = []
        await statements_of(first, sent)
        for n in range(5):
            await first.append(
                "chat",
                [TextDelta(run_id="r1", message_id="m", block_index=0, delta=f"{n}")],
                fence=fence,
            )
        assert len(sent) == 5, sent
        await second.append("chat", [RunStarted(run_id="r2", prompt="again")])
        with pytest.raises(RunFenced):
            await first.append(
                "chat",
                [TextDelta(run_id="r1", message_id="m", block_index=0, delta="late")],
                fence=fence,
            )
        assert [e.seq for e in await first.read_session("chat")] == list(range(1, 9))


async def test_the_heads_read_scans_no_table_whatever_the_statistics(postgres_url: str) -> None:
    """The append function's plans are kept per connection, and migration analyzes the tables
    empty. Planned while the log was empty (here by appends to sessions not created yet), the
    heads read scanned and sorted the whole log once per session of a batch when it had grown:
    on every batch of two workers (each misses the other's hint), inside the log head's lock."""
    async with open_store(postgres_url) as store:
        assert isinstance(store, PostgresEventStore)
        sessions = [f"s{n}" for n in range(32)]
        conn = await store._writer()
        # Heads not known: the function reads them.
        batch = plain_call_arguments(
            plain_batch(sessions, CustomEventRecorded(name="probe", data=0)),
            "",
            None,
            [None] * len(sessions),
        )
        for _ in range(8):  # no such sessions yet: the heads are read, nothing is written
            assert await conn.fetchval(store._sql_append_plain, *batch) is False
        for session_id in sessions:
            await store.append(session_id, [SessionCreated()])
        await store.append("s0", [CustomEventRecorded(name="bulk", data=n) for n in range(3000)])
        scans = (
            "SELECT seq_scan, seq_tup_read FROM pg_stat_xact_user_tables WHERE relid = $1::regclass"
        )
        events_table = f'"{store.schema}".agentlog_events'
        transaction = conn.transaction()
        await transaction.start()
        try:
            before = await conn.fetchrow(scans, events_table)
            applied = await conn.fetchval(store._sql_append_plain, *batch)
            after = await conn.fetchrow(scans, events_table)
        finally:
            await transaction.rollback()
        assert applied
        assert (after[0] - before[0], after[1] - before[1]) == (0, 0)


async def test_the_locked_paths_heads_read_scans_no_table_whatever_the_statistics(
    postgres_url: str,
) -> None:
    """The locked path's statements are prepared on the writer's connection and may keep one
    plan made while the log was empty, as the append function's may."""
    async with open_store(postgres_url) as store:
        assert isinstance(store, PostgresEventStore)
        sessions = [f"s{n}" for n in range(32)]
        conn = await store._writer()
        for _ in range(8):  # planned while the log is empty
            await conn.fetch(store._sql_heads, sessions)
        for session_id in sessions:
            await store.append(session_id, [SessionCreated()])
        await store.append("s0", [CustomEventRecorded(name="bulk", data=n) for n in range(3000)])
        scans = (
            "SELECT seq_scan, seq_tup_read FROM pg_stat_xact_user_tables WHERE relid = $1::regclass"
        )
        events_table = f'"{store.schema}".agentlog_events'
        transaction = conn.transaction()
        await transaction.start()
        try:
            before = await conn.fetchrow(scans, events_table)
            heads = await conn.fetch(store._sql_heads, sessions)
            after = await conn.fetchrow(scans, events_table)
        finally:
            await transaction.rollback()
        assert len(heads) == len(sessions)
        assert (after[0] - before[0], after[1] - before[1]) == (0, 0)


ODD_IDS = [
    "line\nbreak\ttab\x01",
    'say "hi"',
    "back\\slash",
    "a,b",
    "{braces}",
    "NULL",
    " padded ",
    "ünï ✓",
    '\\"',
    '"',
]


async def test_array_literals_read_back_as_sent(postgres_url: str) -> None:
    """The append function's arrays travel as text literals that the server parses: every
    id it may be sent comes back unchanged, and None as NULL."""
    conn = await asyncpg.connect(parse_database_url(postgres_url).dsn)
    try:
        texts = [*ODD_IDS, None, ""]
        assert await conn.fetchval("SELECT $1::text::text[]", text_array(texts)) == texts
        assert await conn.fetchval("SELECT $1::text::text[]", text_array(ODD_IDS)) == ODD_IDS
        assert await conn.fetchval("SELECT $1::text::text[]", text_array([])) == []
        ints = [1, None, 2**40, 0]
        assert await conn.fetchval("SELECT $1::text::bigint[]", int_array(ints)) == ints
        flags = [True, False]
        assert await conn.fetchval("SELECT $1::text::boolean[]", bool_array(flags)) == flags
    finally:
        await conn.close()


async def test_plain_appends_to_sessions_and_runs_with_any_id_land_under_that_id(
    postgres_url: str,
) -> None:
    async with open_store(postgres_url) as store:
        assert isinstance(store, PostgresEventStore)
        await asyncio.gather(*(store.append(s, [SessionCreated()]) for s in ODD_IDS))
        fences = {}
        for s in ODD_IDS:
            [started] = await store.append(s, [RunStarted(run_id=s, prompt="go")])
            fences[s] = RunFence(run_id=s, token=started)
        sent: list[str] = []
        await statements_of(store, sent)
        await asyncio.gather(
            *(
                store.append(
                    s,
                    [TextDelta(run_id=s, message_id="m", block_index=0, delta=s)] * 2,
                    fence=fences[s],
                )
                for s in ODD_IDS
            )
        )
        await asyncio.gather(
            *(store.append(s, [CustomEventRecorded(name="x", data=s)]) for s in ODD_IDS)
        )
        assert store.plain_path_misses == 0
        assert all(store._sql_append_plain == q for q in sent), sent
        for s in ODD_IDS:
            events = await store.read_session(s)
            assert [e.seq for e in events] == [1, 2, 3, 4, 5]
            assert [e.event.run_id for e in events[2:4]] == [s, s]
            assert [e.event.delta for e in events[2:4]] == [s, s]  # type: ignore[attr-defined]
            assert events[4].event.data == s  # type: ignore[attr-defined]
        log = await store.read_all(limit=1000)
        assert [e.position for e in log] == list(range(1, len(log) + 1))
