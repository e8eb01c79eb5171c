"""Deleting a session from the log's SQLite file (see agentlog.infra.sessions.deletion for the
rules).

The tombstone is one `BEGIN IMMEDIATE` transaction on the store's writer thread: the write
lock is taken before the head is read, as every append does, so the tombstone's seq and
position are the next ones and no append interleaves; from its commit every append of the
session is refused (its newest event is the tombstone). The rows of the session's size (its
events, its transcripts' entries) are then removed in batches of REMOVAL_ROWS, each its own
short transaction on the writer thread, so the appends queued meanwhile run between two
batches (agentlog.infra.store.import_batches says why). A process that dies in between
leaves rows below the tombstone: a later delete of the session removes them before it
answers SessionDeleted.

Every connection runs with `secure_delete` (agentlog.infra.sqlite.threads), so the freed pages
are zeroed; the WAL is then checkpointed and truncated, so no old page image is left in it
either.
"""

from __future__ import annotations

import sqlite3
import time

from agentlog.domain.errors import SessionDeleted, UnknownSession
from agentlog.domain.events import SessionDeleted as SessionDeletedEvent
from agentlog.domain.events import encode_event, utc_now
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.infra.sqlite.importing import remove_rows, write_transaction
from agentlog.infra.store.import_batches import REMOVAL_ROWS

# Rows that name the session directly, table by table (projection tables only once they exist).
_BY_SESSION = (
    ("agentlog_idempotency", "session_id"),
    ("agentlog_runs", "session_id"),
    ("agentlog_turns_due", "session_id"),
    ("agentlog_attachments", "session_id"),
    ("agentlog_ui_states", "session_id"),
    ("agentlog_ui_messages", "session_id"),
    ("agentlog_session_summaries", "session_id"),
)


def _micros() -> int:
    return int(utc_now().timestamp() * 1_000_000)


def delete_session(conn: sqlite3.Connection, session_id: str, reason: str) -> tuple[int, int]:
    """Write the tombstone and remove the session's small rows (one transaction); returns
    (tombstone seq, events removed). Raises UnknownSession, SessionDeleted (the caller then
    removes any rows a dead process left below an earlier tombstone)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _delete(conn, session_id, reason)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def _delete(conn: sqlite3.Connection, session_id: str, reason: str) -> tuple[int, int]:
    if (
        conn.execute(
            "SELECT 1 FROM agentlog_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        is None
    ):
        raise UnknownSession(session_id)
    newest = conn.execute(
        "SELECT originator_version, topic, recorded_at FROM agentlog_events "
        "WHERE originator_id = ? ORDER BY originator_version DESC LIMIT 1",
        (session_id,),
    ).fetchone()
    if newest is not None and newest[1] == "session_deleted":
        raise SessionDeleted(session_id)
    # A session's seqs are dense from 1: its head is how many events the removal takes.
    head = newest[0] if newest is not None else 0
    (position,) = conn.execute(
        "SELECT COALESCE(MAX(notification_id), 0) FROM agentlog_events"
    ).fetchone()
    # The tombstone takes the next position: positions never go back, even when the deleted
    # session held the newest events (the next append computes its position from MAX).
    conn.execute(
        "INSERT INTO agentlog_events (notification_id, originator_id, originator_version, "
        "topic, state, run_id, recorded_at) VALUES (?, ?, ?, 'session_deleted', ?, NULL, ?)",
        (
            position + 1,
            session_id,
            head + 1,
            encode_event(SessionDeletedEvent(reason=reason, events_removed=head)),
            _micros(),
        ),
    )
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table, column in _BY_SESSION:
        if table in tables:
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (session_id,))
    if "agentlog_projection_checkpoints" in tables:
        # A projector folding a page it read before this commit must not write the session's
        # rows back: its save checks this revision and starts over.
        conn.execute("UPDATE agentlog_projection_checkpoints SET revision = revision + 1")
    return head + 1, head


def _remove_some(conn: sqlite3.Connection, session_id: str) -> int:
    """Up to REMOVAL_ROWS of a deleted session's events below its tombstone, else of its
    transcripts' entries, else its transcripts; returns the rows removed (0: nothing left)."""
    tombstone = conn.execute(
        "SELECT MAX(originator_version) FROM agentlog_events WHERE originator_id = ?",
        (session_id,),
    ).fetchone()[0]
    removed = remove_rows(conn, session_id, tombstone)
    if removed:
        return removed
    removed = conn.execute(
        "DELETE FROM agentlog_transcript_entries WHERE rowid IN (SELECT e.rowid FROM "
        "agentlog_transcript_entries AS e JOIN agentlog_transcripts AS s "
        "ON e.project_key = s.project_key AND e.agent_session_id = s.agent_session_id "
        f"WHERE s.session_id = ? LIMIT {REMOVAL_ROWS})",
        (session_id,),
    ).rowcount
    if removed:
        return removed
    return conn.execute(
        "DELETE FROM agentlog_transcripts WHERE session_id = ?", (session_id,)
    ).rowcount


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the file and truncate it; retried while a reader holds a snapshot."""
    for _ in range(50):
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
        time.sleep(0.02)


async def delete_session_in(
    store: SQLiteEventStore, session_id: str, reason: str
) -> tuple[int, int]:
    try:
        found = await store.threads.on_writer(lambda conn: delete_session(conn, session_id, reason))
    except SessionDeleted:
        await remove_deleted(store, session_id)  # what a process that died left, if anything
        raise
    await remove_deleted(store, session_id)
    return found


async def remove_deleted(store: SQLiteEventStore, session_id: str) -> None:
    """Remove a deleted session's rows, a batch per transaction, then checkpoint the WAL."""

    def remove_some(conn: sqlite3.Connection) -> int:
        return write_transaction(conn, lambda conn: _remove_some(conn, session_id))

    while await store.threads.on_writer(remove_some):
        pass
    # Always: the WAL still holds page images of the session's rows as they were.
    await store.threads.on_writer(_checkpoint)


def tables_holding(conn: sqlite3.Connection, text: str) -> list[str]:
    """Every table of the file with a row whose text holds `text` (blobs read as UTF-8)."""
    found = []
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for name in names:
        for row in conn.execute(f'SELECT * FROM "{name}"'):
            joined = " ".join(
                v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in row
            )
            if text in joined:
                found.append(name)
                break
    return found
