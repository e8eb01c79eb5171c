"""Files sent with prompts in the log's SQLite file (agentlog.infra.store.attachments)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from agentlog.domain.errors import SessionDeleted, UnknownSession
from agentlog.infra.sqlite.threads import SQLiteThreads
from agentlog.infra.store.attachments import StoredFile

# Created by SQLiteEventStore's migration, beside the log.
SCHEMA = """
CREATE TABLE IF NOT EXISTS agentlog_attachments (
    session_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    filename TEXT,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    PRIMARY KEY (session_id, sha256)
);
"""

T = TypeVar("T")
_CHUNK = 500  # bound parameters per statement, well under SQLite's limit


class SQLiteAttachments:
    """`Attachments` on SQLite: writes on the store's one writer thread."""

    def __init__(self, threads: SQLiteThreads) -> None:
        self._threads = threads

    async def put(self, session_id: str, files: Sequence[StoredFile]) -> int:
        def put(conn: sqlite3.Connection) -> int:
            _refuse_gone(conn, session_id)
            added = 0
            for f in files:
                added += conn.execute(
                    "INSERT OR IGNORE INTO agentlog_attachments (session_id, sha256, "
                    "media_type, size, filename, data) VALUES (?, ?, ?, ?, ?, ?)",
                    (session_id, f.sha256, f.media_type, f.size, f.filename, f.data),
                ).rowcount
            return added

        return await self._write(put)

    async def get(self, session_id: str, sha256: str) -> StoredFile | None:
        row = await self._threads.on_reader(
            lambda conn: conn.execute(
                "SELECT media_type, size, filename, data FROM agentlog_attachments "
                "WHERE session_id = ? AND sha256 = ?",
                (session_id, sha256),
            ).fetchone()
        )
        if row is None:
            return None
        return StoredFile(
            sha256=sha256, media_type=row[0], size=row[1], filename=row[2], data=bytes(row[3])
        )

    async def of_session(self, session_id: str) -> list[StoredFile]:
        rows = await self._threads.on_reader(
            lambda conn: conn.execute(
                "SELECT sha256, media_type, size, filename, data FROM agentlog_attachments "
                "WHERE session_id = ? ORDER BY sha256",
                (session_id,),
            ).fetchall()
        )
        return [
            StoredFile(sha256=r[0], media_type=r[1], size=r[2], filename=r[3], data=bytes(r[4]))
            for r in rows
        ]

    async def copy(self, from_session: str, to_session: str, sha256s: Sequence[str]) -> int:
        def copy(conn: sqlite3.Connection) -> int:
            _refuse_gone(conn, to_session)
            added = 0
            hashes = list(dict.fromkeys(sha256s))
            for start in range(0, len(hashes), _CHUNK):
                chunk = hashes[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                added += conn.execute(
                    "INSERT OR IGNORE INTO agentlog_attachments (session_id, sha256, "
                    "media_type, size, filename, data) SELECT ?, sha256, media_type, size, "
                    "filename, data FROM agentlog_attachments "
                    f"WHERE session_id = ? AND sha256 IN ({marks})",
                    (to_session, from_session, *chunk),
                ).rowcount
            return added

        return await self._write(copy)

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(conn)` inside `BEGIN IMMEDIATE`: a delete cannot commit between the check
        of the session and the rows written for it."""

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


def _refuse_gone(conn: sqlite3.Connection, session_id: str) -> None:
    if (
        conn.execute(
            "SELECT 1 FROM agentlog_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        is None
    ):
        raise UnknownSession(session_id)
    newest = conn.execute(
        "SELECT topic FROM agentlog_events WHERE originator_id = ? "
        "ORDER BY originator_version DESC LIMIT 1",
        (session_id,),
    ).fetchone()
    if newest is not None and newest[0] == "session_deleted":
        raise SessionDeleted(session_id)
