"""Importing a session into the log's SQLite file (see agentlog.infra.sessions.importing).

The rows go first into a temporary table of the import's own connection (SQLite's temporary
database: writing it takes no lock on the log), while every other session's appends go on;
then `BEGIN IMMEDIATE` takes the write lock before the last position is read, as every append
does, and the rows are copied into the log inside SQLite. The lock is held for that copy, not
for building and writing the rows one by one.
"""

from __future__ import annotations

import sqlite3

from agentlog.domain.errors import SessionAlreadyExists
from agentlog.infra.sqlite.event_store import SQL_INDEX_RUNS
from agentlog.infra.sqlite.threads import connect
from agentlog.infra.store.imported_session import ImportedSession, ImportRefused
from agentlog.infra.store.projection_store import to_micros


def stage_import(path: str, session: ImportedSession) -> sqlite3.Connection:
    """The import's connection, its rows in a temporary table (blocking: run it in a thread);
    finish with `commit_import`, which closes it."""
    conn = connect(path)  # the stores' settings: WAL, synchronous=FULL, busy timeout
    try:
        conn.execute(
            "CREATE TEMP TABLE agentlog_import_rows (seq INTEGER PRIMARY KEY, topic TEXT, "
            "state BLOB, run_id TEXT, recorded_at INTEGER)"
        )
        conn.executemany(
            "INSERT INTO agentlog_import_rows VALUES (?, ?, ?, ?, ?)",
            [(e.seq, e.type, e.state, e.run_id, to_micros(e.time)) for e in session.events],
        )
    except BaseException:
        conn.close()
        raise
    return conn


def commit_import(conn: sqlite3.Connection, session: ImportedSession) -> int:
    """Copy the staged rows to the end of the log (blocking: run it in a thread); returns the
    first position. Closes the connection."""
    sid = session.session_id
    events = session.events
    try:
        # The database's write lock before the last position is read, as every append does.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute(
                "SELECT 1 FROM agentlog_sessions WHERE session_id = ?", (sid,)
            ).fetchone():
                raise SessionAlreadyExists(sid)
            if conn.execute(
                "SELECT 1 FROM agentlog_events WHERE originator_id = ? LIMIT 1", (sid,)
            ).fetchone():
                raise ImportRefused(
                    f"the log holds events of session {sid!r} but no sessions row: "
                    "run agentlog verify"
                )
            (position,) = conn.execute(
                "SELECT COALESCE(MAX(notification_id), 0) FROM agentlog_events"
            ).fetchone()
            (first_seq,) = conn.execute("SELECT MIN(seq) FROM agentlog_import_rows").fetchone()
            # Seqs are dense (ImportedSession): position + (seq - first + 1) numbers them in order.
            conn.execute(
                "INSERT INTO agentlog_events (notification_id, originator_id, "
                "originator_version, topic, state, run_id, recorded_at) "
                "SELECT ? + seq - ? + 1, ?, seq, topic, state, run_id, recorded_at "
                "FROM agentlog_import_rows ORDER BY seq",
                (position, first_seq, sid),
            )
            conn.execute(
                "INSERT INTO agentlog_sessions (session_id, created_at) VALUES (?, ?)",
                (sid, to_micros(events[0].time)),
            )
            conn.execute(SQL_INDEX_RUNS + " AND s.originator_id = ?", (sid,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return int(position) + 1
