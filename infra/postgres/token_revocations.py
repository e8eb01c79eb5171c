"""Revoked session tokens in the log's PostgreSQL schema
(agentlog.domain.ports.token_revocations), seen by every instance on the database."""

from __future__ import annotations

from collections.abc import Collection

import asyncpg


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def schema_statements(schema: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {_ident(schema)}.agentlog_revoked_tokens (
                token_id text PRIMARY KEY,
                expires_at bigint NOT NULL)"""
    ]


TABLES = ("agentlog_revoked_tokens",)


class PostgresTokenRevocations:
    """`TokenRevocations` on PostgreSQL: one row per revoked token id."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        self.pool = pool
        t = f"{_ident(schema)}.agentlog_revoked_tokens"
        # Pruning the expired first keeps the table as small as the live tokens revoked.
        self._sql_prune = f"DELETE FROM {t} WHERE expires_at <= extract(epoch FROM now())"
        self._sql_revoke = (
            f"INSERT INTO {t} (token_id, expires_at) VALUES ($1, $2) "
            "ON CONFLICT (token_id) DO NOTHING RETURNING 1"
        )
        self._sql_revoked = f"SELECT token_id FROM {t} WHERE token_id = ANY($1::text[])"

    async def revoke(self, token_id: str, expires_at: int) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self._sql_prune)
            done = await conn.fetchval(self._sql_revoke, token_id, expires_at)
        return done is not None

    async def revoked(self, token_ids: Collection[str]) -> set[str]:
        if not token_ids:
            return set()
        rows = await self.pool.fetch(self._sql_revoked, list(token_ids))
        return {str(row["token_id"]) for row in rows}
