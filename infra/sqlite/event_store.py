"""The embedded event store: one SQLite file in WAL mode, written from one thread.

SQLite's driver is synchronous, so every statement runs on a thread of our own and the event
loop never blocks (agentlog.infra.sqlite.threads: one writer thread, a few reader threads, each
with its
own connection).

Ordering: `BEGIN IMMEDIATE` takes the database's write lock before the heads are read, so
appends from any number of processes are serialised; seq and position are taken from what the
previous writer committed, and commit order equals seq order and position order.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from agentlog.domain.events import RecordedEvent, decode_event, encode_event, type_of, utc_now
from agentlog.domain.ports.event_store import (
    FramedPage,
    KeyedAppend,
    RunRecord,
    SessionHead,
    TurnDue,
)
from agentlog.domain.ports.wakeups import Wakeups
from agentlog.infra.sqlite.attachments import SCHEMA as ATTACHMENT_SCHEMA
from agentlog.infra.sqlite.threads import Checkpointer, SQLiteThreads
from agentlog.infra.sqlite.token_revocations import SCHEMA as REVOCATION_SCHEMA
from agentlog.infra.sqlite.transcripts import SCHEMA as TRANSCRIPT_SCHEMA
from agentlog.infra.store.append_plan import KnownKey, needs_run_index, plan_batch
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.group_commit import Outcome, PendingAppend, TransientWriteError
from agentlog.infra.store.wire_form import ENCODING_FINGERPRINT, is_wire_form

# The events table uses eventsourcing's stored-event column names (originator_id = session,
# originator_version = seq, topic = event type, state = event JSON, notification_id = global
# position) so the same layout serves both backends and eventsourcing's tooling
# (see docs/architecture.md).
SCHEMA = """
CREATE TABLE IF NOT EXISTS agentlog_sessions (
    session_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agentlog_events (
    notification_id INTEGER PRIMARY KEY,
    originator_id TEXT NOT NULL,
    originator_version INTEGER NOT NULL,
    topic TEXT NOT NULL,
    state BLOB NOT NULL,
    run_id TEXT,
    recorded_at INTEGER NOT NULL,
    encoding INTEGER,
    UNIQUE (originator_id, originator_version)
);
CREATE TABLE IF NOT EXISTS agentlog_idempotency (
    session_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seqs TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    request_hash TEXT,
    PRIMARY KEY (session_id, key)
);
CREATE INDEX IF NOT EXISTS agentlog_idempotency_age ON agentlog_idempotency (created_at);
"""
# The encodings rows were checked in (agentlog.infra.store.wire_form): a row's `encoding` names
# the version whose encoding gives back its stored bytes as they are; NULL (an import, a
# tombstone, a row from before the column, an event that did not survive the round trip)
# promises nothing.
ENCODINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS agentlog_encodings (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE
);
"""
# The sessions being imported or forked in batches (agentlog.infra.store.import_batches): the
# append path refuses their ids until the last batch removes the row; and how many events the
# partial imports that were removed took out of the log (gaps in its positions, for verify).
IMPORT_SCHEMA = """
CREATE TABLE IF NOT EXISTS agentlog_imports (
    session_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    heartbeat INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agentlog_removed_imports (
    session_id TEXT NOT NULL,
    events_removed INTEGER NOT NULL,
    removed_at INTEGER NOT NULL
);
"""
# The run index (see agentlog.domain.ports.event_store.EventStore), written in the append's own
# transaction.
RUNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS agentlog_runs (
    session_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    started_seq INTEGER NOT NULL,
    ended_seq INTEGER,
    PRIMARY KEY (session_id, run_id)
);
CREATE INDEX IF NOT EXISTS agentlog_runs_latest ON agentlog_runs (session_id, started_seq);
CREATE INDEX IF NOT EXISTS agentlog_runs_open ON agentlog_runs (session_id) WHERE ended_seq IS NULL;
CREATE TABLE IF NOT EXISTS agentlog_turns_due (
    session_id TEXT PRIMARY KEY,
    due_seq INTEGER NOT NULL,
    due_at INTEGER NOT NULL
);
"""
# Fills the run index from the log: for a file written before it existed, and after an import.
# A run ends at its first terminal event, or where the next run started (superseded).
SQL_INDEX_RUNS = (
    "INSERT OR IGNORE INTO agentlog_runs (session_id, run_id, started_seq, ended_seq) "
    "SELECT s.originator_id, s.run_id, s.originator_version, (SELECT MIN(t.originator_version) "
    "FROM agentlog_events AS t WHERE t.originator_id = s.originator_id "
    "AND t.originator_version > s.originator_version AND (t.topic = 'run_started' OR "
    "(t.run_id = s.run_id AND t.topic IN ('run_finished', 'run_failed', 'run_cancelled', "
    "'run_abandoned')))) "
    "FROM agentlog_events AS s WHERE s.topic = 'run_started' AND s.run_id IS NOT NULL"
)
_RUN_COLUMNS = "session_id, run_id, started_seq, ended_seq"

_COLUMNS = "originator_id, originator_version, notification_id, recorded_at, state"

# A session and its head and last activity, from its newest event: one step down the
# (originator_id, originator_version) index.
_SQL_SESSION = (
    "SELECT s.session_id, COALESCE(e.originator_version, 0), s.created_at, "
    "COALESCE(e.recorded_at, s.created_at), e.topic = 'session_deleted' "
    "FROM agentlog_sessions AS s "
    "LEFT JOIN agentlog_events AS e ON e.originator_id = s.session_id "
    "AND e.originator_version = (SELECT MAX(originator_version) FROM agentlog_events "
    "WHERE originator_id = s.session_id)"
)
_SQL_HEAD = f"{_SQL_SESSION} WHERE s.session_id = ?"
# What an append builds on, read under the write lock: the session's head, and whether its
# newest event is its tombstone (deletion is final: agentlog.domain.rules.appending).
_SQL_APPEND_HEAD = (
    "SELECT COALESCE(e.originator_version, 0), e.topic = 'session_deleted' "
    "FROM agentlog_sessions AS s LEFT JOIN agentlog_events AS e "
    "ON e.originator_id = s.session_id AND e.originator_version = (SELECT MAX(originator_version) "
    "FROM agentlog_events WHERE originator_id = s.session_id) WHERE s.session_id = ?"
)
# A session being imported or forked in batches (agentlog.infra.store.import_batches).
_SQL_IMPORTING = "SELECT 1 FROM agentlog_imports WHERE session_id = ?"
_SQL_READ = (
    f"SELECT {_COLUMNS} FROM agentlog_events WHERE originator_id = ? "
    "AND originator_version > ? ORDER BY originator_version LIMIT ?"
)


# The flat JSON of `read_flat`, built from the row: encode_recorded's bytes, without the
# RecordedEvent, the datetime and the envelope dict per row that it takes (a replay's cost on
# SQLite, where the read itself is cheap). The contract suite checks the two agree.
_SQL_READ_FLAT = (
    "SELECT originator_version, notification_id, recorded_at, topic, state, encoding "
    "FROM agentlog_events WHERE originator_id = ? AND originator_version > ? "
    "ORDER BY originator_version LIMIT ?"
)
# `read_framed`'s rows: the topic only where the row's mark is this version's (as bytes, as a
# frame takes it), NULL where the row must be decoded and encoded again. One column fewer
# than `read_flat`'s: Python's sqlite3 (3.11) lets go of the GIL and takes it back around
# every column of every row, which was a sixth of a replay's instructions per event.
_SQL_READ_FRAMED = (
    "SELECT originator_version, notification_id, recorded_at, "
    "CASE WHEN encoding = ? THEN CAST(topic AS BLOB) END, state "
    "FROM agentlog_events WHERE originator_id = ? AND originator_version > ? "
    "ORDER BY originator_version LIMIT ?"
)
_json = msgspec.json.Encoder().encode
# encode_recorded's envelope, then the event's own fields: seq, position, `,"session_id":..,
# "time":..,` (the same for every row of one group commit, so built once for them), and the
# event's JSON without its `{` (an event's JSON begins with its type tag: never `{}`).
_FLAT = b'{"seq":%d,"position":%d%b%b'


def _session_and_time(session_json: bytes, micros: int) -> bytes:
    return b',"session_id":%b,"time":%b,' % (session_json, _json(_from_micros(micros)))


def _flat_rows(
    session_id: str, rows: list[tuple[Any, ...]], encoding: int | None
) -> list[tuple[int, str, bytes]]:
    session_json = _json(session_id)
    flat: list[tuple[int, str, bytes]] = []
    last_micros, session_and_time = -1, b""
    for seq, position, micros, topic, state, marked in rows:
        if marked is None or marked != encoding:
            # Decoded and encoded again, as encode_recorded would: what HTTP sends is the
            # event as this version knows it, not the stored bytes (an import's key order,
            # fields a newer version wrote, defaults an older one lacked).
            event = decode_event(state)
            topic, state = type_of(event), encode_event(event)
        # Else this version's encoding was checked to give these very bytes back at append
        # (agentlog.infra.store.wire_form), and the topic is the type it wrote beside them.
        if micros != last_micros:  # one group commit's rows share their time
            last_micros, session_and_time = micros, _session_and_time(session_json, micros)
        flat.append((seq, topic, _FLAT % (seq, position, session_and_time, state[1:])))
    return flat


@functools.lru_cache(maxsize=8)
def _framed_format(frame: bytes) -> bytes:
    """`frame` (`...%d...%b...%b...`: seq, type, flat JSON) with the flat JSON's own format
    put in place of its last `%b`, so that a row becomes its frame in one formatting step."""
    pieces = frame.split(b"%")
    if len(pieces) != 4 or [p[:1] for p in pieces[1:]] != [b"d", b"b", b"b"]:
        raise ValueError(f"a frame holds %d, %b, %b and no other %: {frame!r}")
    head, _, tail = frame.rpartition(b"%b")
    return head + _FLAT + tail


def _framed_rows(session_id: str, rows: list[tuple[Any, ...]], framed_format: bytes) -> bytes:
    """The frames of `_SQL_READ_FRAMED`'s rows, joined: for each, the frame of what
    `_flat_rows` gives for it."""
    session_json = _json(session_id)
    frames: list[bytes] = []
    last_micros, session_and_time = -1, b""
    for seq, position, micros, topic, state in rows:
        if topic is None:  # not marked with this version's encoding: as in _flat_rows
            event = decode_event(state)
            topic, state = type_of(event).encode(), encode_event(event)
        if micros != last_micros:
            last_micros, session_and_time = micros, _session_and_time(session_json, micros)
        frames.append(framed_format % (seq, topic, seq, position, session_and_time, state[1:]))
    return b"".join(frames)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def _recorded(row: tuple[Any, ...]) -> RecordedEvent:
    session_id, seq, position, micros, state = row
    return RecordedEvent(
        session_id=session_id,
        seq=seq,
        position=position,
        time=_from_micros(micros),
        event=decode_event(state),
    )


class SQLiteEventStore(StoreBase):
    """The embedded default: `sqlite:///path/to/agentlog.db`."""

    def __init__(
        self,
        path: str | Path,
        *,
        wakeups: Wakeups | None = None,
        max_event_bytes: int = 1024 * 1024,
        reader_threads: int = 2,
    ) -> None:
        super().__init__(wakeups=wakeups, max_event_bytes=max_event_bytes)
        self.path = str(path)
        self._threads = SQLiteThreads(self.path, name="agentlog-sqlite", readers=reader_threads)
        self._checkpointer = Checkpointer(self.path)
        # This version's id in agentlog_encodings, known once the file is migrated.
        self._encoding: int | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> SQLiteEventStore:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        await self._threads.on_writer(self._migrate)
        self._encoding = await self._threads.on_writer(_encoding_id)
        return self

    async def close(self) -> None:
        await super().close()
        self._checkpointer.close()
        self._threads.close()

    async def __aenter__(self) -> SQLiteEventStore:
        return await self.open()

    @property
    def wire_encoding(self) -> int | None:
        """This version's id in agentlog_encodings, for the rows it marks (None until open)."""
        return self._encoding

    @property
    def threads(self) -> SQLiteThreads:
        """The store's writer and reader threads, for tables that live beside the log."""
        return self._threads

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        had_runs = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agentlog_runs'"
        ).fetchone()
        keys = {row[1] for row in conn.execute("PRAGMA table_info(agentlog_idempotency)")}
        if keys and "request_hash" not in keys:
            conn.execute("ALTER TABLE agentlog_idempotency ADD COLUMN request_hash TEXT")
        conn.executescript(SCHEMA + RUNS_SCHEMA + ENCODINGS_SCHEMA)
        if "encoding" not in {row[1] for row in conn.execute("PRAGMA table_info(agentlog_events)")}:
            # Rows from before the column promise nothing (NULL); adding it rewrites nothing.
            with contextlib.suppress(sqlite3.OperationalError):  # another process added it
                conn.execute("ALTER TABLE agentlog_events ADD COLUMN encoding INTEGER")
        conn.executescript(
            TRANSCRIPT_SCHEMA
        )  # the CLI's transcripts (agentlog.infra.store.transcripts)
        conn.executescript(REVOCATION_SCHEMA)  # revoked session tokens
        conn.executescript(ATTACHMENT_SCHEMA)  # files sent with prompts
        conn.executescript(IMPORT_SCHEMA)  # sessions being imported or forked
        if not had_runs:
            conn.execute(SQL_INDEX_RUNS)
            conn.commit()
        # A session's head and last activity are read from its newest event (see the
        # PostgreSQL store); files from before that kept them as columns.
        columns = {row[1] for row in conn.execute("PRAGMA table_info(agentlog_sessions)")}
        for stale in ("head", "updated_at") if columns else ():
            if stale in columns:
                conn.execute(f"ALTER TABLE agentlog_sessions DROP COLUMN {stale}")

    # -- writes -----------------------------------------------------------------------------

    async def _write_batch(self, batch: list[PendingAppend]) -> list[Outcome]:
        outcomes = await self._threads.on_writer(lambda conn: self._write_batch_sync(conn, batch))
        self._checkpointer.committed()
        return outcomes

    def _write_batch_sync(
        self, conn: sqlite3.Connection, batch: list[PendingAppend]
    ) -> list[Outcome]:
        # Checked before the write lock is taken: the events a read may send as stored.
        wire = {data for pending in batch for data in pending.encoded if is_wire_form(data)}
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # database is locked past busy_timeout
            raise TransientWriteError(str(exc)) from exc
        try:
            outcomes = self._insert_batch(conn, batch, wire, self._encoding)
            conn.execute("COMMIT")
            return outcomes
        except BaseException as exc:
            # A COMMIT that failed has either left the transaction open (busy) or rolled it
            # back (I/O error); SQLite never leaves its outcome unknown to this process.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.OperationalError):
                raise TransientWriteError(str(exc)) from exc
            raise

    async def check_writes(self) -> None:
        """The write lock can be taken now (nothing is written)."""

        def take_write_lock(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")

        await self._threads.on_writer(take_write_lock)

    @staticmethod
    def _insert_batch(
        conn: sqlite3.Connection,
        batch: list[PendingAppend],
        wire: set[bytes],
        encoding: int | None,
    ) -> list[Outcome]:
        now = _micros(utc_now())
        (position,) = conn.execute(
            "SELECT COALESCE(MAX(notification_id), 0) FROM agentlog_events"
        ).fetchone()
        heads: dict[str, int | None] = {}
        deleted: set[str] = set()
        importing: set[str] = set()
        for session_id in {p.session_id for p in batch}:
            found = conn.execute(_SQL_APPEND_HEAD, (session_id,)).fetchone()
            heads[session_id] = None if found is None else found[0]
            if found is not None and found[1]:
                deleted.add(session_id)
            if found is None and conn.execute(_SQL_IMPORTING, (session_id,)).fetchone():
                importing.add(session_id)  # not a session until its import ends
        known_keys: dict[tuple[str, str], KnownKey] = {}
        for pending in batch:
            if pending.idempotency_key is not None:
                found = conn.execute(
                    "SELECT seqs, request_hash FROM agentlog_idempotency "
                    "WHERE session_id = ? AND key = ?",
                    (pending.session_id, pending.idempotency_key),
                ).fetchone()
                if found is not None:
                    known_keys[(pending.session_id, pending.idempotency_key)] = (
                        json.loads(found[0]),
                        found[1],
                    )
        runs: dict[str, RunRecord | None] | None = None
        if needs_run_index(batch):
            runs = {}
            for session_id in heads:
                found = conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM agentlog_runs WHERE session_id = ? "
                    "ORDER BY started_seq DESC LIMIT 1",
                    (session_id,),
                ).fetchone()
                runs[session_id] = None if found is None else _run_record(found)
        plan = plan_batch(batch, heads, position, known_keys, runs, deleted, importing)
        if plan.writes:
            conn.executemany(
                "INSERT INTO agentlog_events (notification_id, originator_id, "
                "originator_version, topic, state, run_id, recorded_at, encoding) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (pos, sid, seq, topic, state, run_id, now, encoding if state in wire else None)
                    for pos, (sid, seq, topic, run_id, _), state in zip(
                        range(plan.first_position + 1, plan.position + 1),
                        plan.rows,
                        plan.states,
                        strict=True,
                    )
                ],
            )
            conn.executemany(
                "INSERT INTO agentlog_sessions (session_id, created_at) VALUES (?, ?)",
                [(sid, now) for sid in plan.created],
            )
            conn.executemany(
                "INSERT INTO agentlog_idempotency (session_id, key, seqs, created_at, "
                "request_hash) VALUES (?, ?, ?, ?, ?)",
                [(sid, key, json.dumps(seqs), now, h) for sid, key, seqs, h in plan.new_keys],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO agentlog_runs (session_id, run_id, started_seq) "
                "VALUES (?, ?, ?)",
                plan.run_starts,
            )
            conn.executemany(
                "UPDATE agentlog_runs SET ended_seq = ? WHERE session_id = ? AND run_id = ? "
                "AND ended_seq IS NULL",
                [(seq, sid, run_id) for sid, run_id, seq in plan.run_ends],
            )
            conn.executemany(
                "INSERT INTO agentlog_turns_due (session_id, due_seq, due_at) VALUES (?, ?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET due_seq = excluded.due_seq, "
                "due_at = excluded.due_at",
                [(sid, seq, now) for sid, seq in plan.turns_due],
            )
        return plan.outcomes

    # -- reads ------------------------------------------------------------------------------

    async def read(self, session_id: str, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self._fetch(_SQL_READ, (session_id, after, limit))
        return [_recorded(row) for row in rows]

    async def read_stored(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[tuple[RecordedEvent, bytes]]:
        rows = await self._fetch(_SQL_READ, (session_id, after, limit))
        return [(_recorded(row), row[4]) for row in rows]

    async def read_flat(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, str, bytes]]:
        # Built on the reader thread, so the event loop only writes the page.
        return await self._threads.on_reader(
            lambda conn: _flat_rows(
                session_id,
                conn.execute(_SQL_READ_FLAT, (session_id, after, limit)).fetchall(),
                self._encoding,
            )
        )

    async def read_framed(
        self, session_id: str, after: int = 0, limit: int = 1000, *, frame: bytes
    ) -> FramedPage:
        framed_format = _framed_format(frame)

        def read(conn: sqlite3.Connection) -> FramedPage:
            # Read and written out on the reader thread: the event loop only sends the bytes.
            rows = conn.execute(
                _SQL_READ_FRAMED, (self._encoding, session_id, after, limit)
            ).fetchall()
            if not rows:
                return FramedPage(0, after, b"")
            return FramedPage(len(rows), rows[-1][0], _framed_rows(session_id, rows, framed_format))

        return await self._threads.on_reader(read)

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM agentlog_events WHERE notification_id > ? "
            "ORDER BY notification_id LIMIT ?",
            (after, limit),
        )
        return [_recorded(row) for row in rows]

    async def session(self, session_id: str) -> SessionHead | None:
        rows = await self._fetch(
            _SQL_HEAD,
            (session_id,),
        )
        return _session_head(rows[0]) if rows else None

    async def sessions(self, after: str | None = None, limit: int = 100) -> list[SessionHead]:
        rows = await self._fetch(
            f"{_SQL_SESSION} WHERE s.session_id > ? ORDER BY s.session_id LIMIT ?",
            (after or "", limit),
        )
        return [_session_head(row) for row in rows]

    async def last_position(self) -> int:
        rows = await self._fetch(
            "SELECT COALESCE(MAX(notification_id), 0) FROM agentlog_events", ()
        )
        return int(rows[0][0])

    async def keyed_append(self, session_id: str, key: str) -> KeyedAppend | None:
        rows = await self._fetch(
            "SELECT seqs, request_hash, created_at FROM agentlog_idempotency "
            "WHERE session_id = ? AND key = ?",
            (session_id, key),
        )
        if not rows:
            return None
        seqs, request_hash, created = rows[0]
        return KeyedAppend(
            seqs=json.loads(seqs), request_hash=request_hash, created_at=_from_micros(created)
        )

    async def prune_idempotency(self, older_than: datetime) -> int:
        def prune(conn: sqlite3.Connection) -> int:
            with conn:
                cursor = conn.execute(
                    "DELETE FROM agentlog_idempotency WHERE created_at < ?", (_micros(older_than),)
                )
            return cursor.rowcount

        return await self._threads.on_writer(prune)

    async def run(self, session_id: str, run_id: str) -> RunRecord | None:
        rows = await self._fetch(
            f"SELECT {_RUN_COLUMNS} FROM agentlog_runs WHERE session_id = ? AND run_id = ?",
            (session_id, run_id),
        )
        return _run_record(rows[0]) if rows else None

    async def current_run(self, session_id: str) -> RunRecord | None:
        rows = await self._fetch(
            f"SELECT {_RUN_COLUMNS} FROM agentlog_runs WHERE session_id = ? "
            "ORDER BY started_seq DESC LIMIT 1",
            (session_id,),
        )
        return _run_record(rows[0]) if rows else None

    async def open_runs(self, limit: int = 1000, after: RunRecord | None = None) -> list[RunRecord]:
        cursor = ("", "") if after is None else (after.session_id, after.run_id)
        rows = await self._fetch(
            f"SELECT {_RUN_COLUMNS} FROM agentlog_runs WHERE ended_seq IS NULL "
            "AND (session_id, run_id) > (?, ?) ORDER BY session_id, run_id LIMIT ?",
            (*cursor, limit),
        )
        return [_run_record(row) for row in rows]

    async def turns_due(
        self, due_before: datetime, limit: int = 1000, after: str = ""
    ) -> list[TurnDue]:
        rows = await self._fetch(
            "SELECT session_id, due_seq FROM agentlog_turns_due WHERE session_id > ? "
            "AND due_at < ? ORDER BY session_id LIMIT ?",
            (after, _micros(due_before), limit),
        )
        return [TurnDue(session_id=row[0], due_seq=row[1]) for row in rows]

    async def settle_turn_due(self, session_id: str, through_seq: int) -> None:
        def settle(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute(
                    "DELETE FROM agentlog_turns_due WHERE session_id = ? AND due_seq <= ?",
                    (session_id, through_seq),
                )

        await self._threads.on_writer(settle)

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return await self._threads.on_reader(lambda conn: conn.execute(sql, params).fetchall())


def _encoding_id(conn: sqlite3.Connection) -> int:
    """This version's row in agentlog_encodings, added on first use."""
    conn.execute(
        "INSERT OR IGNORE INTO agentlog_encodings (fingerprint) VALUES (?)",
        (ENCODING_FINGERPRINT,),
    )
    (found,) = conn.execute(
        "SELECT id FROM agentlog_encodings WHERE fingerprint = ?", (ENCODING_FINGERPRINT,)
    ).fetchone()
    return int(found)


def _run_record(row: Sequence[Any]) -> RunRecord:
    return RunRecord(session_id=row[0], run_id=row[1], started_seq=row[2], ended_seq=row[3])


def _session_head(row: tuple[Any, ...]) -> SessionHead:
    session_id, head, created, updated, deleted = row
    return SessionHead(
        session_id=session_id,
        head=head,
        created_at=_from_micros(created),
        updated_at=_from_micros(updated),
        deleted_at=_from_micros(updated) if deleted else None,
    )
