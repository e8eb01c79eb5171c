"""The CLI's transcripts in the log's SQLite file: the statements and driver calls under the
shared body (agentlog.infra.store.transcripts, which also describes the layout).

Statements run on the event store's own threads: writes on its one writer thread, inside
`BEGIN IMMEDIATE`, so an append's numbering and summary fold hold the database's write lock
from the first read to the commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from agentlog.domain.errors import SessionDeleted
from agentlog.infra.sqlite.threads import SQLiteThreads
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
    run_steps,
)

# Created by SQLiteEventStore's migration, beside the log.
SCHEMA = """
CREATE TABLE IF NOT EXISTS agentlog_transcripts (
    project_key TEXT NOT NULL,
    agent_session_id TEXT NOT NULL,
    session_id TEXT,
    mtime INTEGER NOT NULL DEFAULT 0,
    has_main INTEGER NOT NULL DEFAULT 0,
    summary TEXT,
    PRIMARY KEY (project_key, agent_session_id)
);
CREATE INDEX IF NOT EXISTS agentlog_transcripts_by_session
    ON agentlog_transcripts (session_id);
CREATE TABLE IF NOT EXISTS agentlog_transcript_entries (
    project_key TEXT NOT NULL,
    agent_session_id TEXT NOT NULL,
    subpath TEXT NOT NULL,
    n INTEGER NOT NULL,
    uuid TEXT,
    entry TEXT NOT NULL,
    PRIMARY KEY (project_key, agent_session_id, subpath, n)
);
CREATE UNIQUE INDEX IF NOT EXISTS agentlog_transcript_entries_by_uuid
    ON agentlog_transcript_entries (project_key, agent_session_id, subpath, uuid)
    WHERE uuid IS NOT NULL;
"""

_KEY = "project_key = ? AND agent_session_id = ?"
# Whether the session's newest event is its tombstone.
_SQL_DELETED = (
    "SELECT COALESCE((SELECT topic = 'session_deleted' FROM agentlog_events "
    "WHERE originator_id = ? ORDER BY originator_version DESC LIMIT 1), 0)"
)
T = TypeVar("T")
_CHUNK = 500  # bound parameters per statement, well under SQLite's limit


class SQLiteTranscripts(Transcripts):
    """`TranscriptTables` on SQLite, on the event store's threads."""

    def __init__(self, threads: SQLiteThreads) -> None:
        super().__init__(SQLiteTranscriptRows(threads))


class SQLiteTranscriptRows:
    """`TranscriptRows` on SQLite: writes on the store's one writer thread."""

    def __init__(self, threads: SQLiteThreads) -> None:
        self._threads = threads

    async def run_append(self, key: TranscriptKey, steps: AppendSteps) -> None:
        await self._write(lambda conn: run_steps(steps, lambda step: _answer(conn, key, step)))

    async def entries(self, key: TranscriptKey) -> list[str]:
        rows = await self._threads.on_reader(
            lambda conn: conn.execute(
                f"SELECT entry FROM agentlog_transcript_entries WHERE {_KEY} AND subpath = ? "
                "ORDER BY n",
                (key.project_key, key.agent_session_id, key.subpath),
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def owner(self, project_key: str, agent_session_id: str) -> str | None:
        row = await self._threads.on_reader(
            lambda conn: conn.execute(
                f"SELECT session_id FROM agentlog_transcripts WHERE {_KEY}",
                (project_key, agent_session_id),
            ).fetchone()
        )
        return None if row is None else row[0]

    async def main_rows(self, project_key: str) -> list[tuple[str, int, str | None]]:
        return await self._threads.on_reader(
            lambda conn: conn.execute(
                "SELECT agent_session_id, mtime, summary FROM agentlog_transcripts "
                "WHERE project_key = ? AND has_main = 1",
                (project_key,),
            ).fetchall()
        )

    async def delete(self, key: TranscriptKey) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            ids = (key.project_key, key.agent_session_id)
            if key.subpath:
                conn.execute(
                    f"DELETE FROM agentlog_transcript_entries WHERE {_KEY} AND subpath = ?",
                    (*ids, key.subpath),
                )
                return
            conn.execute(f"DELETE FROM agentlog_transcript_entries WHERE {_KEY}", ids)
            conn.execute(f"DELETE FROM agentlog_transcripts WHERE {_KEY}", ids)

        await self._write(delete)

    async def subkeys(self, project_key: str, agent_session_id: str) -> list[str]:
        rows = await self._threads.on_reader(
            lambda conn: conn.execute(
                "SELECT DISTINCT subpath FROM agentlog_transcript_entries "
                f"WHERE {_KEY} AND subpath <> '' ORDER BY subpath",
                (project_key, agent_session_id),
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def session_rows(self, session_id: str) -> list[tuple[str, str, str, str]]:
        return await self._threads.on_reader(
            lambda conn: conn.execute(
                "SELECT e.project_key, e.agent_session_id, e.subpath, e.entry "
                "FROM agentlog_transcripts AS t JOIN agentlog_transcript_entries AS e "
                "ON e.project_key = t.project_key AND e.agent_session_id = t.agent_session_id "
                "WHERE t.session_id = ? ORDER BY e.project_key, e.agent_session_id, "
                "e.subpath, e.n",
                (session_id,),
            ).fetchall()
        )

    async def delete_session(self, session_id: str) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            removed: int = conn.execute(
                "DELETE FROM agentlog_transcript_entries WHERE (project_key, agent_session_id) "
                "IN (SELECT project_key, agent_session_id FROM agentlog_transcripts "
                "WHERE session_id = ?)",
                (session_id,),
            ).rowcount
            conn.execute("DELETE FROM agentlog_transcripts WHERE session_id = ?", (session_id,))
            return removed

        return await self._write(delete)

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(conn)` on the writer thread inside `BEGIN IMMEDIATE`: the database's write
        lock from the first read to the commit."""

        def in_transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return await self._threads.on_writer(in_transaction)


def _answer(conn: sqlite3.Connection, key: TranscriptKey, step: AppendStep) -> Any:
    ids = (key.project_key, key.agent_session_id)
    match step:
        case RefuseDeletedSession(session_id=session_id):
            # Under the write lock (BEGIN IMMEDIATE) no delete can commit until we do.
            owner = session_id
            if owner is None:
                found = conn.execute(
                    f"SELECT session_id FROM agentlog_transcripts WHERE {_KEY}", ids
                ).fetchone()
                owner = None if found is None else found[0]
            if owner is not None and conn.execute(_SQL_DELETED, (owner,)).fetchone()[0]:
                raise SessionDeleted(owner)
        case BindTranscript(session_id=session_id):
            found = conn.execute(
                f"SELECT session_id, summary FROM agentlog_transcripts WHERE {_KEY}", ids
            ).fetchone()
            if found is None:
                conn.execute(
                    "INSERT INTO agentlog_transcripts (project_key, agent_session_id, "
                    "session_id) VALUES (?, ?, ?)",
                    (*ids, session_id),
                )
                return None
            if found[0] is None and session_id is not None:
                conn.execute(
                    f"UPDATE agentlog_transcripts SET session_id = ? WHERE {_KEY}",
                    (session_id, *ids),
                )
            return found[1]
        case KnownUuids(uuids=uuids):
            known: set[str] = set()
            for start in range(0, len(uuids), _CHUNK):
                chunk = uuids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                known.update(
                    row[0]
                    for row in conn.execute(
                        "SELECT uuid FROM agentlog_transcript_entries "
                        f"WHERE {_KEY} AND subpath = ? AND uuid IN ({marks})",
                        (*ids, key.subpath, *chunk),
                    )
                )
            return known
        case LastNumber():
            return conn.execute(
                "SELECT COALESCE(MAX(n), 0) FROM agentlog_transcript_entries "
                f"WHERE {_KEY} AND subpath = ?",
                (*ids, key.subpath),
            ).fetchone()[0]
        case InsertEntries(after=after, rows=rows):
            conn.executemany(
                "INSERT INTO agentlog_transcript_entries (project_key, agent_session_id, "
                "subpath, n, uuid, entry) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (*ids, key.subpath, after + i, uuid, entry)
                    for i, (uuid, entry) in enumerate(rows, start=1)
                ],
            )
        case MarkMain(mtime=mtime, summary=summary):
            conn.execute(
                f"UPDATE agentlog_transcripts SET has_main = 1, mtime = ?, summary = ? "
                f"WHERE {_KEY}",
                (mtime, summary, *ids),
            )
    return None
