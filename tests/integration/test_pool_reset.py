"""The PostgreSQL pool's release sends nothing (infra/postgres/event_store.py,
`keep_session_state`): a pooled connection released after the store's own work, or after a
transaction its user left open, leaves no state that its next user sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.postgres.event_store import PostgresEventStore
from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.store.opening import open_projection_store, open_store
from agentlog.infra.store.projector import Projector

# What a connection shows its next user beside an open transaction: its settings, advisory
# locks, LISTEN channels and open cursors (the unnamed portal is this query's own).
LEFT_BEHIND = """
    SELECT current_setting('lock_timeout') AS lock_timeout,
           current_setting('statement_timeout') AS statement_timeout,
           (SELECT count(*) FROM pg_locks
             WHERE pid = pg_backend_pid() AND locktype = 'advisory') AS advisory_locks,
           (SELECT count(*) FROM pg_listening_channels()) AS listening,
           (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors
"""
CLEAN = {
    "in_transaction": False,
    "lock_timeout": "0",
    "statement_timeout": "0",
    "advisory_locks": 0,
    "listening": 0,
    "cursors": 0,
}


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresEventStore]:
    async with open_store(postgres_url) as opened:
        assert isinstance(opened, PostgresEventStore)
        yield opened


async def left_behind(conn: asyncpg.Connection) -> dict[str, Any]:
    in_transaction = conn.is_in_transaction()  # as the server said at its last ReadyForQuery
    return {"in_transaction": in_transaction, **dict(await conn.fetchrow(LEFT_BEHIND))}


async def every_pooled_connection(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """What each of the pool's connections shows, all held at once (so none is skipped)."""
    async with AsyncExitStack() as held:
        connections = [
            await held.enter_async_context(pool.acquire()) for _ in range(pool.get_max_size())
        ]
        return [await left_behind(conn) for conn in connections]


async def test_the_store_leaves_no_session_state_on_its_pooled_connections(
    store: PostgresEventStore,
) -> None:
    # The store's work on its pool: appends, a delete under the append lock, the projector
    # (its checkpoint lock), the run lock and the migration's advisory lock.
    for n in range(20):
        await store.append(f"s{n}", [SessionCreated()])
        await store.append(f"s{n}", [CustomEventRecorded(name="x")])
    await SessionDeleter(store).delete("s0")
    async with open_projection_store(store) as projections:
        await Projector(store, projections).catch_up()
    lock = store.backend.run_lock()
    lease = await lock.acquire("s1", "r1", 5000)
    assert lease is not None and await lock.refresh(lease) and await lock.release(lease)
    async with store.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentlog-migrate'))")

    assert await every_pooled_connection(store.pool) == [CLEAN] * store.pool.get_max_size()


async def test_a_transaction_left_open_is_rolled_back_with_its_local_state(
    store: PostgresEventStore,
) -> None:
    async with store.pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("BEGIN")  # not managed: only the release ends it
        await conn.execute("SET LOCAL lock_timeout = '1234ms'")
        await conn.execute("SELECT pg_advisory_xact_lock(42)")
        await conn.execute("DECLARE left_open CURSOR FOR SELECT 1")
    # Released connections are handed out last in, first out: the next user gets it.
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid
        assert await left_behind(conn) == CLEAN
