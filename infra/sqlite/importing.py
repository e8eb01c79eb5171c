"""Importing a session into the log's SQLite file (see agentlog.infra.sessions.importing).

`BEGIN IMMEDIATE` takes the write lock before the last position is read, as every append does.
"""

from __future__ import annotations

from agentlog.domain.errors import SessionAlreadyExists
from agentlog.infra.sqlite.event_store import SQL_INDEX_RUNS
from agentlog.infra.sqlite.threads import connect
from agentlog.infra.store.imported_session import ImportedSession, ImportRefused
from agentlog.infra.store.projection_store import to_micros


def import_session_at(path: str, session: ImportedSession) -> int:
    """Write the session's rows at the end of the log (blocking: run it in a thread); returns
    its first position."""
    sid = session.session_id
    events = session.events
    conn = connect(path)  # the stores' settings: WAL, synchronous=FULL, busy timeout
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
            conn.executemany(
                "INSERT INTO agentlog_events (notification_id, originator_id, "
                "originator_version, topic, state, run_id, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (position + i + 1, sid, e.seq, e.type, e.state, e.run_id, to_micros(e.time))
                    for i, e in enumerate(events)
                ],
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
