"""The production event store: PostgreSQL through an asyncpg pool.

Ordering, and why it is done this way: a sequence value is taken at INSERT but becomes visible
at COMMIT, and transactions commit out of order, so a reader tailing `position > P` can pass
over a row that commits later with a lower number and never see it (measured here: thousands
of rows in 8 s with six writers). Every append transaction therefore first locks the single
row of `agentlog_log_head` (`FOR UPDATE`) and only then reads the heads it builds on. The
lock is held to COMMIT, so appends are serialised across all processes: commit order equals
position order and, per session, seq order. A reader can then never pass a gap that is filled
later, both per session and across sessions, and both numbers are gapless.

The primary keys on (session, seq) and on position are the second line of defence: a writer that
somehow built on a stale head blocks on the index until the earlier writer commits, then fails
with a unique violation and is retried, so it still cannot commit a number out of order.

We chose this over the alternatives in the notes: a per-stream advisory lock keeps seqs
ordered but leaves the global feed with skips; the transaction-id horizon needs no write lock
but lets any long transaction in the cluster stall every reader. The cost of serialising is
paid once per transaction, not per event, because group commit puts every append that is
waiting in this process into the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from domain.appending import check_append
from domain.errors import AgentlogError
from domain.events import RecordedEvent, decode_event, type_of, utc_now
from domain.ports import SessionHead, Wakeups
from infra.group_commit import OutcomeUnknown, Outcome, PendingAppend, TransientWriteError
from infra.store_base import StoreBase

NOTIFY_CHANNEL = "agentlog_wakeups"
_NOTIFY_LIMIT = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more

# Errors after which PostgreSQL has certainly rolled the transaction back: safe to retry.
_TRANSIENT = (
    asyncpg.UniqueViolationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.LockNotAvailableError,
)


def schema_statements(schema: str) -> list[str]:
    """The DDL, idempotent. Column names follow eventsourcing's stored-event table."""
    s = _ident(schema)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        # One row whose lock serialises appends and whose value is the last global position.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_log_head (
                id boolean PRIMARY KEY DEFAULT true CHECK (id),
                position bigint NOT NULL)""",
        f"INSERT INTO {s}.agentlog_log_head (id, position) VALUES (true, 0) ON CONFLICT DO NOTHING",
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_sessions (
                session_id text PRIMARY KEY,
                head bigint NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL)""",
        # originator_id = session id, originator_version = seq, topic = event type,
        # state = the event's JSON, notification_id = global position.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_events (
                originator_id text NOT NULL,
                originator_version bigint NOT NULL,
                topic text NOT NULL,
                state bytea NOT NULL,
                notification_id bigint NOT NULL,
                run_id text,
                recorded_at timestamptz NOT NULL,
                PRIMARY KEY (originator_id, originator_version))""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS agentlog_events_position
                ON {s}.agentlog_events (notification_id)""",
    ]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def migrate(conn: asyncpg.Connection, schema: str) -> None:
    """Create the schema; safe when several processes start at once."""
    async with conn.transaction():
        # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog; serialise.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentlog-migrate'))")
        for statement in schema_statements(schema):
            await conn.execute(statement)


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        session_id=row[0], seq=row[1], position=row[2], time=row[3], event=decode_event(row[4])
    )


class PostgresEventStore(StoreBase):
    """`postgresql://...`: the store shared by every server process."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        wakeups: Wakeups | None = None,
        notify: bool = False,
        max_event_bytes: int = 1024 * 1024,
        pool_size: int = 10,
    ) -> None:
        super().__init__(wakeups=wakeups, max_event_bytes=max_event_bytes)
        self.dsn = dsn
        self.schema = schema
        self.notify = notify
        self.process_token = secrets.token_hex(4)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        t = _ident(schema)
        self._sql_lock_head = f"SELECT position FROM {t}.agentlog_log_head WHERE id FOR UPDATE"
        self._sql_heads = (
            f"SELECT session_id, head FROM {t}.agentlog_sessions WHERE session_id = ANY($1::text[])"
        )
        # One round trip writes the events, the session heads and the log head.
        self._sql_write = f"""
            WITH events AS (
                INSERT INTO {t}.agentlog_events (originator_id, originator_version, topic,
                    state, notification_id, run_id, recorded_at)
                SELECT e.sid, e.seq, e.topic, e.state, e.pos, e.run_id, $7
                FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[], $5::bigint[],
                            $6::text[]) AS e(sid, seq, topic, state, pos, run_id)
            ), sessions AS (
                INSERT INTO {t}.agentlog_sessions AS s (session_id, head, created_at, updated_at)
                SELECT h.sid, h.head, $7, $7
                FROM unnest($8::text[], $9::bigint[]) AS h(sid, head)
                ON CONFLICT (session_id) DO UPDATE
                SET head = excluded.head, updated_at = excluded.updated_at
            ), log_head AS (
                UPDATE {t}.agentlog_log_head SET position = $10 WHERE id
            )
            SELECT CASE WHEN $11::text <> '' THEN pg_notify('{NOTIFY_CHANNEL}', $11) END
        """
        columns = "originator_id, originator_version, notification_id, recorded_at, state"
        self._sql_read = (
            f"SELECT {columns} FROM {t}.agentlog_events WHERE originator_id = $1 "
            "AND originator_version > $2 ORDER BY originator_version LIMIT $3"
        )
        self._sql_read_all = (
            f"SELECT {columns} FROM {t}.agentlog_events WHERE notification_id > $1 "
            "ORDER BY notification_id LIMIT $2"
        )
        self._sql_session = (
            f"SELECT session_id, head, created_at, updated_at FROM {t}.agentlog_sessions "
            "WHERE session_id = $1"
        )
        self._sql_sessions = (
            f"SELECT session_id, head, created_at, updated_at FROM {t}.agentlog_sessions "
            "WHERE session_id > $1 ORDER BY session_id LIMIT $2"
        )
        self._sql_last_position = f"SELECT position FROM {t}.agentlog_log_head WHERE id"

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> PostgresEventStore:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self._pool_size,
            # An acknowledged append must survive a crash, whatever the server's default.
            server_settings={"synchronous_commit": "on", "application_name": "agentlog"},
        )
        async with self._pool.acquire() as conn:
            await migrate(conn, self.schema)
        return self

    async def close(self) -> None:
        await super().close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> PostgresEventStore:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    # -- writes -----------------------------------------------------------------------------

    async def _write_batch(self, batch: list[PendingAppend]) -> list[Outcome]:
        async with self.pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                outcomes, changed = await self._insert_batch(conn, batch)
            except BaseException as exc:
                await transaction.rollback()
                if isinstance(exc, _TRANSIENT):
                    raise TransientWriteError(str(exc)) from exc
                raise
            try:
                await transaction.commit()
            except _TRANSIENT as exc:
                raise TransientWriteError(str(exc)) from exc
            except BaseException as exc:
                # The connection failed during COMMIT: the events may or may not be written,
                # so neither retry (duplicates) nor report failure (they may be there).
                raise OutcomeUnknown(f"commit outcome unknown: {exc}") from exc
            return outcomes

    async def _insert_batch(
        self, conn: asyncpg.Connection, batch: list[PendingAppend]
    ) -> tuple[list[Outcome], set[str]]:
        # Lock first, read after: under READ COMMITTED the next statement sees every append
        # that committed before we got the lock.
        position: int = await conn.fetchval(self._sql_lock_head)
        session_ids = list({p.session_id for p in batch})
        heads: dict[str, int | None] = dict.fromkeys(session_ids)
        for row in await conn.fetch(self._sql_heads, session_ids):
            heads[row[0]] = row[1]
        sids: list[str] = []
        seqs_col: list[int] = []
        topics: list[str] = []
        states: list[bytes] = []
        positions: list[int] = []
        run_ids: list[str | None] = []
        outcomes: list[Outcome] = []
        changed: set[str] = set()
        for pending in batch:
            session_id = pending.session_id
            head = heads[session_id]
            try:
                check_append(session_id, head, pending.events, pending.expected_seq)
            except AgentlogError as refused:
                outcomes.append(refused)
                continue
            start = head or 0
            seqs = list(range(start + 1, start + 1 + len(pending.events)))
            for seq, event, data in zip(seqs, pending.events, pending.encoded, strict=True):
                position += 1
                sids.append(session_id)
                seqs_col.append(seq)
                topics.append(type_of(event))
                states.append(data)
                positions.append(position)
                run_ids.append(event.run_id)
            heads[session_id] = seqs[-1]
            changed.add(session_id)
            outcomes.append(seqs)
        if sids:
            await conn.fetchval(
                self._sql_write,
                sids,
                seqs_col,
                topics,
                states,
                positions,
                run_ids,
                utc_now(),
                list(changed),
                [heads[s] for s in changed],
                position,
                self._notify_payload(changed),
            )
        return outcomes, changed

    def _notify_payload(self, session_ids: set[str]) -> str:
        if not self.notify:
            return ""
        payload = self.process_token + "|" + ",".join(session_ids)
        if len(payload.encode()) > _NOTIFY_LIMIT:
            return self.process_token + "|*"
        return payload

    # -- reads ------------------------------------------------------------------------------

    async def read(self, session_id: str, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self.pool.fetch(self._sql_read, session_id, after, limit)
        return [_recorded(row) for row in rows]

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self.pool.fetch(self._sql_read_all, after, limit)
        return [_recorded(row) for row in rows]

    async def session(self, session_id: str) -> SessionHead | None:
        row = await self.pool.fetchrow(self._sql_session, session_id)
        return _session_head(row) if row is not None else None

    async def sessions(self, after: str | None = None, limit: int = 100) -> list[SessionHead]:
        rows = await self.pool.fetch(self._sql_sessions, after or "", limit)
        return [_session_head(row) for row in rows]

    async def last_position(self) -> int:
        value: int = await self.pool.fetchval(self._sql_last_position)
        return value


def _session_head(row: Sequence[Any]) -> SessionHead:
    created: datetime = row[2]
    updated: datetime = row[3]
    return SessionHead(session_id=row[0], head=row[1], created_at=created, updated_at=updated)
