"""The run lock in PostgreSQL: the lease of every server process sharing the database.

One row per session in `agentlog_run_leases` (created by the store's migration): the holding
run, its owner token and its expiry. Expiry is on the database's clock, so the processes'
clocks never need to agree. Each step is one statement, atomic by itself:
- acquire: insert, or take over a row whose lease expired (`ON CONFLICT ... WHERE expired`);
- refresh / release: only with the holder's token, and refresh only while unexpired, so an
  owner whose lease expired (even if nobody took it yet) can never extend it;
- a cancel request is written onto the holder's row; the holder polls it with its token.
It keeps the contract of agentlog.domain.ports.run_lock.RunLock (tests/contract/test_run_lock.py).
"""

from __future__ import annotations

import secrets

import asyncpg

from agentlog.domain.ports.run_lock import LockLease, check_ttl

_MS = "* interval '1 millisecond'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresRunLock:
    """Run leases in the store's own database (its pool; nothing of its own to close)."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        self.pool = pool
        t = f"{_ident(schema)}.agentlog_run_leases"
        self._sql_acquire = f"""
            INSERT INTO {t} AS l (session_id, run_id, token, expires_at)
            VALUES ($1, $2, $3, clock_timestamp() + $4 {_MS})
            ON CONFLICT (session_id) DO UPDATE SET run_id = EXCLUDED.run_id,
                token = EXCLUDED.token, expires_at = EXCLUDED.expires_at,
                cancel_reason = NULL, cancel_until = NULL
            WHERE l.expires_at <= clock_timestamp()
            RETURNING token"""
        self._sql_holder = (
            f"SELECT run_id FROM {t} WHERE session_id = $1 AND expires_at > clock_timestamp()"
        )
        # By token alone: a refresh that comes late (the owner's loop or its database was slow
        # past the TTL) still holds while nobody took the lease meanwhile; anyone who did
        # replaced the token (acquire), so the late owner learns it lost.
        self._sql_refresh = (
            f"UPDATE {t} SET expires_at = clock_timestamp() + $3 {_MS} "
            "WHERE session_id = $1 AND token = $2 RETURNING 1"
        )
        self._sql_release = f"DELETE FROM {t} WHERE session_id = $1 AND token = $2 RETURNING 1"
        self._sql_request_cancel = (
            f"UPDATE {t} SET cancel_reason = $3, cancel_until = clock_timestamp() + $4 {_MS} "
            "WHERE session_id = $1 AND run_id = $2"
        )
        self._sql_cancel_requested = (
            f"SELECT cancel_reason FROM {t} WHERE session_id = $1 AND token = $2 "
            "AND cancel_until > clock_timestamp()"
        )

    async def acquire(self, session_id: str, run_id: str, ttl_ms: int) -> LockLease | None:
        check_ttl(ttl_ms)
        lease = LockLease(session_id, run_id, secrets.token_hex(16), ttl_ms)
        taken = await self.pool.fetchval(self._sql_acquire, session_id, run_id, lease.token, ttl_ms)
        return lease if taken is not None else None

    async def holder(self, session_id: str) -> str | None:
        run_id: str | None = await self.pool.fetchval(self._sql_holder, session_id)
        return run_id

    async def refresh(self, lease: LockLease) -> bool:
        done = await self.pool.fetchval(
            self._sql_refresh, lease.session_id, lease.token, lease.ttl_ms
        )
        return done is not None

    async def release(self, lease: LockLease) -> bool:
        done = await self.pool.fetchval(self._sql_release, lease.session_id, lease.token)
        return done is not None

    async def request_cancel(
        self, session_id: str, run_id: str, reason: str, ttl_ms: int = 60_000
    ) -> None:
        check_ttl(ttl_ms)
        await self.pool.execute(self._sql_request_cancel, session_id, run_id, reason, ttl_ms)

    async def cancel_requested(self, lease: LockLease) -> str | None:
        reason: str | None = await self.pool.fetchval(
            self._sql_cancel_requested, lease.session_id, lease.token
        )
        return reason

    async def close(self) -> None:
        """The pool is the store's: nothing to close here."""
