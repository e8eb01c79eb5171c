"""Importing a session into the log's PostgreSQL schema (see agentlog.infra.sessions.importing).

The rows travel to the server first, into a temporary table of the import's own transaction,
while every other session's appends go on; only then is the `agentlog_log_head` row locked, the
session checked, the rows copied into the log inside the server, and the log head moved, all
in the same transaction, so positions stay dense and commit-ordered for tailing readers. The
lock is held for an in-database copy, not for the rows' transfer (a 60,000-event fork held it
for a second, and every append of every session waited).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agentlog.domain.errors import SessionAlreadyExists
from agentlog.infra.postgres.event_store import (
    NOTIFY_CHANNEL,
    PostgresEventStore,
    _ident,
    index_runs_sql,
)
from agentlog.infra.store.imported_session import ImportedSession, ImportRefused

# Rows staged per statement: asyncpg encodes a statement's arrays on the event loop, element
# by element, so a chunk holds the loop for its encoding (a few ms per 1,000 rows).
_INSERT_CHUNK = 1000

# Dropped with the transaction, committed or not: nothing of a failed import is left.
_STAGING = """CREATE TEMP TABLE agentlog_import_rows (
    seq bigint, topic text, state bytea, run_id text, at timestamptz
) ON COMMIT DROP"""


async def import_session_in(
    store: PostgresEventStore,
    session: ImportedSession,
    staged: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Write the session's rows at the end of the log; returns its first position. `staged`
    is awaited once the rows are on the server, before the log's lock is taken."""
    t = _ident(store.schema)
    sid = session.session_id
    events = session.events
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute(_STAGING)
        for start in range(0, len(events), _INSERT_CHUNK):
            chunk = events[start : start + _INSERT_CHUNK]
            await conn.execute(
                """INSERT INTO agentlog_import_rows
                   SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[],
                                        $5::timestamptz[])""",
                [e.seq for e in chunk],
                [e.type for e in chunk],
                [e.state for e in chunk],
                [e.run_id for e in chunk],
                [e.time for e in chunk],
            )
        if staged is not None:
            await staged()
        # Lock first, read after, exactly like an append: every append that committed before
        # is visible, none can commit in between, so the positions taken here are the next
        # ones and a reader tailing `position > P` never passes them.
        position: int = await conn.fetchval(
            f"SELECT position FROM {t}.agentlog_log_head WHERE id FOR UPDATE"
        )
        if await conn.fetchval(f"SELECT 1 FROM {t}.agentlog_sessions WHERE session_id = $1", sid):
            raise SessionAlreadyExists(sid)
        if await conn.fetchval(f"SELECT 1 FROM {t}.agentlog_events WHERE originator_id = $1", sid):
            raise ImportRefused(
                f"the log holds events of session {sid!r} but no sessions row: run agentlog verify"
            )
        await conn.execute(
            f"""INSERT INTO {t}.agentlog_events (originator_id, originator_version, topic,
                    state, notification_id, run_id, recorded_at)
                SELECT $1, r.seq, r.topic, r.state, $2 + row_number() OVER (ORDER BY r.seq),
                       r.run_id, r.at
                FROM agentlog_import_rows AS r ORDER BY r.seq""",
            sid,
            position,
        )
        await conn.execute(
            f"INSERT INTO {t}.agentlog_sessions (session_id, created_at) VALUES ($1, $2)",
            sid,
            events[0].time,
        )
        await conn.execute(
            f"UPDATE {t}.agentlog_log_head SET position = $1 WHERE id", position + len(events)
        )
        await conn.execute(index_runs_sql(store.schema, one_session=True), sid)
        if store.notify:
            # Inside the transaction, as the store does: delivered exactly at commit.
            await conn.execute(
                "SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, f"{store.process_token}|{sid}"
            )
    return position + 1
