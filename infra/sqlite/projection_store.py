"""The projections' rows in the log's own SQLite file, on threads of our own.

Writes take `BEGIN IMMEDIATE`, the database's one write lock, which appends need too; so a
claim is optimistic here: the events are read and folded without that lock, and only the save
takes it, for as long as it takes to check the revision and write the rows. Within one process
claims also take turns on an asyncio lock, so the projector and a rebuild never collide.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from agentlog.infra.sqlite.threads import SQLiteThreads
from agentlog.infra.store.projection_store import (
    PROJECTOR_NAME,
    SUMMARY_COLUMNS,
    SUMMARY_COLUMNS_ADDED,
    Changes,
    Checkpoint,
    States,
    StoredPage,
    Summaries,
    decode_message,
    decode_state,
    from_micros,
    joined_state,
    state_writes,
    summary_from_row,
    summary_values,
    to_micros,
)
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.ui_messages import ConversationState, Message
from agentlog.projections.ui_messages.paging import UnknownCursor

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS agentlog_projection_checkpoints (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    next_generation INTEGER NOT NULL
);
INSERT INTO agentlog_projection_checkpoints (name, position, generation, revision,
    next_generation) VALUES ('projections', 0, 1, 0, 1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS agentlog_ui_states (
    generation INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    state BLOB NOT NULL,
    message_count INTEGER,
    PRIMARY KEY (generation, session_id)
);
CREATE TABLE IF NOT EXISTS agentlog_ui_messages (
    generation INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    message BLOB NOT NULL,
    PRIMARY KEY (generation, session_id, position)
);
CREATE INDEX IF NOT EXISTS agentlog_ui_messages_by_id
    ON agentlog_ui_messages (generation, session_id, message_id);
CREATE TABLE IF NOT EXISTS agentlog_session_summaries (
    generation INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    title TEXT,
    status TEXT NOT NULL,
    head INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    tool_calls INTEGER NOT NULL,
    active_run_id TEXT,
    active_run_agent TEXT,
    usage TEXT,
    run_marks TEXT,
    agent TEXT,
    PRIMARY KEY (generation, session_id)
);
"""

_LIVE = f"(SELECT generation FROM agentlog_projection_checkpoints WHERE name = '{PROJECTOR_NAME}')"
# Upserts guarded so that a row never moves backwards: a row at a later seq is kept (and
# then so are the session's message rows: they are written only when the header was).
_UPSERT_STATE = """
INSERT INTO agentlog_ui_states AS t (generation, session_id, last_seq, state, message_count)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (generation, session_id) DO UPDATE
SET last_seq = excluded.last_seq, state = excluded.state,
    message_count = excluded.message_count
WHERE t.last_seq < excluded.last_seq
"""
_UPSERT_MESSAGE = """
INSERT INTO agentlog_ui_messages (generation, session_id, position, message_id, message)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (generation, session_id, position) DO UPDATE
SET message_id = excluded.message_id, message = excluded.message
"""
_TRUNCATE_MESSAGES = (
    "DELETE FROM agentlog_ui_messages WHERE generation = ? AND session_id = ? AND position >= ?"
)
# Messages of a session in order, from a position on.
_MESSAGES_FROM = (
    "SELECT message FROM agentlog_ui_messages WHERE generation = ? AND session_id = ? "
    "AND position >= ? ORDER BY position"
)
_UPSERT_SUMMARY = f"""
INSERT INTO agentlog_session_summaries AS t (generation, {SUMMARY_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (generation, session_id) DO UPDATE
SET title = excluded.title, status = excluded.status, head = excluded.head,
    created_at = excluded.created_at, last_activity_at = excluded.last_activity_at,
    runs = excluded.runs, tool_calls = excluded.tool_calls,
    active_run_id = excluded.active_run_id, active_run_agent = excluded.active_run_agent,
    usage = excluded.usage, run_marks = excluded.run_marks, agent = excluded.agent
WHERE t.head < excluded.head
"""
# A per-session rebuild overwrites whatever is there.
_REPLACE_STATE = _UPSERT_STATE.rsplit("WHERE", 1)[0]
_REPLACE_SUMMARY = _UPSERT_SUMMARY.rsplit("WHERE", 1)[0]


def _summary_row(generation: int, s: SessionSummary) -> tuple[Any, ...]:
    return (generation, *summary_values(s, moment=to_micros))


def _summary(row: Sequence[Any]) -> SessionSummary:
    return summary_from_row(row, moment=from_micros)


def _write_states(
    conn: sqlite3.Connection,
    generation: int,
    states: Mapping[str, ConversationState],
    changes: Changes,
    sql: str,
    hidden: Mapping[str, int] | None = None,
) -> None:
    for w in state_writes(states, changes, hidden):
        written = conn.execute(
            sql, (generation, w.session_id, w.last_seq, w.header, w.message_count)
        ).rowcount
        if not written:
            continue  # the stored header is at a later seq: its messages are too
        if w.truncate_at is not None:
            conn.execute(_TRUNCATE_MESSAGES, (generation, w.session_id, w.truncate_at))
        conn.executemany(
            _UPSERT_MESSAGE, [(generation, w.session_id, *message) for message in w.messages]
        )


def _write_summaries(
    conn: sqlite3.Connection, generation: int, summaries: Summaries, sql: str
) -> None:
    conn.executemany(sql, [_summary_row(generation, s) for s in summaries.values()])


def _load(
    conn: sqlite3.Connection, generation: int, session_ids: Sequence[str]
) -> tuple[States, Summaries]:
    states, _hidden, summaries = _load_newest(conn, generation, session_ids, None)
    return states, summaries


def _load_newest(
    conn: sqlite3.Connection, generation: int, session_ids: Sequence[str], newest: int | None
) -> tuple[States, dict[str, int], Summaries]:
    """The rows of these sessions, each state with its `newest` messages only (None: all),
    and how many older ones each leaves out."""
    ids = json.dumps(list(session_ids))
    states: States = {}
    hidden: dict[str, int] = {}
    for sid, header, count in conn.execute(
        "SELECT session_id, state, message_count FROM agentlog_ui_states WHERE generation = ? "
        "AND session_id IN (SELECT value FROM json_each(?))",
        (generation, ids),
    ).fetchall():
        start = 0 if newest is None else max(0, count - newest)
        messages = conn.execute(_MESSAGES_FROM, (generation, sid, start)).fetchall()
        states[sid], hidden[sid] = joined_state(header, [m for (m,) in messages]), start
    summaries = {
        row[0]: _summary(row)
        for row in conn.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM agentlog_session_summaries WHERE generation = ? "
            "AND session_id IN (SELECT value FROM json_each(?))",
            (generation, ids),
        )
    }
    return states, hidden, summaries


def _checkpoint(conn: sqlite3.Connection) -> Checkpoint:
    position, generation, revision = conn.execute(
        "SELECT position, generation, revision FROM agentlog_projection_checkpoints WHERE name = ?",
        (PROJECTOR_NAME,),
    ).fetchone()
    return Checkpoint(position=position, generation=generation, revision=revision)


def _live_generation(conn: sqlite3.Connection) -> int:
    (generation,) = conn.execute(_LIVE[1:-1]).fetchone()
    return int(generation)


class _Snapshot:
    """A read transaction (deferred BEGIN): in WAL mode every statement in it sees the same
    commit, so a header and its messages are read as one projector save left them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT")


def _read_page(
    conn: sqlite3.Connection, session_id: str, limit: int, before: str | None
) -> StoredPage | None:
    generation = _live_generation(conn)
    row = conn.execute(
        "SELECT state, message_count FROM agentlog_ui_states "
        "WHERE generation = ? AND session_id = ?",
        (generation, session_id),
    ).fetchone()
    if row is None:
        return None
    header, end = row
    if before is not None:
        (end,) = conn.execute(
            "SELECT max(position) FROM agentlog_ui_messages "
            "WHERE generation = ? AND session_id = ? AND message_id = ?",
            (generation, session_id, before),
        ).fetchone()
        if end is None:
            raise UnknownCursor(before)
    start = max(0, end - limit)
    messages = conn.execute(
        "SELECT message FROM agentlog_ui_messages WHERE generation = ? AND session_id = ? "
        "AND position >= ? AND position < ? ORDER BY position",
        (generation, session_id, start, end),
    ).fetchall()
    return StoredPage(state=joined_state(header, [m for (m,) in messages]), start=start)


def _read_named(
    conn: sqlite3.Connection, session_id: str, message_ids: Sequence[str]
) -> tuple[int, list[Message]] | None:
    generation = _live_generation(conn)
    row = conn.execute(
        "SELECT last_seq FROM agentlog_ui_states WHERE generation = ? AND session_id = ?",
        (generation, session_id),
    ).fetchone()
    if row is None:
        return None
    found = conn.execute(
        "SELECT message FROM agentlog_ui_messages WHERE generation = ? AND session_id = ? "
        "AND message_id IN (SELECT value FROM json_each(?)) ORDER BY position",
        (generation, session_id, json.dumps(list(message_ids))),
    ).fetchall()
    return row[0], [decode_message(m) for (m,) in found]


def _split_whole_states(conn: sqlite3.Connection) -> None:
    """Rows stored before messages had rows of their own hold the whole state: write its
    messages as rows and keep the rest as the header (once, when the store opens)."""
    legacy = conn.execute(
        "SELECT generation, session_id, state FROM agentlog_ui_states WHERE message_count IS NULL"
    ).fetchall()
    for generation, session_id, whole in legacy:
        _write_states(conn, generation, {session_id: decode_state(whole)}, {}, _REPLACE_STATE)


class _Transaction:
    """`BEGIN IMMEDIATE` ... COMMIT, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: object, *exc: object) -> None:
        self.conn.execute("ROLLBACK" if kind is not None else "COMMIT")


def _bump_revision(conn: sqlite3.Connection, seen: Checkpoint, position: int) -> bool:
    # The optimistic check and the write are one transaction under the write lock.
    moved = conn.execute(
        "UPDATE agentlog_projection_checkpoints SET position = ?, revision = revision + 1 "
        "WHERE name = ? AND revision = ?",
        (position, PROJECTOR_NAME, seen.revision),
    ).rowcount
    return moved == 1


def _swap(conn: sqlite3.Connection, seen: Checkpoint, generation: int, position: int) -> bool:
    swapped = conn.execute(
        "UPDATE agentlog_projection_checkpoints SET generation = ?, position = ?, "
        "revision = revision + 1 WHERE name = ? AND revision = ? AND generation < ? "
        "AND position <= ?",
        (generation, position, PROJECTOR_NAME, seen.revision, generation, position),
    ).rowcount
    return swapped == 1


class SQLiteClaim:
    def __init__(self, owner: SQLiteProjectionStore, checkpoint: Checkpoint) -> None:
        self._owner = owner
        self.checkpoint = checkpoint

    async def load(self, session_ids: Sequence[str]) -> tuple[States, Summaries]:
        return await self._owner.load_generation(self.checkpoint.generation, session_ids)

    async def load_newest(
        self, session_ids: Sequence[str], count: int
    ) -> tuple[States, dict[str, int], Summaries]:
        generation = self.checkpoint.generation
        return await self._owner._on_reader(
            lambda conn: _load_newest(conn, generation, session_ids, count)
        )

    async def save(
        self,
        states: States,
        changes: Changes,
        summaries: Summaries,
        position: int,
        hidden: Mapping[str, int] | None = None,
    ) -> bool:
        seen = self.checkpoint

        def save(conn: sqlite3.Connection) -> bool:
            with _Transaction(conn):
                if not _bump_revision(conn, seen, max(position, seen.position)):
                    return False
                _write_states(conn, seen.generation, states, changes, _UPSERT_STATE, hidden)
                _write_summaries(conn, seen.generation, summaries, _UPSERT_SUMMARY)
                return True

        return await self._owner._on_writer(save)

    async def replace(
        self, session_id: str, state: ConversationState, summary: SessionSummary
    ) -> bool:
        seen = self.checkpoint

        def replace(conn: sqlite3.Connection) -> bool:
            with _Transaction(conn):
                if not _bump_revision(conn, seen, seen.position):
                    return False
                _write_states(conn, seen.generation, {session_id: state}, {}, _REPLACE_STATE)
                _write_summaries(conn, seen.generation, {session_id: summary}, _REPLACE_SUMMARY)
                return True

        return await self._owner._on_writer(replace)

    async def swap(self, generation: int, position: int) -> bool:
        seen = self.checkpoint

        def swap(conn: sqlite3.Connection) -> bool:
            with _Transaction(conn):
                return _swap(conn, seen, generation, position)

        return await self._owner._on_writer(swap)


class SQLiteProjectionStore:
    """Projection rows in the event store's SQLite file (`store.path`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        # NORMAL: a projection commit does not wait for its own fsync. The rows are derived
        # and their checkpoint is in the same transaction, so power loss can only take the
        # newest projection commits whole (the WAL is synced up to every append's commit, which
        # fsyncs the file), and the projector folds those events again from the checkpoint
        # that survived. It also holds the file's one write lock, which appends wait for, for
        # no fsync at all.
        self._threads = SQLiteThreads(path, name="agentlog-projections", synchronous="NORMAL")
        self._claims = asyncio.Lock()

    async def open(self) -> SQLiteProjectionStore:
        def migrate(conn: sqlite3.Connection) -> None:
            with _Transaction(conn):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                have = {
                    row[1] for row in conn.execute("PRAGMA table_info(agentlog_session_summaries)")
                }
                for column, kind in SUMMARY_COLUMNS_ADDED:
                    if column not in have:
                        conn.execute(
                            f"ALTER TABLE agentlog_session_summaries ADD COLUMN {column} {kind}"
                        )
                have = {row[1] for row in conn.execute("PRAGMA table_info(agentlog_ui_states)")}
                if "message_count" not in have:
                    conn.execute("ALTER TABLE agentlog_ui_states ADD COLUMN message_count INTEGER")
                _split_whole_states(conn)

        await self._on_writer(migrate)
        return self

    async def close(self) -> None:
        self._threads.close()

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._threads.on_writer(fn)

    async def _on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._threads.on_reader(fn)

    # -- the live rows ----------------------------------------------------------------------

    async def checkpoint(self) -> Checkpoint:
        return await self._on_reader(_checkpoint)

    @asynccontextmanager
    async def claim(self) -> AsyncIterator[SQLiteClaim]:
        # Claims in this process take turns (the projector, a rebuild's swap); across
        # processes the revision check decides, and the loser starts again.
        async with self._claims:
            yield SQLiteClaim(self, await self.checkpoint())

    async def read_state(self, session_id: str) -> ConversationState | None:
        def read(conn: sqlite3.Connection) -> ConversationState | None:
            with _Snapshot(conn):
                generation = _live_generation(conn)
                return _load(conn, generation, [session_id])[0].get(session_id)

        return await self._on_reader(read)

    async def read_named(
        self, session_id: str, message_ids: Sequence[str]
    ) -> tuple[int, list[Message]] | None:
        def read(conn: sqlite3.Connection) -> tuple[int, list[Message]] | None:
            with _Snapshot(conn):
                return _read_named(conn, session_id, message_ids)

        return await self._on_reader(read)

    async def read_page(self, session_id: str, limit: int, before: str | None) -> StoredPage | None:
        def read(conn: sqlite3.Connection) -> StoredPage | None:
            with _Snapshot(conn):
                return _read_page(conn, session_id, limit, before)

        return await self._on_reader(read)

    async def read_summary(self, session_id: str) -> SessionSummary | None:
        def read(conn: sqlite3.Connection) -> SessionSummary | None:
            row = conn.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM agentlog_session_summaries "
                f"WHERE generation = {_LIVE} AND session_id = ?",
                (session_id,),
            ).fetchone()
            return None if row is None else _summary(row)

        return await self._on_reader(read)

    async def read_summaries(self, after: str | None, limit: int) -> list[SessionSummary]:
        def read(conn: sqlite3.Connection) -> list[SessionSummary]:
            rows = conn.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM agentlog_session_summaries "
                f"WHERE generation = {_LIVE} AND session_id > ? ORDER BY session_id LIMIT ?",
                (after or "", limit),
            ).fetchall()
            return [_summary(row) for row in rows]

        return await self._on_reader(read)

    # -- rebuilding -------------------------------------------------------------------------

    async def new_generation(self) -> int:
        def claim(conn: sqlite3.Connection) -> int:
            with _Transaction(conn):
                (generation,) = conn.execute(
                    "UPDATE agentlog_projection_checkpoints "
                    "SET next_generation = MAX(next_generation, generation) + 1 "
                    "WHERE name = ? RETURNING next_generation",
                    (PROJECTOR_NAME,),
                ).fetchone()
            return int(generation)

        return await self._on_writer(claim)

    async def load_generation(
        self, generation: int, session_ids: Sequence[str]
    ) -> tuple[States, Summaries]:
        return await self._on_reader(lambda conn: _load(conn, generation, session_ids))

    async def write_generation(
        self,
        generation: int,
        states: Mapping[str, ConversationState],
        changes: Changes,
        summaries: Summaries,
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with _Transaction(conn):
                _write_states(conn, generation, states, changes, _UPSERT_STATE)
                _write_summaries(conn, generation, summaries, _UPSERT_SUMMARY)

        await self._on_writer(write)

    async def drop_generations(self, *, below: int | None = None, only: int | None = None) -> None:
        condition, value = (
            ("generation < ?", below) if below is not None else ("generation = ?", only)
        )

        def drop(conn: sqlite3.Connection) -> None:
            with _Transaction(conn):
                conn.execute(f"DELETE FROM agentlog_ui_states WHERE {condition}", (value,))
                conn.execute(f"DELETE FROM agentlog_ui_messages WHERE {condition}", (value,))
                conn.execute(f"DELETE FROM agentlog_session_summaries WHERE {condition}", (value,))

        await self._on_writer(drop)
