"""The projections' rows in the log's PostgreSQL schema, through the store's asyncpg pool.

Several server processes run a projector against one database. A claim is one transaction
that starts by locking the checkpoint row (`FOR UPDATE`) and ends by writing the rows and the
checkpoint, so projectors take turns: the next one waits for the lock, then reads the moved
checkpoint and folds only what is new, instead of folding the same page and losing the race.
We chose this over leadership by advisory lock: a leader whose connection drops loses its
lock while its last page may still commit, so a second leader could write beside it; a row
lock is held by the very transaction that writes. The revision check in the UPDATE and the
forward-only row guards stay as a second line of defence, and the lock never blocks appends
(they lock `agentlog_log_head`, not this row).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec

from agentlog.infra.postgres.event_store import _ident
from agentlog.infra.store.projection_store import (
    PROJECTOR_NAME,
    SUMMARY_COLUMNS,
    SUMMARY_COLUMNS_ADDED,
    Changes,
    Checkpoint,
    States,
    StoredPage,
    Summaries,
    decode_message,
    decode_state,
    joined_state,
    state_writes,
    summary_from_row,
    summary_values,
)
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.ui_messages import ConversationState, Message
from agentlog.projections.ui_messages.paging import UnknownCursor


def schema_statements(schema: str) -> list[str]:
    """The DDL, idempotent."""
    s = _ident(schema)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_projection_checkpoints (
                name text PRIMARY KEY,
                position bigint NOT NULL,
                generation bigint NOT NULL,
                revision bigint NOT NULL,
                next_generation bigint NOT NULL)""",
        f"""INSERT INTO {s}.agentlog_projection_checkpoints
                (name, position, generation, revision, next_generation)
            VALUES ('{PROJECTOR_NAME}', 0, 1, 0, 1) ON CONFLICT DO NOTHING""",
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_ui_states (
                generation bigint NOT NULL,
                session_id text NOT NULL,
                last_seq bigint NOT NULL,
                state bytea NOT NULL,
                message_count bigint,
                PRIMARY KEY (generation, session_id))""",
        # Before messages had rows of their own (NULL: the row holds the whole state).
        f"ALTER TABLE {s}.agentlog_ui_states ADD COLUMN IF NOT EXISTS message_count bigint",
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_ui_messages (
                generation bigint NOT NULL,
                session_id text NOT NULL,
                position bigint NOT NULL,
                message_id text NOT NULL,
                message bytea NOT NULL,
                PRIMARY KEY (generation, session_id, position))""",
        f"""CREATE INDEX IF NOT EXISTS agentlog_ui_messages_by_id
                ON {s}.agentlog_ui_messages (generation, session_id, message_id)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_session_summaries (
                generation bigint NOT NULL,
                session_id text NOT NULL,
                title json,
                status text NOT NULL,
                head bigint NOT NULL,
                created_at timestamptz NOT NULL,
                last_activity_at timestamptz NOT NULL,
                runs bigint NOT NULL,
                tool_calls bigint NOT NULL,
                active_run_id text,
                active_run_agent text,
                usage text,
                run_marks text,
                agent text,
                PRIMARY KEY (generation, session_id))""",
    ]


# The title is stored as a JSON string: PostgreSQL text cannot hold NUL, and a title is
# whatever the client sent (the log keeps it inside the event's JSON). A projection that could
# not store a title would stop at that event for good.
_json = msgspec.json.Decoder(str)


def _json_title(title: str | None) -> str | None:
    return None if title is None else msgspec.json.encode(title).decode()


def _title(stored: str | None) -> str | None:
    return None if stored is None else _json.decode(stored)


def _summary(row: Sequence[Any]) -> SessionSummary:
    return summary_from_row(row, log_text=_title)


class _Sql:
    """Every statement, built once for the schema."""

    def __init__(self, schema: str) -> None:
        t = _ident(schema)
        checkpoints = f"{t}.agentlog_projection_checkpoints"
        live = f"(SELECT generation FROM {checkpoints} WHERE name = '{PROJECTOR_NAME}')"
        self.migrate_lock = "SELECT pg_advisory_xact_lock(hashtext('agentlog-migrate'))"
        self.schema = schema_statements(schema)
        self.checkpoint = (
            f"SELECT position, generation, revision FROM {checkpoints} WHERE name = $1"
        )
        self.lock_checkpoint = self.checkpoint + " FOR UPDATE"
        self.bump_revision = (
            f"UPDATE {checkpoints} SET position = $2, revision = revision + 1 "
            "WHERE name = $1 AND revision = $3"
        )
        self.swap = (
            f"UPDATE {checkpoints} SET generation = $2, position = $3, revision = revision + 1 "
            "WHERE name = $1 AND revision = $4 AND generation < $2 AND position <= $3"
        )
        self.new_generation = (
            f"UPDATE {checkpoints} SET next_generation = GREATEST(next_generation, generation) + 1 "
            "WHERE name = $1 RETURNING next_generation"
        )
        states = f"{t}.agentlog_ui_states"
        messages = f"{t}.agentlog_ui_messages"
        summaries = f"{t}.agentlog_session_summaries"
        # Rows never move backwards: a header at a later seq is kept (double application, or
        # a writer that lost track, changes nothing), and so are its messages: they are
        # written only for the sessions whose header this statement wrote (RETURNING).
        self.upsert_states = f"""
            INSERT INTO {states} AS r (generation, session_id, last_seq, state, message_count)
            SELECT $1, u.sid, u.seq, u.state, u.count
            FROM unnest($2::text[], $3::bigint[], $4::bytea[], $5::bigint[])
                AS u(sid, seq, state, count)
            ON CONFLICT (generation, session_id) DO UPDATE
            SET last_seq = excluded.last_seq, state = excluded.state,
                message_count = excluded.message_count
            WHERE r.last_seq < excluded.last_seq
            RETURNING session_id"""
        self.truncate_messages = f"""
            DELETE FROM {messages} AS m
            USING unnest($2::text[], $3::bigint[]) AS u(sid, count)
            WHERE m.generation = $1 AND m.session_id = u.sid AND m.position >= u.count"""
        self.upsert_messages = f"""
            INSERT INTO {messages} (generation, session_id, position, message_id, message)
            SELECT $1, u.* FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bytea[])
                AS u(sid, position, message_id, message)
            ON CONFLICT (generation, session_id, position) DO UPDATE
            SET message_id = excluded.message_id, message = excluded.message"""
        self.legacy_states = (
            f"SELECT generation, session_id, state FROM {states} WHERE message_count IS NULL"
        )
        self.live = live
        self.page_header = (
            f"SELECT state, message_count FROM {states} WHERE generation = $1 AND session_id = $2"
        )
        self.named_header = (
            f"SELECT last_seq FROM {states} WHERE generation = $1 AND session_id = $2"
        )
        self.named_messages = (
            f"SELECT message FROM {messages} WHERE generation = $1 AND session_id = $2 "
            "AND message_id = ANY($3::text[]) ORDER BY position"
        )
        self.page_cursor = (
            f"SELECT max(position) FROM {messages} "
            "WHERE generation = $1 AND session_id = $2 AND message_id = $3"
        )
        self.page_messages = (
            f"SELECT message FROM {messages} WHERE generation = $1 AND session_id = $2 "
            "AND position >= $3 AND position < $4 ORDER BY position"
        )
        # The newest messages of each session: what a page of appends usually touches.
        self.load_headers = (
            f"SELECT session_id, state, message_count FROM {states} "
            "WHERE generation = $1 AND session_id = ANY($2::text[])"
        )
        self.load_newest_messages = f"""
            SELECT m.session_id, m.message FROM {states} AS s
            JOIN {messages} AS m ON m.generation = s.generation AND m.session_id = s.session_id
                AND m.position >= s.message_count - $3
            WHERE s.generation = $1 AND s.session_id = ANY($2::text[])
            ORDER BY m.session_id, m.position"""
        self.load_messages = (
            f"SELECT session_id, message FROM {messages} "
            "WHERE generation = $1 AND session_id = ANY($2::text[]) "
            "ORDER BY session_id, position"
        )
        self.upsert_summaries = f"""
            INSERT INTO {summaries} AS r (generation, {SUMMARY_COLUMNS})
            SELECT $1, u.*
            FROM unnest($2::text[], $3::json[], $4::text[], $5::bigint[], $6::timestamptz[],
                        $7::timestamptz[], $8::bigint[], $9::bigint[], $10::text[],
                        $11::text[], $12::text[], $13::text[], $14::text[])
                AS u(sid, title, status, head, created_at, last_activity_at, runs,
                     tool_calls, active_run_id, active_run_agent, usage, run_marks, agent)
            ON CONFLICT (generation, session_id) DO UPDATE
            SET title = excluded.title, status = excluded.status, head = excluded.head,
                created_at = excluded.created_at, last_activity_at = excluded.last_activity_at,
                runs = excluded.runs, tool_calls = excluded.tool_calls,
                active_run_id = excluded.active_run_id,
                active_run_agent = excluded.active_run_agent, usage = excluded.usage,
                run_marks = excluded.run_marks, agent = excluded.agent
            WHERE r.head < excluded.head"""
        # A per-session rebuild overwrites whatever is there.
        self.replace_states = self.upsert_states.rsplit("WHERE", 1)[0] + " RETURNING session_id"
        self.replace_summaries = self.upsert_summaries.rsplit("WHERE", 1)[0]
        self.load_states = (
            f"SELECT session_id, state FROM {states} "
            "WHERE generation = $1 AND session_id = ANY($2::text[])"
        )
        self.load_summaries = (
            f"SELECT {SUMMARY_COLUMNS} FROM {summaries} "
            "WHERE generation = $1 AND session_id = ANY($2::text[])"
        )
        self.read_summary = (
            f"SELECT {SUMMARY_COLUMNS} FROM {summaries} "
            f"WHERE generation = {live} AND session_id = $1"
        )
        self.read_summaries = (
            f"SELECT {SUMMARY_COLUMNS} FROM {summaries} WHERE generation = {live} "
            "AND session_id > $1 ORDER BY session_id LIMIT $2"
        )
        self.drop_below = [
            f"DELETE FROM {states} WHERE generation < $1",
            f"DELETE FROM {messages} WHERE generation < $1",
            f"DELETE FROM {summaries} WHERE generation < $1",
        ]
        self.drop_only = [
            f"DELETE FROM {states} WHERE generation = $1",
            f"DELETE FROM {messages} WHERE generation = $1",
            f"DELETE FROM {summaries} WHERE generation = $1",
        ]


async def _write_states(
    conn: asyncpg.Connection,
    sql: _Sql,
    upsert: str,
    generation: int,
    states: Mapping[str, ConversationState],
    changes: Changes,
    hidden: Mapping[str, int] | None = None,
) -> None:
    """Headers, then the changed messages of the sessions whose header was written."""
    if not states:
        return
    writes = state_writes(states, changes, hidden)
    rows = await conn.fetch(
        upsert,
        generation,
        [w.session_id for w in writes],
        [w.last_seq for w in writes],
        [w.header for w in writes],
        [w.message_count for w in writes],
    )
    written = {row[0] for row in rows}
    writes = [w for w in writes if w.session_id in written]
    truncated = [w for w in writes if w.truncate_at is not None]
    if truncated:
        await conn.execute(
            sql.truncate_messages,
            generation,
            [w.session_id for w in truncated],
            [w.truncate_at for w in truncated],
        )
    messages = [(w.session_id, *m) for w in writes for m in w.messages]
    if messages:
        await conn.execute(
            sql.upsert_messages, generation, *(list(c) for c in zip(*messages, strict=True))
        )


async def _write_summaries(
    conn: asyncpg.Connection, sql: str, generation: int, summaries: Summaries
) -> None:
    if summaries:
        # One array per column (SUMMARY_COLUMNS), for the statement's unnest.
        rows = [summary_values(s, log_text=_json_title) for s in summaries.values()]
        await conn.execute(sql, generation, *(list(column) for column in zip(*rows, strict=True)))


async def _load(
    conn: asyncpg.Connection | asyncpg.Pool,
    sql: _Sql,
    generation: int,
    session_ids: Sequence[str],
    *,
    summaries: bool = True,
) -> tuple[States, Summaries]:
    ids = list(session_ids)
    headers = await conn.fetch(sql.load_states, generation, ids)
    messages: dict[str, list[bytes]] = {}
    if headers:
        for row in await conn.fetch(sql.load_messages, generation, ids):
            messages.setdefault(row[0], []).append(row[1])
    states = {row[0]: joined_state(row[1], messages.get(row[0], [])) for row in headers}
    if not summaries:
        return states, {}
    return states, {
        row[0]: _summary(row) for row in await conn.fetch(sql.load_summaries, generation, ids)
    }


def _snapshot(conn: asyncpg.Connection) -> Any:
    """A read-only transaction whose statements all see one snapshot (REPEATABLE READ), so
    a header and its messages are read as one projector save left them."""
    return conn.transaction(isolation="repeatable_read", readonly=True)


async def _load_newest(
    conn: asyncpg.Connection, sql: _Sql, generation: int, session_ids: Sequence[str], count: int
) -> tuple[States, dict[str, int], Summaries]:
    ids = list(session_ids)
    headers = await conn.fetch(sql.load_headers, generation, ids)
    messages: dict[str, list[bytes]] = {}
    if headers:
        for row in await conn.fetch(sql.load_newest_messages, generation, ids, count):
            messages.setdefault(row[0], []).append(row[1])
    states: States = {}
    hidden: dict[str, int] = {}
    for session_id, header, total in headers:
        own = messages.get(session_id, [])
        states[session_id], hidden[session_id] = joined_state(header, own), total - len(own)
    summaries = {
        row[0]: _summary(row) for row in await conn.fetch(sql.load_summaries, generation, ids)
    }
    return states, hidden, summaries


class PostgresClaim:
    """Holds the checkpoint row's lock (and a pool connection) until saved or abandoned."""

    def __init__(self, conn: asyncpg.Connection, sql: _Sql, checkpoint: Checkpoint) -> None:
        self._conn = conn
        self._sql = sql
        self.checkpoint = checkpoint

    async def load(self, session_ids: Sequence[str]) -> tuple[States, Summaries]:
        return await _load(self._conn, self._sql, self.checkpoint.generation, session_ids)

    async def load_newest(
        self, session_ids: Sequence[str], count: int
    ) -> tuple[States, dict[str, int], Summaries]:
        return await _load_newest(
            self._conn, self._sql, self.checkpoint.generation, session_ids, count
        )

    async def save(
        self,
        states: States,
        changes: Changes,
        summaries: Summaries,
        position: int,
        hidden: Mapping[str, int] | None = None,
    ) -> bool:
        seen = self.checkpoint
        sql = self._sql
        # Checkpoint first: its UPDATE is the revision check, in the same transaction as the
        # rows, so a crash between rows and checkpoint cannot exist: both commit or neither.
        moved = await self._conn.execute(
            sql.bump_revision, PROJECTOR_NAME, max(position, seen.position), seen.revision
        )
        if moved != "UPDATE 1":
            return False
        await _write_states(
            self._conn, sql, sql.upsert_states, seen.generation, states, changes, hidden
        )
        await _write_summaries(self._conn, sql.upsert_summaries, seen.generation, summaries)
        return True

    async def replace(
        self, session_id: str, state: ConversationState, summary: SessionSummary
    ) -> bool:
        seen = self.checkpoint
        sql = self._sql
        moved = await self._conn.execute(
            sql.bump_revision, PROJECTOR_NAME, seen.position, seen.revision
        )
        if moved != "UPDATE 1":
            return False
        await _write_states(
            self._conn, sql, sql.replace_states, seen.generation, {session_id: state}, {}
        )
        await _write_summaries(
            self._conn, sql.replace_summaries, seen.generation, {session_id: summary}
        )
        return True

    async def swap(self, generation: int, position: int) -> bool:
        swapped = await self._conn.execute(
            self._sql.swap, PROJECTOR_NAME, generation, position, self.checkpoint.revision
        )
        return bool(swapped == "UPDATE 1")


class PostgresProjectionStore:
    """Projection rows in the event store's schema, on the event store's pool."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        self.pool = pool
        self.schema = schema
        self._sql = _Sql(schema)

    async def open(self) -> PostgresProjectionStore:
        async with self.pool.acquire() as conn, conn.transaction():
            # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog; serialise.
            await conn.execute(self._sql.migrate_lock)
            for statement in self._sql.schema:
                await conn.execute(statement)
            # Only the columns that are missing: ALTER TABLE locks the table even as a no-op.
            have = {
                row[0]
                for row in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = $1 AND table_name = 'agentlog_session_summaries'",
                    self.schema,
                )
            }
            for column, kind in SUMMARY_COLUMNS_ADDED:
                if column not in have:
                    await conn.execute(
                        f"ALTER TABLE {_ident(self.schema)}.agentlog_session_summaries "
                        f"ADD COLUMN {column} {kind}"
                    )
            # Rows stored before messages had rows of their own: split each whole state into
            # its header and its message rows (once; under the migration lock).
            for generation, session_id, whole in await conn.fetch(self._sql.legacy_states):
                await _write_states(
                    conn,
                    self._sql,
                    self._sql.replace_states,
                    generation,
                    {session_id: decode_state(whole)},
                    {},
                )
        return self

    async def close(self) -> None:
        return None  # the pool is the event store's

    async def checkpoint(self) -> Checkpoint:
        row = await self.pool.fetchrow(self._sql.checkpoint, PROJECTOR_NAME)
        return Checkpoint(position=row[0], generation=row[1], revision=row[2])

    @asynccontextmanager
    async def claim(self) -> AsyncIterator[PostgresClaim]:
        async with self.pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                row = await conn.fetchrow(self._sql.lock_checkpoint, PROJECTOR_NAME)
                checkpoint = Checkpoint(position=row[0], generation=row[1], revision=row[2])
                yield PostgresClaim(conn, self._sql, checkpoint)
            except BaseException:
                await transaction.rollback()
                raise
            # A claim that saved nothing rolls back (its checkpoint is unchanged); one that
            # saved commits the rows and the checkpoint together.
            await transaction.commit()

    async def read_state(self, session_id: str) -> ConversationState | None:
        # One snapshot: the live generation, the header and its messages as one save left them.
        async with self.pool.acquire() as conn, _snapshot(conn):
            generation = await conn.fetchval(self._sql.live[1:-1])
            states, _ = await _load(conn, self._sql, generation, [session_id], summaries=False)
            return states.get(session_id)

    async def read_named(
        self, session_id: str, message_ids: Sequence[str]
    ) -> tuple[int, list[Message]] | None:
        sql = self._sql
        async with self.pool.acquire() as conn, _snapshot(conn):
            generation = await conn.fetchval(sql.live[1:-1])
            last_seq = await conn.fetchval(sql.named_header, generation, session_id)
            if last_seq is None:
                return None
            rows = await conn.fetch(sql.named_messages, generation, session_id, list(message_ids))
            return last_seq, [decode_message(r[0]) for r in rows]

    async def read_page(self, session_id: str, limit: int, before: str | None) -> StoredPage | None:
        sql = self._sql
        async with self.pool.acquire() as conn, _snapshot(conn):
            generation = await conn.fetchval(sql.live[1:-1])
            row = await conn.fetchrow(sql.page_header, generation, session_id)
            if row is None:
                return None
            header, end = row
            if before is not None:
                end = await conn.fetchval(sql.page_cursor, generation, session_id, before)
                if end is None:
                    raise UnknownCursor(before)
            start = max(0, end - limit)
            rows = await conn.fetch(sql.page_messages, generation, session_id, start, end)
            return StoredPage(state=joined_state(header, [r[0] for r in rows]), start=start)

    async def read_summary(self, session_id: str) -> SessionSummary | None:
        row = await self.pool.fetchrow(self._sql.read_summary, session_id)
        return None if row is None else _summary(row)

    async def read_summaries(self, after: str | None, limit: int) -> list[SessionSummary]:
        rows = await self.pool.fetch(self._sql.read_summaries, after or "", limit)
        return [_summary(row) for row in rows]

    # -- rebuilding -------------------------------------------------------------------------

    async def new_generation(self) -> int:
        value: int = await self.pool.fetchval(self._sql.new_generation, PROJECTOR_NAME)
        return value

    async def load_generation(
        self, generation: int, session_ids: Sequence[str]
    ) -> tuple[States, Summaries]:
        async with self.pool.acquire() as conn:
            return await _load(conn, self._sql, generation, session_ids)

    async def write_generation(
        self,
        generation: int,
        states: Mapping[str, ConversationState],
        changes: Changes,
        summaries: Summaries,
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            sql = self._sql
            await _write_states(conn, sql, sql.upsert_states, generation, states, changes)
            await _write_summaries(conn, self._sql.upsert_summaries, generation, summaries)

    async def drop_generations(self, *, below: int | None = None, only: int | None = None) -> None:
        statements, value = (
            (self._sql.drop_below, below) if below is not None else (self._sql.drop_only, only)
        )
        async with self.pool.acquire() as conn, conn.transaction():
            for statement in statements:
                await conn.execute(statement, value)
