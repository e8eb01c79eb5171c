"""Opening a store migrates a database written by an older agentlog: sessions used to keep
`head` and `updated_at` columns, rewritten on every append."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg

from agentlog.domain.events import CustomEventRecorded, RunFinished, RunStarted, SessionCreated
from agentlog.domain.ports.event_store import RunRecord
from agentlog.infra.agent.sdk.session_store import LogSessionStore
from agentlog.infra.postgres.event_store import APPEND_FUNCTION, APPEND_FUNCTION_ARGUMENTS
from agentlog.infra.store.opening import open_store, parse_database_url


async def test_a_postgres_sessions_table_of_the_old_layout_is_migrated(postgres_url: str) -> None:
    url = parse_database_url(postgres_url)
    conn = await asyncpg.connect(url.dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{url.schema}"')
        await conn.execute(
            f'CREATE TABLE "{url.schema}".agentlog_sessions (session_id text PRIMARY KEY, '
            "head bigint NOT NULL, created_at timestamptz NOT NULL, "
            "updated_at timestamptz NOT NULL)"
        )
        async with open_store(postgres_url) as store:
            assert await store.append("s", [SessionCreated(), CustomEventRecorded(name="x")]) == [
                1,
                2,
            ]
            assert await store.head("s") == 2
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'agentlog_sessions'",
            url.schema,
        )
        assert {c[0] for c in columns} == {"session_id", "created_at"}
        # A second open finds the schema current and changes nothing.
        async with open_store(postgres_url) as store:
            assert await store.head("s") == 2
    finally:
        await conn.close()


async def test_a_sqlite_sessions_table_of_the_old_layout_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE agentlog_sessions (session_id TEXT PRIMARY KEY, head INTEGER NOT NULL, "
            "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)"
        )
    async with open_store(f"sqlite:///{path}") as store:
        assert await store.append("s", [SessionCreated(), CustomEventRecorded(name="x")]) == [1, 2]
        assert await store.head("s") == 2
    with sqlite3.connect(path) as check:
        columns = {row[1] for row in check.execute("PRAGMA table_info(agentlog_sessions)")}
    assert columns == {"session_id", "created_at"}


async def test_a_postgres_schema_from_before_transcripts_gains_their_tables(
    postgres_url: str,
) -> None:
    url = parse_database_url(postgres_url)
    async with open_store(postgres_url) as store:
        await store.append("s", [SessionCreated()])
    conn = await asyncpg.connect(url.dsn)
    try:
        for table in ("agentlog_transcript_entries", "agentlog_transcripts"):
            await conn.execute(f'DROP TABLE "{url.schema}".{table}')
        async with open_store(postgres_url) as store:
            sessions = LogSessionStore(store)
            await sessions.append({"project_key": "p", "session_id": "x"}, [{"type": "t"}])
            assert await sessions.load({"project_key": "p", "session_id": "x"}) == [{"type": "t"}]
            assert await store.head("s") == 1
    finally:
        await conn.close()


async def _log_with_runs(url: str) -> None:
    async with open_store(url) as store:
        await store.append(
            "s",
            [
                SessionCreated(),
                RunStarted(run_id="r1", prompt="a"),
                RunFinished(run_id="r1"),
                RunStarted(run_id="r2", prompt="b"),  # its owner died: superseded by r3
                RunStarted(run_id="r3", prompt="c"),
            ],
        )


async def _runs_after_reopening(url: str) -> list[RunRecord | None]:
    async with open_store(url) as store:
        return [await store.run("s", r) for r in ("r1", "r2", "r3")] + [
            await store.current_run("s")
        ]


EXPECTED_RUNS = [
    RunRecord(session_id="s", run_id="r1", started_seq=2, ended_seq=3),
    RunRecord(session_id="s", run_id="r2", started_seq=4, ended_seq=5),
    RunRecord(session_id="s", run_id="r3", started_seq=5),
    RunRecord(session_id="s", run_id="r3", started_seq=5),
]


async def test_a_log_from_before_the_run_index_gets_it_filled_from_its_events(
    postgres_url: str, tmp_path: Path
) -> None:
    sqlite_file = tmp_path / "old.db"
    await _log_with_runs(f"sqlite:///{sqlite_file}")
    with sqlite3.connect(sqlite_file) as conn:
        conn.execute("DROP TABLE agentlog_runs")
    assert await _runs_after_reopening(f"sqlite:///{sqlite_file}") == EXPECTED_RUNS

    await _log_with_runs(postgres_url)
    url = parse_database_url(postgres_url)
    conn = await asyncpg.connect(url.dsn)
    try:
        await conn.execute(f'DROP TABLE "{url.schema}".agentlog_runs')
    finally:
        await conn.close()
    assert await _runs_after_reopening(postgres_url) == EXPECTED_RUNS


async def test_a_postgres_schema_from_before_the_append_function_gains_it_and_nothing_else(
    postgres_url: str,
) -> None:
    """Servers of the version before append without the function: the upgrade only adds it
    (no table is altered, so their appends are never blocked by it)."""
    url = parse_database_url(postgres_url)
    async with open_store(postgres_url) as store:
        await store.append("s", [SessionCreated()])
    conn = await asyncpg.connect(url.dsn)
    try:
        await conn.execute(f'DROP FUNCTION "{url.schema}".{APPEND_FUNCTION}')
        async with conn.transaction():
            # Held by an appender of the old version: ALTER TABLE on them would wait for it.
            await conn.execute(
                f'LOCK TABLE "{url.schema}".agentlog_events, "{url.schema}".agentlog_idempotency '
                "IN ROW EXCLUSIVE MODE"
            )
            async with asyncio.timeout(10), open_store(postgres_url) as store:
                found = await conn.fetchval(
                    "SELECT to_regprocedure($1)",
                    f'"{url.schema}".{APPEND_FUNCTION}({APPEND_FUNCTION_ARGUMENTS})',
                )
                assert found is not None
        async with open_store(postgres_url) as store:
            assert await store.append("s", [CustomEventRecorded(name="x")]) == [2]
    finally:
        await conn.close()
