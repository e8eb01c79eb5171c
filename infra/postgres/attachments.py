"""Files sent with prompts in the log's PostgreSQL schema (agentlog.infra.store.attachments),
read by every instance on the database."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from agentlog.domain.errors import SessionDeleted, UnknownSession
from agentlog.infra.store.attachments import StoredFile


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def schema_statements(schema: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {_ident(schema)}.agentlog_attachments (
                session_id text NOT NULL,
                sha256 text NOT NULL,
                media_type text NOT NULL,
                size bigint NOT NULL,
                filename text,
                data bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (session_id, sha256))"""
    ]


TABLES = ("agentlog_attachments",)


class PostgresAttachments:
    """`Attachments` on PostgreSQL: one row per (session, sha256)."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        self.pool = pool
        s = _ident(schema)
        t = f"{s}.agentlog_attachments"
        # FOR SHARE on the session's row: a delete takes it FOR UPDATE, so it waits for this
        # write to commit (and deletes its rows), or this write waits for the delete and then
        # sees the tombstone.
        self._sql_session = f"SELECT 1 FROM {s}.agentlog_sessions WHERE session_id = $1 FOR SHARE"
        self._sql_newest = (
            f"SELECT topic FROM {s}.agentlog_events WHERE originator_id = $1 "
            "ORDER BY originator_version DESC LIMIT 1"
        )
        self._sql_put = (
            f"INSERT INTO {t} (session_id, sha256, media_type, size, filename, data) "
            "SELECT $1, f.sha256, f.media_type, f.size, f.filename, f.data FROM "
            "unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::bytea[]) "
            "AS f (sha256, media_type, size, filename, data) "
            "ON CONFLICT (session_id, sha256) DO NOTHING"
        )
        self._sql_get = (
            f"SELECT media_type, size, filename, data FROM {t} "
            "WHERE session_id = $1 AND sha256 = $2"
        )
        self._sql_of_session = (
            f"SELECT sha256, media_type, size, filename, data FROM {t} "
            "WHERE session_id = $1 ORDER BY sha256"
        )
        self._sql_copy = (
            f"INSERT INTO {t} (session_id, sha256, media_type, size, filename, data) "
            f"SELECT $1, sha256, media_type, size, filename, data FROM {t} "
            "WHERE session_id = $2 AND sha256 = ANY($3::text[]) "
            "ON CONFLICT (session_id, sha256) DO NOTHING"
        )

    async def _refuse_gone(self, conn: asyncpg.Connection, session_id: str) -> None:
        if await conn.fetchval(self._sql_session, session_id) is None:
            raise UnknownSession(session_id)
        if await conn.fetchval(self._sql_newest, session_id) == "session_deleted":
            raise SessionDeleted(session_id)

    async def put(self, session_id: str, files: Sequence[StoredFile]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._refuse_gone(conn, session_id)
            status = await conn.execute(
                self._sql_put,
                session_id,
                [f.sha256 for f in files],
                [f.media_type for f in files],
                [f.size for f in files],
                [f.filename for f in files],
                [f.data for f in files],
            )
        return int(status.rsplit(" ", 1)[-1])

    async def get(self, session_id: str, sha256: str) -> StoredFile | None:
        row = await self.pool.fetchrow(self._sql_get, session_id, sha256)
        if row is None:
            return None
        return StoredFile(
            sha256=sha256,
            media_type=row["media_type"],
            size=row["size"],
            filename=row["filename"],
            data=bytes(row["data"]),
        )

    async def of_session(self, session_id: str) -> list[StoredFile]:
        rows = await self.pool.fetch(self._sql_of_session, session_id)
        return [
            StoredFile(
                sha256=r["sha256"],
                media_type=r["media_type"],
                size=r["size"],
                filename=r["filename"],
                data=bytes(r["data"]),
            )
            for r in rows
        ]

    async def copy(self, from_session: str, to_session: str, sha256s: Sequence[str]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._refuse_gone(conn, to_session)
            status = await conn.execute(self._sql_copy, to_session, from_session, list(sha256s))
        return int(status.rsplit(" ", 1)[-1])
