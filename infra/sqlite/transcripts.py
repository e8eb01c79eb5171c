"""The CLI's transcripts in the log's SQLite file (see agentlog.infra.store.transcripts for the
layout).

Statements run on the event store's own threads: writes on its one writer thread, inside
`BEGIN IMMEDIATE`, so an append's numbering and summary fold hold the database's write lock
from the first read to the commit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from agentlog.infra.sqlite.threads import SQLiteThreads
from agentlog.infra.store.transcripts import (
    StoredTranscript,
    SummaryFold,
    TranscriptKey,
    TranscriptListing,
    decode_entry,
    encode_entry,
    new_entries,
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
_CHUNK = 500  # bound parameters per statement, well under SQLite's limit


class SQLiteTranscripts:
    """`TranscriptTables` on SQLite."""

    def __init__(self, threads: SQLiteThreads) -> None:
        self._threads = threads

    async def append(
        self,
        key: TranscriptKey,
        session_id: str | None,
        entries: Sequence[dict[str, Any]],
        fold: SummaryFold | None,
        now_ms: int,
    ) -> None:
        await self._threads.on_writer(
            lambda conn: _in_transaction(
                conn, lambda: _append(conn, key, session_id, entries, fold, now_ms)
            )
        )

    async def load(self, key: TranscriptKey) -> list[dict[str, Any]] | None:
        rows = await self._threads.on_reader(
            lambda conn: conn.execute(
                f"SELECT entry FROM agentlog_transcript_entries WHERE {_KEY} AND subpath = ? "
                "ORDER BY n",
                (key.project_key, key.agent_session_id, key.subpath),
            ).fetchall()
        )
        return [decode_entry(row[0]) for row in rows] if rows else None

    async def owner(self, project_key: str, agent_session_id: str) -> str | None:
        row = await self._threads.on_reader(
            lambda conn: conn.execute(
                f"SELECT session_id FROM agentlog_transcripts WHERE {_KEY}",
                (project_key, agent_session_id),
            ).fetchone()
        )
        return None if row is None else row[0]

    async def list_main(self, project_key: str) -> list[TranscriptListing]:
        rows = await self._threads.on_reader(
            lambda conn: conn.execute(
                "SELECT agent_session_id, mtime, summary FROM agentlog_transcripts "
                "WHERE project_key = ? AND has_main = 1",
                (project_key,),
            ).fetchall()
        )
        return [
            TranscriptListing(
                agent_session_id=row[0],
                mtime=row[1],
                summary=json.loads(row[2]) if row[2] is not None else None,
            )
            for row in rows
        ]

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

        await self._threads.on_writer(lambda conn: _in_transaction(conn, lambda: delete(conn)))

    async def list_subkeys(self, project_key: str, agent_session_id: str) -> list[str]:
        rows = await self._threads.on_reader(
            lambda conn: conn.execute(
                "SELECT DISTINCT subpath FROM agentlog_transcript_entries "
                f"WHERE {_KEY} AND subpath <> '' ORDER BY subpath",
                (project_key, agent_session_id),
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def of_session(self, session_id: str) -> list[StoredTranscript]:
        def read(conn: sqlite3.Connection) -> list[StoredTranscript]:
            found: dict[TranscriptKey, list[dict[str, Any]]] = {}
            for project_key, agent_session_id, subpath, entry in conn.execute(
                "SELECT e.project_key, e.agent_session_id, e.subpath, e.entry "
                "FROM agentlog_transcripts AS t JOIN agentlog_transcript_entries AS e "
                "ON e.project_key = t.project_key AND e.agent_session_id = t.agent_session_id "
                "WHERE t.session_id = ? ORDER BY e.project_key, e.agent_session_id, "
                "e.subpath, e.n",
                (session_id,),
            ):
                key = TranscriptKey(project_key, agent_session_id, subpath)
                found.setdefault(key, []).append(decode_entry(entry))
            return [StoredTranscript(key=k, entries=v) for k, v in found.items()]

        return await self._threads.on_reader(read)

    async def delete_session(self, session_id: str) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            removed = conn.execute(
                "DELETE FROM agentlog_transcript_entries WHERE (project_key, agent_session_id) "
                "IN (SELECT project_key, agent_session_id FROM agentlog_transcripts "
                "WHERE session_id = ?)",
                (session_id,),
            ).rowcount
            conn.execute("DELETE FROM agentlog_transcripts WHERE session_id = ?", (session_id,))
            return removed

        return await self._threads.on_writer(
            lambda conn: _in_transaction(conn, lambda: delete(conn))
        )


def _in_transaction(conn: sqlite3.Connection, work: Any) -> Any:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        conn.execute("COMMIT")
        return result
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _append(
    conn: sqlite3.Connection,
    key: TranscriptKey,
    session_id: str | None,
    entries: Sequence[dict[str, Any]],
    fold: SummaryFold | None,
    now_ms: int,
) -> None:
    ids = (key.project_key, key.agent_session_id)
    found = conn.execute(
        f"SELECT session_id, summary FROM agentlog_transcripts WHERE {_KEY}", ids
    ).fetchone()
    if found is None:
        conn.execute(
            "INSERT INTO agentlog_transcripts (project_key, agent_session_id, session_id) "
            "VALUES (?, ?, ?)",
            (*ids, session_id),
        )
        summary = None
    else:
        if found[0] is None and session_id is not None:
            conn.execute(
                f"UPDATE agentlog_transcripts SET session_id = ? WHERE {_KEY}", (session_id, *ids)
            )
        summary = json.loads(found[1]) if found[1] is not None else None
    uuids = [u for u in {e.get("uuid") for e in entries} if isinstance(u, str) and u]
    known: set[str] = set()
    for start in range(0, len(uuids), _CHUNK):
        chunk = uuids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        known.update(
            row[0]
            for row in conn.execute(
                f"SELECT uuid FROM agentlog_transcript_entries WHERE {_KEY} AND subpath = ? "
                f"AND uuid IN ({marks})",
                (*ids, key.subpath, *chunk),
            )
        )
    kept = new_entries(entries, known)
    (last,) = conn.execute(
        f"SELECT COALESCE(MAX(n), 0) FROM agentlog_transcript_entries WHERE {_KEY} AND subpath = ?",
        (*ids, key.subpath),
    ).fetchone()
    conn.executemany(
        "INSERT INTO agentlog_transcript_entries (project_key, agent_session_id, subpath, n, "
        "uuid, entry) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (*ids, key.subpath, last + i, uuid, encode_entry(entry))
            for i, (uuid, entry) in enumerate(kept, start=1)
        ],
    )
    if key.subpath:
        return
    if fold is not None and kept:
        summary = fold(summary, [entry for _, entry in kept])
    conn.execute(
        f"UPDATE agentlog_transcripts SET has_main = 1, mtime = ?, summary = ? WHERE {_KEY}",
        (now_ms, json.dumps(summary) if summary is not None else None, *ids),
    )
