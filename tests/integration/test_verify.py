"""`verify` against a real database: clean, then corrupted with raw SQL one invariant at a time."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from agentlog.domain.events import (
    CustomEventRecorded,
    Event,
    HeartbeatRecorded,
    RunFailed,
    RunStarted,
    SessionCreated,
    ToolCallFailed,
    ToolCallStarted,
    encode_event,
)
from agentlog.infra.postgres.backend import PostgresUrl
from agentlog.infra.sessions.verification import ReadStored, StoredRows, VerifyReport, verify_log
from agentlog.infra.sqlite.backend import SQLiteUrl
from agentlog.infra.store.opening import open_projection_store, open_store, parse_database_url
from agentlog.infra.store.projector import Projector
from tests.integration.projection_helpers import seed

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

# seed(store, 2): sessions s000 and s001, each: 1 session_created, then run s00N-r0:
# 2 run_started, 3 step_started, 4-6 text_delta, 7-8 tool_call_started (t0, t1),
# 9 succeeded t1, 10 succeeded t0, 11 run_finished. Positions: s000 1, s001 2, then 3-12, 13-22.


async def sql(database_url: str, statement: str, *params: object) -> None:
    """Run one statement straight on the database, behind the store's back. Parameters are
    written `$1, $2, ...` (PostgreSQL's style) and rewritten for SQLite."""
    url = parse_database_url(database_url)
    if isinstance(url, SQLiteUrl):
        conn = sqlite3.connect(url.path)
        for i in range(len(params), 0, -1):
            statement = statement.replace(f"${i}", f"?{i}")
        conn.execute(statement, params)
        conn.commit()
        conn.close()
        return
    assert isinstance(url, PostgresUrl)
    pg = await asyncpg.connect(url.dsn)
    try:
        await pg.execute(f'SET search_path TO "{url.schema}"')
        await pg.execute(statement, *params)
    finally:
        await pg.close()


async def replace_event(database_url: str, session_id: str, seq: int, event: Event) -> None:
    """Overwrite one stored event with another, keeping its seq and position."""
    await sql(
        database_url,
        "UPDATE agentlog_events SET topic = $1, state = $2, run_id = $3 "
        "WHERE originator_id = $4 AND originator_version = $5",
        event.__struct_config__.tag,
        encode_event(event),
        event.run_id,
        session_id,
        seq,
    )


async def verify(
    database_url: str, session_id: str | None = None, read_stored: ReadStored | None = None
) -> VerifyReport:
    async with open_store(database_url) as store:
        return await verify_log(store, session_id, read_stored=read_stored)


def lines(report: VerifyReport) -> list[str]:
    return [str(p) for p in report.problems]


@pytest.fixture
async def seeded(database_url: str) -> str:
    async with open_store(database_url) as store:
        await seed(store, sessions_count=2)
    return database_url


async def test_a_clean_log_has_no_problems(seeded: str) -> None:
    report = await verify(seeded)
    assert report.problems == []
    assert (report.sessions, report.events, report.last_position) == (2, 22, 22)
    one = await verify(seeded, "s001")
    assert (one.problems, one.sessions, one.events) == ([], 1, 11)


async def test_a_run_still_active_may_have_tool_calls_waiting(database_url: str) -> None:
    async with open_store(database_url) as store:
        await store.append("live", [SessionCreated()])
        await store.append(
            "live",
            [
                RunStarted(run_id="r1", prompt="go"),
                ToolCallStarted(run_id="r1", tool_call_id="t1", tool_name="Bash"),
                HeartbeatRecorded(run_id="r1"),
            ],
        )
    assert lines(await verify(database_url)) == []


async def test_a_deleted_event_is_a_missing_seq_and_a_missing_position(seeded: str) -> None:
    await sql(
        seeded,
        "DELETE FROM agentlog_events WHERE originator_id = 's001' AND originator_version = 7",
    )
    assert lines(await verify(seeded)) == [
        "log: position 18 missing (last 22)",
        "session s001: seq 7 missing (head 11)",
        "session s001: seq 10: tool_call_succeeded for tool call s001-r0-t0 that never started",
    ]


async def test_a_lost_last_event_is_found_by_its_position(seeded: str) -> None:
    """Heads are read from the newest event, so a lost tail leaves no gap in the session's
    seqs; the dense global positions still give it away."""
    await sql(
        seeded,
        "DELETE FROM agentlog_events WHERE originator_id = 's000' AND originator_version = 11",
    )
    reported = lines(await verify(seeded))
    lost = [line for line in reported if line.startswith("log: position") and "missing" in line]
    assert lost, reported


async def test_events_without_a_sessions_row(seeded: str) -> None:
    await sql(seeded, "DELETE FROM agentlog_sessions WHERE session_id = 's000'")
    assert lines(await verify(seeded)) == [
        "session s000: 11 events in the log but no row in the sessions table"
    ]
    assert lines(await verify(seeded, "s000")) == [
        "session s000: 11 events in the log but no row in the sessions table"
    ]


async def test_a_tool_call_without_its_end_after_its_run_ended(seeded: str) -> None:
    await replace_event(seeded, "s000", 9, CustomEventRecorded(run_id="s000-r0", name="x"))
    assert lines(await verify(seeded)) == [
        "session s000: tool call s000-r0-t1 (Bash, seq 8) has no terminal event and its run "
        "s000-r0 ended at seq 11"
    ]


async def test_a_tool_call_ended_twice_and_an_end_without_a_start(seeded: str) -> None:
    await replace_event(
        seeded, "s000", 5, ToolCallFailed(run_id="s000-r0", tool_call_id="nobody", error_text="x")
    )
    # t0 now ends twice (9, 10) and t1 never does.
    await replace_event(
        seeded,
        "s001",
        9,
        ToolCallFailed(run_id="s001-r0", tool_call_id="s001-r0-t0", error_text="x"),
    )
    assert lines(await verify(seeded)) == [
        "session s000: seq 5: tool_call_failed for tool call nobody that never started",
        "session s001: tool call s001-r0-t0 (Bash, seq 7) has 2 terminal events "
        "(seqs 9 tool_call_failed, 10 tool_call_succeeded)",
        "session s001: tool call s001-r0-t1 (Bash, seq 8) has no terminal event and its run "
        "s001-r0 ended at seq 11",
    ]


async def test_a_run_with_two_ends_and_a_run_that_never_ended(seeded: str) -> None:
    await replace_event(seeded, "s000", 6, RunFailed(run_id="s000-r0", error="boom"))
    await replace_event(seeded, "s001", 11, CustomEventRecorded(run_id="s001-r0", name="x"))
    async with open_store(seeded) as store:
        await store.append("s001", [RunStarted(run_id="next", prompt="again")])
    assert lines(await verify(seeded)) == [
        "session s000: run s000-r0 (seq 2) has 2 terminal events (seqs 6 run_failed, "
        "11 run_finished)",
        "session s001: run s001-r0 (seq 2) has no terminal event but run next started at seq 12",
    ]


async def test_a_log_that_does_not_begin_with_session_created(seeded: str) -> None:
    await replace_event(seeded, "s000", 1, CustomEventRecorded(name="x"))
    await replace_event(seeded, "s001", 3, SessionCreated())
    assert lines(await verify(seeded)) == [
        "session s000: seq 1 is custom, not session_created",
        "session s001: seq 3 is a second session_created",
    ]


async def test_stored_projections_that_differ_from_a_fresh_fold(seeded: str) -> None:
    async with open_store(seeded) as store, open_projection_store(store) as projections:
        await Projector(store, projections).catch_up()
    await sql(seeded, "UPDATE agentlog_session_summaries SET runs = 5 WHERE session_id = 's000'")
    await sql(
        seeded,
        "UPDATE agentlog_ui_messages SET message = (SELECT message FROM agentlog_ui_messages "
        "WHERE session_id = 's000' AND position = 0) WHERE session_id = 's001' AND position = 0",
    )
    async with open_store(seeded) as store, open_projection_store(store) as projections:

        async def read_stored(session_id: str) -> StoredRows:
            return (
                await projections.read_state(session_id),
                await projections.read_summary(session_id),
            )

        report = await verify_log(store, read_stored=read_stored)
    assert lines(report) == [
        "session s000: the stored session summary (at seq 11) differs from a fresh fold: "
        "runs 5, expected 1",
        "session s001: the stored UI projection (at seq 11) differs from a fresh fold: "
        "message 0 is 's000-r0:user', expected 's001-r0:user'",
    ]
