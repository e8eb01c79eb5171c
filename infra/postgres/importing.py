"""Importing a session into the log's PostgreSQL schema, batch by batch (the protocol and why:
agentlog.infra.store.import_batches; what an import is: agentlog.infra.sessions.importing).

Each batch is one transaction: its rows travel first, into a temporary table of the
connection, while every other session's appends go on; only then is the `agentlog_log_head`
row locked, the rows copied into the log inside the server and the log head moved, so
positions stay dense and commit-ordered for tailing readers. The lock is held for one batch's
in-database copy (a thousand rows), never for the whole session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from agentlog.domain.errors import SessionAlreadyExists
from agentlog.infra.postgres.event_store import NOTIFY_CHANNEL, PostgresEventStore, _ident
from agentlog.infra.store.import_batches import (
    REMOVAL_ROWS,
    ImportRow,
    ImportTakenOver,
    RunRow,
    SessionImporting,
)
from agentlog.infra.store.imported_session import ImportRefused

# Dropped with its transaction, committed or not: a batch's rows never outlive it, and no
# pooled connection keeps a table of ours (ON COMMIT DELETE ROWS would, and would truncate it
# at every later commit of that connection).
_STAGING = """CREATE TEMP TABLE agentlog_import_rows (
    seq bigint, topic text, state bytea, run_id text, at timestamptz
) ON COMMIT DROP"""
# The projections' rows of one session (a partial import's are removed with it, as a
# deletion removes a deleted session's).
PROJECTION_TABLES = ("agentlog_ui_states", "agentlog_ui_messages", "agentlog_session_summaries")


class PostgresImports:
    """agentlog.infra.store.import_batches.BatchedImports on the store's pool."""

    def __init__(self, store: PostgresEventStore) -> None:
        self.store = store
        self.t = _ident(store.schema)

    async def importing(self, session_ids: list[str]) -> set[str]:
        """Those of the sessions being imported."""
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT session_id FROM {self.t}.agentlog_imports "
                "WHERE session_id = ANY($1::text[])",
                session_ids,
            )
        return {row[0] for row in rows}

    async def stale(self, stale_after: float) -> list[str]:
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT session_id FROM {self.t}.agentlog_imports "
                "WHERE heartbeat < now() - make_interval(secs => $1)",
                stale_after,
            )
        return [row[0] for row in rows]

    async def begin(self, session_id: str, owner: str, stale_after: float) -> bool:
        t = self.t
        async with self.store.pool.acquire() as conn, conn.transaction():
            # The log head's lock, as an append that creates a session takes it: the two
            # cannot both find the id free.
            await conn.execute(f"SELECT 1 FROM {t}.agentlog_log_head WHERE id FOR UPDATE")
            if await conn.fetchval(
                f"SELECT 1 FROM {t}.agentlog_sessions WHERE session_id = $1", session_id
            ):
                raise SessionAlreadyExists(session_id)
            stale = await conn.fetchval(
                f"SELECT heartbeat < now() - make_interval(secs => $2) "
                f"FROM {t}.agentlog_imports WHERE session_id = $1",
                session_id,
                stale_after,
            )
            if stale is not None:
                if not stale:
                    raise SessionImporting(session_id)
                # Its process died: take it over; the caller removes what it left.
                await conn.execute(
                    f"UPDATE {t}.agentlog_imports SET owner = $2, heartbeat = now() "
                    "WHERE session_id = $1",
                    session_id,
                    owner,
                )
                return True
            if await conn.fetchval(
                f"SELECT 1 FROM {t}.agentlog_events WHERE originator_id = $1 LIMIT 1", session_id
            ):
                raise ImportRefused(
                    f"the log holds events of session {session_id!r} but no sessions row: "
                    "run agentlog verify"
                )
            await conn.execute(
                f"INSERT INTO {t}.agentlog_imports (session_id, owner, heartbeat) "
                "VALUES ($1, $2, now())",
                session_id,
                owner,
            )
        return False

    async def write(
        self,
        session_id: str,
        owner: str,
        rows: Sequence[ImportRow],
        last: tuple[datetime, list[RunRow]] | None,
    ) -> int:
        t = self.t
        store = self.store
        async with store.pool.acquire() as conn, conn.transaction():
            await conn.execute(_STAGING)
            # asyncpg encodes the arrays on the event loop, element by element: a batch's
            # worth (a few ms per 1,000 rows).
            await conn.execute(
                """INSERT INTO agentlog_import_rows
                   SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[],
                                        $5::timestamptz[])""",
                *(list(column) for column in zip(*rows, strict=True)),
            )
            # Lock first, read after, exactly like an append: every append that committed
            # before is visible, none can commit in between, so the positions taken here are
            # the next ones and a reader tailing `position > P` never passes them.
            position: int = await conn.fetchval(
                f"SELECT position FROM {t}.agentlog_log_head WHERE id FOR UPDATE"
            )
            if not await _is_owner(conn, t, session_id, owner):
                raise ImportTakenOver(session_id)
            await conn.execute(
                f"""INSERT INTO {t}.agentlog_events (originator_id, originator_version, topic,
                        state, notification_id, run_id, recorded_at)
                    SELECT $1, r.seq, r.topic, r.state, $2 + row_number() OVER (ORDER BY r.seq),
                           r.run_id, r.at
                    FROM agentlog_import_rows AS r ORDER BY r.seq""",
                session_id,
                position,
            )
            await conn.execute(
                f"UPDATE {t}.agentlog_log_head SET position = $1 WHERE id", position + len(rows)
            )
            if last is None:
                await conn.execute(
                    f"UPDATE {t}.agentlog_imports SET heartbeat = now() WHERE session_id = $1",
                    session_id,
                )
            else:
                created_at, runs = last
                await conn.execute(
                    f"INSERT INTO {t}.agentlog_sessions (session_id, created_at) VALUES ($1, $2)",
                    session_id,
                    created_at,
                )
                if runs:
                    await conn.execute(
                        f"""INSERT INTO {t}.agentlog_runs (session_id, run_id, started_seq,
                                ended_seq)
                            SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[])
                            ON CONFLICT DO NOTHING""",
                        session_id,
                        *(list(column) for column in zip(*runs, strict=True)),
                    )
                await conn.execute(
                    f"DELETE FROM {t}.agentlog_imports WHERE session_id = $1", session_id
                )
                if store.notify:
                    # Inside the transaction, as the store does: delivered exactly at commit.
                    await conn.execute(
                        "SELECT pg_notify($1, $2)",
                        NOTIFY_CHANNEL,
                        f"{store.process_token}|{session_id}",
                    )
        return position + 1

    async def remove_some(self, session_id: str, owner: str) -> int:
        t = self.t
        async with self.store.pool.acquire() as conn, conn.transaction():
            if not await _is_owner(conn, t, session_id, owner):
                return 0
            return await remove_rows(conn, self.store.schema, session_id, None)

    async def end(self, session_id: str, owner: str, release: bool, removed: int) -> None:
        t = self.t
        async with self.store.pool.acquire() as conn, conn.transaction():
            if not await _is_owner(conn, t, session_id, owner):
                return
            if removed:
                await conn.execute(
                    f"INSERT INTO {t}.agentlog_removed_imports (session_id, events_removed, "
                    "removed_at) VALUES ($1, $2, now())",
                    session_id,
                    removed,
                )
            if await projections_exist(conn, self.store.schema):
                # As a deletion does: the checkpoint's row first (a projector's claim holds it
                # while it folds), so the partial session's rows cannot be written back.
                await conn.execute(f"SELECT 1 FROM {t}.agentlog_projection_checkpoints FOR UPDATE")
                for table in PROJECTION_TABLES:
                    await conn.execute(f"DELETE FROM {t}.{table} WHERE session_id = $1", session_id)
                await conn.execute(
                    f"UPDATE {t}.agentlog_projection_checkpoints SET revision = revision + 1"
                )
            if release:
                await conn.execute(
                    f"DELETE FROM {t}.agentlog_imports WHERE session_id = $1", session_id
                )


async def positions_removed(store: PostgresEventStore) -> int:
    """Events that removed partial imports took out of the log: gaps in its positions."""
    async with store.pool.acquire() as conn:
        found = await conn.fetchval(
            "SELECT COALESCE(SUM(events_removed), 0) "
            f"FROM {_ident(store.schema)}.agentlog_removed_imports"
        )
    return int(found)


async def _is_owner(conn: asyncpg.Connection, t: str, session_id: str, owner: str) -> bool:
    found = await conn.fetchval(
        f"SELECT owner FROM {t}.agentlog_imports WHERE session_id = $1", session_id
    )
    return bool(found == owner)


async def remove_rows(
    conn: asyncpg.Connection, schema: str, session_id: str, below_seq: int | None
) -> int:
    """Delete up to REMOVAL_ROWS of the session's events (those below `below_seq` when
    given); returns how many. Inside the caller's transaction; no lock on the log head: the
    rows removed are no append's business."""
    t = _ident(schema)
    status = await conn.execute(
        f"""DELETE FROM {t}.agentlog_events WHERE (originator_id, originator_version) IN (
                SELECT originator_id, originator_version FROM {t}.agentlog_events
                WHERE originator_id = $1 AND originator_version < $2
                ORDER BY originator_version LIMIT {REMOVAL_ROWS})""",
        session_id,
        below_seq if below_seq is not None else 2**62,
    )
    return int(status.split()[-1])


async def projections_exist(conn: asyncpg.Connection, schema: str) -> bool:
    """Whether the projector has made its tables in `schema` (a store may run without)."""
    found = await conn.fetchval(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 "
        "AND table_name = ANY($2::text[])",
        schema,
        ["agentlog_projection_checkpoints", *PROJECTION_TABLES],
    )
    return bool(found == 1 + len(PROJECTION_TABLES))
