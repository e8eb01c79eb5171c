"""The CLI's transcripts in the log's PostgreSQL schema: the statements and driver calls under
the shared body (agentlog.infra.store.transcripts, which also describes the layout).

An append first upserts the transcript's row (`ON CONFLICT DO UPDATE` locks it to COMMIT),
then reads the uuids it holds and its last number, inserts, and writes the folded summary: two
appends to one transcript take turns, appends to different transcripts do not wait for each
other, and none of them holds the log's head lock.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from agentlog.domain.errors import SessionDeleted
from agentlog.infra.store.transcripts import (
    AppendStep,
    AppendSteps,
    BindTranscript,
    InsertEntries,
    KnownUuids,
    LastNumber,
    MarkMain,
    RefuseDeletedSession,
    TranscriptKey,
    Transcripts,
    run_steps_async,
)

TABLES = ("agentlog_transcripts", "agentlog_transcript_entries")


def schema_statements(schema: str) -> list[str]:
    """DDL, idempotent; run by agentlog.infra.postgres.event_store.migrate."""
    s = _ident(schema)
    return [
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_transcripts (
                project_key text NOT NULL,
                agent_session_id text NOT NULL,
                session_id text,
                mtime bigint NOT NULL DEFAULT 0,
                has_main boolean NOT NULL DEFAULT false,
                summary text,
                PRIMARY KEY (project_key, agent_session_id))""",
        f"""CREATE INDEX IF NOT EXISTS agentlog_transcripts_by_session
                ON {s}.agentlog_transcripts (session_id)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_transcript_entries (
                project_key text NOT NULL,
                agent_session_id text NOT NULL,
                subpath text NOT NULL,
                n bigint NOT NULL,
                uuid text,
                entry text NOT NULL,
                PRIMARY KEY (project_key, agent_session_id, subpath, n))""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS agentlog_transcript_entries_by_uuid
                ON {s}.agentlog_transcript_entries (project_key, agent_session_id, subpath, uuid)
                WHERE uuid IS NOT NULL""",
    ]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresTranscripts(Transcripts):
    """`TranscriptTables` on PostgreSQL, on the event store's pool."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        super().__init__(PostgresTranscriptRows(pool, schema))


class PostgresTranscriptRows:
    """`TranscriptRows` on PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        self.pool = pool
        t = _ident(schema)
        self._t = t
        key = "project_key = $1 AND agent_session_id = $2"
        self._key = key
        self._sql_owner = f"SELECT session_id FROM {t}.agentlog_transcripts WHERE {key}"
        # The tombstone is read by a statement of its own after the lock is granted, so under
        # READ COMMITTED it sees a delete that held the lock before us.
        self._sql_lock_session = (
            f"SELECT 1 FROM {t}.agentlog_sessions WHERE session_id = $1 FOR SHARE"
        )
        self._sql_tombstoned = (
            f"SELECT COALESCE((SELECT topic = 'session_deleted' FROM {t}.agentlog_events "
            "WHERE originator_id = $1 ORDER BY originator_version DESC LIMIT 1), false)"
        )
        # The upsert locks the transcript's row to COMMIT: the append's first step.
        self._sql_bind = f"""
            INSERT INTO {t}.agentlog_transcripts AS t (project_key, agent_session_id, session_id)
            VALUES ($1, $2, $3)
            ON CONFLICT (project_key, agent_session_id)
            DO UPDATE SET session_id = COALESCE(t.session_id, excluded.session_id)
            RETURNING summary"""
        self._sql_known = (
            f"SELECT uuid FROM {t}.agentlog_transcript_entries "
            f"WHERE {key} AND subpath = $3 AND uuid = ANY($4::text[])"
        )
        self._sql_last = (
            f"SELECT COALESCE(MAX(n), 0) FROM {t}.agentlog_transcript_entries "
            f"WHERE {key} AND subpath = $3"
        )
        self._sql_insert = f"""
            INSERT INTO {t}.agentlog_transcript_entries
                (project_key, agent_session_id, subpath, n, uuid, entry)
            SELECT $1, $2, $3, $4::bigint + e.i, e.uuid, e.entry
            FROM unnest($5::text[], $6::text[]) WITH ORDINALITY AS e(uuid, entry, i)"""
        self._sql_main = (
            f"UPDATE {t}.agentlog_transcripts SET has_main = true, mtime = $3, summary = $4 "
            f"WHERE {key}"
        )
        self._sql_load = (
            f"SELECT entry FROM {t}.agentlog_transcript_entries WHERE {key} AND subpath = $3 "
            "ORDER BY n"
        )

    async def run_append(self, key: TranscriptKey, steps: AppendSteps) -> None:
        ids = (key.project_key, key.agent_session_id)
        async with self.pool.acquire() as conn, conn.transaction():

            async def answer(step: AppendStep) -> Any:
                match step:
                    case RefuseDeletedSession(session_id=session_id):
                        owner = session_id
                        if owner is None:
                            owner = await conn.fetchval(self._sql_owner, *ids)
                        # A delete locks the session's row FOR UPDATE before it removes the
                        # transcripts; this share lock, taken before the transcript's own row
                        # (the delete's order too), makes the two take turns: a delete that
                        # committed first is seen by the next statement (READ COMMITTED), and
                        # one that comes second sees what this append wrote.
                        if owner is not None:
                            await conn.execute(self._sql_lock_session, owner)
                            if await conn.fetchval(self._sql_tombstoned, owner):
                                raise SessionDeleted(owner)
                    case BindTranscript(session_id=session_id):
                        return await conn.fetchval(self._sql_bind, *ids, session_id)
                    case KnownUuids(uuids=uuids):
                        found = await conn.fetch(self._sql_known, *ids, key.subpath, uuids)
                        return {row[0] for row in found}
                    case LastNumber():
                        return await conn.fetchval(self._sql_last, *ids, key.subpath)
                    case InsertEntries(after=after, rows=rows):
                        await conn.execute(
                            self._sql_insert,
                            *ids,
                            key.subpath,
                            after,
                            [uuid for uuid, _ in rows],
                            [entry for _, entry in rows],
                        )
                    case MarkMain(mtime=mtime, summary=summary):
                        await conn.execute(self._sql_main, *ids, mtime, summary)
                return None

            await run_steps_async(steps, answer)

    async def entries(self, key: TranscriptKey) -> list[str]:
        rows = await self.pool.fetch(
            self._sql_load, key.project_key, key.agent_session_id, key.subpath
        )
        return [row[0] for row in rows]

    async def owner(self, project_key: str, agent_session_id: str) -> str | None:
        owner: str | None = await self.pool.fetchval(
            f"SELECT session_id FROM {self._t}.agentlog_transcripts WHERE {self._key}",
            project_key,
            agent_session_id,
        )
        return owner

    async def main_rows(self, project_key: str) -> list[tuple[str, int, str | None]]:
        rows = await self.pool.fetch(
            f"SELECT agent_session_id, mtime, summary FROM {self._t}.agentlog_transcripts "
            "WHERE project_key = $1 AND has_main",
            project_key,
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def delete(self, key: TranscriptKey) -> None:
        ids = (key.project_key, key.agent_session_id)
        t = self._t
        async with self.pool.acquire() as conn, conn.transaction():
            if key.subpath:
                await conn.execute(
                    f"DELETE FROM {t}.agentlog_transcript_entries WHERE {self._key} "
                    "AND subpath = $3",
                    *ids,
                    key.subpath,
                )
                return
            await conn.execute(f"DELETE FROM {t}.agentlog_transcripts WHERE {self._key}", *ids)
            await conn.execute(
                f"DELETE FROM {t}.agentlog_transcript_entries WHERE {self._key}", *ids
            )

    async def subkeys(self, project_key: str, agent_session_id: str) -> list[str]:
        rows = await self.pool.fetch(
            f"SELECT DISTINCT subpath FROM {self._t}.agentlog_transcript_entries "
            f"WHERE {self._key} AND subpath <> '' ORDER BY subpath",
            project_key,
            agent_session_id,
        )
        return [row[0] for row in rows]

    async def session_rows(self, session_id: str) -> list[tuple[str, str, str, str]]:
        t = self._t
        rows = await self.pool.fetch(
            f"""SELECT e.project_key, e.agent_session_id, e.subpath, e.entry
                FROM {t}.agentlog_transcripts AS t JOIN {t}.agentlog_transcript_entries AS e
                ON e.project_key = t.project_key AND e.agent_session_id = t.agent_session_id
                WHERE t.session_id = $1
                ORDER BY e.project_key, e.agent_session_id, e.subpath, e.n""",
            session_id,
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    async def delete_session(self, session_id: str) -> int:
        t = self._t
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                f"""DELETE FROM {t}.agentlog_transcript_entries AS e
                    USING {t}.agentlog_transcripts AS t
                    WHERE t.session_id = $1 AND e.project_key = t.project_key
                    AND e.agent_session_id = t.agent_session_id""",
                session_id,
            )
            await conn.execute(
                f"DELETE FROM {t}.agentlog_transcripts WHERE session_id = $1", session_id
            )
        return int(status.split()[-1])
