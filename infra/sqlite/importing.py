"""Importing a session into the log's SQLite file, batch by batch (the protocol and why:
agentlog.infra.store.import_batches; what an import is: agentlog.infra.sessions.importing).

Every batch is one `BEGIN IMMEDIATE` transaction on the store's writer thread, so the write
lock is taken before the last position is read, as every append does, and the appends queued
on that thread meanwhile run between two batches.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from agentlog.domain.errors import SessionAlreadyExists
from agentlog.domain.events import utc_now
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.infra.store.import_batches import (
    REMOVAL_ROWS,
    ImportRow,
    ImportTakenOver,
    RunRow,
    SessionImporting,
)
from agentlog.infra.store.imported_session import ImportRefused
from agentlog.infra.store.projection_store import to_micros
from agentlog.infra.store.wire_form import is_wire_form

T = TypeVar("T")

# The projections' rows of one session (a partial import's are removed with it, as a
# deletion removes a deleted session's).
_PROJECTIONS = ("agentlog_ui_states", "agentlog_ui_messages", "agentlog_session_summaries")


def write_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work` in one `BEGIN IMMEDIATE` transaction: the write lock before anything is read."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a COMMIT that failed may have rolled back already
            conn.execute("ROLLBACK")
        raise
    return result


def _is_owner(conn: sqlite3.Connection, session_id: str, owner: str) -> bool:
    found = conn.execute(
        "SELECT owner FROM agentlog_imports WHERE session_id = ?", (session_id,)
    ).fetchone()
    return found is not None and found[0] == owner


class SQLiteImports:
    """agentlog.infra.store.import_batches.BatchedImports on the store's writer thread."""

    def __init__(self, store: SQLiteEventStore) -> None:
        self.store = store

    async def importing(self, session_ids: list[str]) -> set[str]:
        """Those of the sessions being imported (a reader thread: no lock)."""
        ids = json.dumps(session_ids)  # one parameter, however many ids
        rows = await self.store.threads.on_reader(
            lambda conn: conn.execute(
                "SELECT session_id FROM agentlog_imports "
                "WHERE session_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchall()
        )
        return {row[0] for row in rows}

    async def stale(self, stale_after: float) -> list[str]:
        stale_before = to_micros(utc_now()) - int(stale_after * 1_000_000)
        rows = await self.store.threads.on_reader(
            lambda conn: conn.execute(
                "SELECT session_id FROM agentlog_imports WHERE heartbeat < ?", (stale_before,)
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def begin(self, session_id: str, owner: str, stale_after: float) -> bool:
        now = to_micros(utc_now())
        stale_before = now - int(stale_after * 1_000_000)

        def begin(conn: sqlite3.Connection) -> bool:
            if conn.execute(
                "SELECT 1 FROM agentlog_sessions WHERE session_id = ?", (session_id,)
            ).fetchone():
                raise SessionAlreadyExists(session_id)
            marker = conn.execute(
                "SELECT heartbeat FROM agentlog_imports WHERE session_id = ?", (session_id,)
            ).fetchone()
            if marker is not None:
                if marker[0] >= stale_before:
                    raise SessionImporting(session_id)
                # Its process died: take it over; the caller removes what it left.
                conn.execute(
                    "UPDATE agentlog_imports SET owner = ?, heartbeat = ? WHERE session_id = ?",
                    (owner, now, session_id),
                )
                return True
            if conn.execute(
                "SELECT 1 FROM agentlog_events WHERE originator_id = ? LIMIT 1", (session_id,)
            ).fetchone():
                raise ImportRefused(
                    f"the log holds events of session {session_id!r} but no sessions row: "
                    "run agentlog verify"
                )
            conn.execute(
                "INSERT INTO agentlog_imports (session_id, owner, heartbeat) VALUES (?, ?, ?)",
                (session_id, owner, now),
            )
            return False

        return await self.store.threads.on_writer(lambda conn: write_transaction(conn, begin))

    async def write(
        self,
        session_id: str,
        owner: str,
        rows: Sequence[ImportRow],
        last: tuple[datetime, list[RunRow]] | None,
    ) -> int:
        # Built here, on the event loop, a batch at a time: a few milliseconds.
        values = [
            (seq, session_id, seq, topic, state, run_id, to_micros(at))
            for seq, topic, state, run_id, at in rows
        ]
        now = to_micros(utc_now())
        encoding = self.store.wire_encoding
        marks: list[int | None] = []

        def write(conn: sqlite3.Connection) -> int:
            if not _is_owner(conn, session_id, owner):
                raise ImportTakenOver(session_id)
            (position,) = conn.execute(
                "SELECT COALESCE(MAX(notification_id), 0) FROM agentlog_events"
            ).fetchone()
            # Rows are in seq order: the first row's seq numbers the batch from `position`.
            offset = position + 1 - values[0][0]
            conn.executemany(
                "INSERT INTO agentlog_events (notification_id, originator_id, "
                "originator_version, topic, state, run_id, recorded_at, encoding) "
                "VALUES (? + ?, ?, ?, ?, ?, ?, ?, ?)",
                [(offset, *row, mark) for row, mark in zip(values, marks, strict=True)],
            )
            if last is None:
                conn.execute(
                    "UPDATE agentlog_imports SET heartbeat = ? WHERE session_id = ?",
                    (now, session_id),
                )
            else:
                created_at, runs = last
                conn.execute(
                    "INSERT INTO agentlog_sessions (session_id, created_at) VALUES (?, ?)",
                    (session_id, to_micros(created_at)),
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO agentlog_runs (session_id, run_id, started_seq, "
                    "ended_seq) VALUES (?, ?, ?, ?)",
                    [(session_id, *run) for run in runs],
                )
                conn.execute("DELETE FROM agentlog_imports WHERE session_id = ?", (session_id,))
            return int(position) + 1

        def mark_then_write(conn: sqlite3.Connection) -> int:
            # As an append marks its rows (agentlog.infra.store.wire_form): an imported event
            # whose stored JSON this version encodes the same way is sent as stored. Checked
            # on the writer thread before the write lock; an export's other key order, a
            # newer version's fields, leave the row unmarked.
            marks[:] = [encoding if is_wire_form(row[4]) else None for row in values]
            return write_transaction(conn, write)

        return await self.store.threads.on_writer(mark_then_write)

    async def remove_some(self, session_id: str, owner: str) -> int:
        def remove(conn: sqlite3.Connection) -> int:
            if not _is_owner(conn, session_id, owner):
                return 0
            return remove_rows(conn, session_id, None)

        return await self.store.threads.on_writer(lambda conn: write_transaction(conn, remove))

    async def end(self, session_id: str, owner: str, release: bool, removed: int) -> None:
        now = to_micros(utc_now())

        def end(conn: sqlite3.Connection) -> None:
            if not _is_owner(conn, session_id, owner):
                return
            if removed:
                conn.execute(
                    "INSERT INTO agentlog_removed_imports (session_id, events_removed, "
                    "removed_at) VALUES (?, ?, ?)",
                    (session_id, removed, now),
                )
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            for table in _PROJECTIONS:
                if table in tables:
                    conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
            if "agentlog_projection_checkpoints" in tables:
                # As a deletion does: a projector folding a page it read before this commit
                # must not write the partial session's rows back.
                conn.execute("UPDATE agentlog_projection_checkpoints SET revision = revision + 1")
            if release:
                conn.execute("DELETE FROM agentlog_imports WHERE session_id = ?", (session_id,))

        await self.store.threads.on_writer(lambda conn: write_transaction(conn, end))


async def positions_removed(store: SQLiteEventStore) -> int:
    """Events that removed partial imports took out of the log: gaps in its positions."""
    rows = await store.threads.on_reader(
        lambda conn: conn.execute(
            "SELECT COALESCE(SUM(events_removed), 0) FROM agentlog_removed_imports"
        ).fetchall()
    )
    return int(rows[0][0])


def remove_rows(conn: sqlite3.Connection, session_id: str, below_seq: int | None) -> int:
    """Delete up to REMOVAL_ROWS of the session's events (those below `below_seq` when
    given); returns how many. Inside the caller's transaction."""
    below = "" if below_seq is None else " AND originator_version < ?"
    params: tuple[object, ...] = (session_id,) if below_seq is None else (session_id, below_seq)
    return conn.execute(
        "DELETE FROM agentlog_events WHERE notification_id IN (SELECT notification_id "
        f"FROM agentlog_events WHERE originator_id = ?{below} LIMIT {REMOVAL_ROWS})",
        params,
    ).rowcount
