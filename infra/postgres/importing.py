"""Importing a session into the log's PostgreSQL schema (see agentlog.infra.sessions.importing).

Lock the `agentlog_log_head` row first, then check and insert, then move the log head, all in
one transaction, so positions stay dense and commit-ordered for tailing readers.
"""

from __future__ import annotations

from agentlog.domain.errors import SessionAlreadyExists
from agentlog.infra.postgres.event_store import (
    NOTIFY_CHANNEL,
    PostgresEventStore,
    _ident,
    index_runs_sql,
)
from agentlog.infra.store.imported_session import ImportedSession, ImportRefused

_INSERT_CHUNK = 5000


async def import_session_in(store: PostgresEventStore, session: ImportedSession) -> int:
    """Write the session's rows at the end of the log; returns its first position."""
    t = _ident(store.schema)
    sid = session.session_id
    events = session.events
    async with store.pool.acquire() as conn, conn.transaction():
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
        for start in range(0, len(events), _INSERT_CHUNK):
            chunk = events[start : start + _INSERT_CHUNK]
            await conn.execute(
                f"""INSERT INTO {t}.agentlog_events (originator_id, originator_version, topic,
                        state, notification_id, run_id, recorded_at)
                    SELECT $1, e.seq, e.topic, e.state, e.pos, e.run_id, e.at
                    FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::bigint[],
                                $6::text[], $7::timestamptz[])
                         AS e(seq, topic, state, pos, run_id, at)""",
                sid,
                [e.seq for e in chunk],
                [e.type for e in chunk],
                [e.state for e in chunk],
                [position + start + i + 1 for i in range(len(chunk))],
                [e.run_id for e in chunk],
                [e.time for e in chunk],
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
