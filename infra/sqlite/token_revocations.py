"""Revoked session tokens in the log's SQLite file (agentlog.domain.ports.token_revocations)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection

from agentlog.infra.sqlite.threads import SQLiteThreads

# Created by SQLiteEventStore's migration, beside the log.
SCHEMA = """
CREATE TABLE IF NOT EXISTS agentlog_revoked_tokens (
    token_id TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
"""


class SQLiteTokenRevocations:
    """`TokenRevocations` on SQLite: writes on the store's one writer thread."""

    def __init__(self, threads: SQLiteThreads) -> None:
        self._threads = threads

    async def revoke(self, token_id: str, expires_at: int) -> bool:
        now = int(time.time())

        def write(conn: sqlite3.Connection) -> bool:
            with conn:  # one transaction: prune the expired, then record this one
                conn.execute("DELETE FROM agentlog_revoked_tokens WHERE expires_at <= ?", (now,))
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO agentlog_revoked_tokens (token_id, expires_at) "
                    "VALUES (?, ?)",
                    (token_id, expires_at),
                )
                return cursor.rowcount == 1

        return await self._threads.on_writer(write)

    async def revoked(self, token_ids: Collection[str]) -> set[str]:
        ids = list(token_ids)[:500]  # bound parameters per statement, well under the limit
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        rows = await self._threads.on_reader(
            lambda conn: conn.execute(
                f"SELECT token_id FROM agentlog_revoked_tokens WHERE token_id IN ({marks})", ids
            ).fetchall()
        )
        return {str(row[0]) for row in rows}
