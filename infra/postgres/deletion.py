"""Deleting a session from the log's PostgreSQL schema (see agentlog.infra.sessions.deletion).

The tombstone is one transaction that locks `agentlog_log_head` first, as every append does,
so it takes the next seq and position and no append of this session interleaves; then, when
the projections exist, their checkpoint row (`FOR UPDATE`: a projector's claim holds it while
it folds, so the session's rows cannot be written back after they are deleted). The lock order
is always log head, then checkpoint: a claim never takes the log head, so the two cannot
deadlock. From its commit every append of the session is refused (its newest event is the
tombstone). The rows of the session's size (its events, its transcripts' entries) are then
removed in batches of REMOVAL_ROWS, each its own short transaction that takes no lock on the
log head (agentlog.infra.store.import_batches says why). A process that dies in between
leaves rows below the tombstone: a later delete of the session removes them before it
answers SessionDeleted.
"""

from __future__ import annotations

from agentlog.domain.errors import SessionDeleted, UnknownSession
from agentlog.domain.events import SessionDeleted as SessionDeletedEvent
from agentlog.domain.events import encode_event
from agentlog.infra.postgres.event_store import NOTIFY_CHANNEL, PostgresEventStore, _ident
from agentlog.infra.postgres.importing import PROJECTION_TABLES, projections_exist, remove_rows
from agentlog.infra.store.import_batches import REMOVAL_ROWS

_BY_SESSION = (
    "agentlog_idempotency",
    "agentlog_runs",
    "agentlog_turns_due",
    "agentlog_run_leases",
    "agentlog_attachments",
)


async def delete_session_in(
    store: PostgresEventStore, session_id: str, reason: str
) -> tuple[int, int]:
    """Leave the session's tombstone and remove its content; returns (tombstone seq, events
    removed). Raises UnknownSession, SessionDeleted."""
    try:
        found = await _tombstone(store, session_id, reason)
    except SessionDeleted:
        await remove_deleted(store, session_id)  # what a process that died left, if anything
        raise
    await remove_deleted(store, session_id)
    return found


async def _tombstone(store: PostgresEventStore, session_id: str, reason: str) -> tuple[int, int]:
    t = _ident(store.schema)
    async with store.pool.acquire() as conn, conn.transaction():
        position: int = await conn.fetchval(
            f"SELECT position FROM {t}.agentlog_log_head WHERE id FOR UPDATE"
        )
        # FOR UPDATE: a transcript append holds the session's row FOR SHARE while it writes
        # (agentlog.infra.postgres.transcripts), so we wait for it and then delete what it
        # wrote, or it waits for us and then sees the tombstone.
        if not await conn.fetchval(
            f"SELECT 1 FROM {t}.agentlog_sessions WHERE session_id = $1 FOR UPDATE", session_id
        ):
            raise UnknownSession(session_id)
        newest = await conn.fetchrow(
            f"SELECT originator_version, topic FROM {t}.agentlog_events "
            "WHERE originator_id = $1 ORDER BY originator_version DESC LIMIT 1",
            session_id,
        )
        if newest is not None and newest[1] == "session_deleted":
            raise SessionDeleted(session_id)
        # A session's seqs are dense from 1: its head is how many events the removal takes.
        head = newest[0] if newest is not None else 0
        projections = await projections_exist(conn, store.schema)
        if projections:
            await conn.execute(f"SELECT 1 FROM {t}.agentlog_projection_checkpoints FOR UPDATE")
        await conn.execute(
            f"""INSERT INTO {t}.agentlog_events (originator_id, originator_version, topic, state,
                    notification_id, run_id, recorded_at)
                VALUES ($1, $2, 'session_deleted', $3, $4, NULL, now())""",
            session_id,
            head + 1,
            encode_event(SessionDeletedEvent(reason=reason, events_removed=head)),
            position + 1,
        )
        # Moving the head also tells every process's fast path that its heads are stale.
        await conn.execute(f"UPDATE {t}.agentlog_log_head SET position = $1 WHERE id", position + 1)
        for table in _BY_SESSION + (PROJECTION_TABLES if projections else ()):
            await conn.execute(f"DELETE FROM {t}.{table} WHERE session_id = $1", session_id)
        if projections:
            await conn.execute(
                f"UPDATE {t}.agentlog_projection_checkpoints SET revision = revision + 1"
            )
        if store.notify:
            # Inside the transaction, as appends do: other processes' tails wake at commit.
            await conn.execute(
                "SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, f"{store.process_token}|{session_id}"
            )
    return head + 1, head


async def remove_deleted(store: PostgresEventStore, session_id: str) -> None:
    """Remove a deleted session's rows below its tombstone, then its transcripts, a batch
    per transaction."""
    t = _ident(store.schema)
    while True:
        async with store.pool.acquire() as conn, conn.transaction():
            tombstone = await conn.fetchval(
                f"SELECT max(originator_version) FROM {t}.agentlog_events WHERE originator_id = $1",
                session_id,
            )
            removed = await remove_rows(conn, store.schema, session_id, tombstone)
            if not removed:
                status = await conn.execute(
                    f"""DELETE FROM {t}.agentlog_transcript_entries WHERE ctid IN (
                            SELECT e.ctid FROM {t}.agentlog_transcript_entries AS e
                            JOIN {t}.agentlog_transcripts AS s
                            ON e.project_key = s.project_key
                            AND e.agent_session_id = s.agent_session_id
                            WHERE s.session_id = $1 LIMIT {REMOVAL_ROWS})""",
                    session_id,
                )
                removed = int(status.split()[-1])
            if not removed:
                await conn.execute(
                    f"DELETE FROM {t}.agentlog_transcripts WHERE session_id = $1", session_id
                )
                return


async def tables_holding_in(store: PostgresEventStore, text: str) -> list[str]:
    """Every table of the schema with a row whose text holds `text`."""
    async with store.pool.acquire() as conn:
        names = [
            r[0]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                store.schema,
            )
        ]
        found = []
        for name in names:
            # A bytea column (an event's state) shows as hex in the row's text: look for both.
            hit = await conn.fetchval(
                f"SELECT count(*) FROM {_ident(store.schema)}.{_ident(name)} AS t "
                "WHERE t::text LIKE $1 OR t::text LIKE $2",
                f"%{text}%",
                f"%{text.encode().hex()}%",
            )
            if hit:
                found.append(name)
        return found
