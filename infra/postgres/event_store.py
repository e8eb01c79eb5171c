"""The production event store: PostgreSQL through an asyncpg pool.

Ordering, and why it is done this way: a sequence value is taken at INSERT but becomes visible
at COMMIT, and transactions commit out of order, so a reader tailing `position > P` can pass
over a row that commits later with a lower number and never see it (measured here: thousands
of rows in 8 s with six writers). Every append transaction therefore first locks the single
row of `agentlog_log_head` (`FOR UPDATE`) and only then reads the heads it builds on. The
lock is held to COMMIT, so appends are serialised across all processes: commit order equals
position order and, per session, seq order. A reader can then never pass a gap that is filled
later, both per session and across sessions, and both numbers are gapless.

One round trip: a plain batch (no idempotency key, no change to the run index, no expected seq
on a session it does not create) is one auto-committed call of a function that takes that
lock, reads the heads after it, checks that each session exists and is not deleted (or, when
the batch creates it, does not exist) and that each fenced append's run is still current and
open, and numbers and inserts the rows itself
(append_function_sql). What a process remembers (the log position after its own last commit,
and the heads it wrote) only spares that read while nobody else appended; it is never relied on,
so writers in several processes cost each other only the wait for the lock. Any other batch,
or a plain one whose session broke its rule, takes the locked path: lock, read heads (and keys
and runs), plan, write, COMMIT.

The primary keys on (session, seq) and on position are the second line of defence: a writer that
somehow built on a stale head blocks on the index until the earlier writer commits, then fails
with a unique violation and is retried, so it still cannot commit a number out of order.

We chose this over the alternatives in the notes: a per-stream advisory lock keeps seqs
ordered but leaves the global feed with skips; the transaction-id horizon needs no write lock
but lets any long transaction in the cluster stall every reader. The cost of serialising is
paid once per transaction, not per event, because group commit puts every append that is
waiting in this process into the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from itertools import accumulate
from typing import Any

import asyncpg
import msgspec

from agentlog.domain.errors import StoreUnavailable
from agentlog.domain.events import RecordedEvent, decode_event, utc_now
from agentlog.domain.ports.event_store import KeyedAppend, RunRecord, SessionHead, TurnDue
from agentlog.domain.ports.wakeups import Wakeups
from agentlog.infra.postgres import attachments as postgres_attachments
from agentlog.infra.postgres import token_revocations as postgres_revocations
from agentlog.infra.postgres import transcripts as postgres_transcripts
from agentlog.infra.postgres.array_literals import bool_array, int_array, text_array
from agentlog.infra.store.append_plan import (
    BatchPlan,
    KnownKey,
    PlainPlan,
    needs_run_index,
    plan_batch,
    plan_plain,
)
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.byte_bounded import DEFAULT_CACHE_BYTES, ByteBoundedLru, heads_share
from agentlog.infra.store.group_commit import (
    NotWritten,
    Outcome,
    OutcomeUnknown,
    PendingAppend,
    TransientWriteError,
    attempt_seconds,
)

NOTIFY_CHANNEL = "agentlog_wakeups"
_NOTIFY_LIMIT = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more

_rows_encoder = msgspec.json.Encoder()

# What one remembered head costs: the dict entry, the id's str object, the int.
_HEAD_ENTRY_BYTES = 160

# Errors after which PostgreSQL has certainly rolled the transaction back: safe to retry.
_TRANSIENT = (
    asyncpg.UniqueViolationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.LockNotAvailableError,
)

# Errors that say the connection, not the statement, failed: the server may never have seen
# the statement, or may have run it without our hearing the answer. Whether that means "not
# written" or "outcome unknown" depends on whether COMMIT had been sent (see _write_batch).
_CONNECTION_FAILED = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,  # includes "connection was closed in the middle"
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.AdminShutdownError,  # pg_ctl stop / restart -m fast
    asyncpg.CrashShutdownError,  # another backend crashed: every session is ended
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.IdleInTransactionSessionTimeoutError,
)


def connection_failed(exc: BaseException) -> bool:
    """The connection is unusable (drop it); DataError is a bad argument, not a bad line."""
    return isinstance(exc, _CONNECTION_FAILED) and not isinstance(exc, asyncpg.DataError)


async def keep_session_state(conn: asyncpg.Connection) -> None:
    """What a pooled connection needs reset on release: nothing beyond what asyncpg always
    does first (roll back a transaction left open, drop listener callbacks; no round trip
    otherwise). asyncpg's default reset also sends `pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL` on every release, one more round trip per query (14.5% of a
    profiled HTTP append), to undo session state that agentlog never leaves behind: its
    advisory locks are transaction-level (pg_advisory_xact_lock), its settings SET LOCAL,
    its cursors live inside transactions, and LISTEN runs on a connection of its own
    (infra/postgres/wakeups.py), never a pooled one. tests/unit/test_pool_session_state.py
    keeps it so; tests/contract/test_pool_reset.py shows a released connection clean."""


def _server_settings(timeout: float) -> dict[str, str]:
    # synchronous_commit: an acknowledged append must survive a crash, whatever the server's
    # default. The timeouts make the *server* let go of a client that went silent (a half-open
    # connection): a writer that black-holed while holding the log head lock would otherwise
    # keep every other writer waiting until the kernel gave up on the socket, hours later.
    idle = max(1, int(timeout * 3))
    return {
        "synchronous_commit": "on",
        "application_name": "agentlog",
        "idle_in_transaction_session_timeout": f"{idle}s",
        "tcp_keepalives_idle": str(idle),
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": "3",
    }


class _Attempt:
    """How far one write attempt got: once COMMIT (or the single auto-committed statement) is
    on its way, a broken connection can no longer tell us whether the events were written."""

    __slots__ = ("committing",)

    def __init__(self) -> None:
        self.committing = False


def schema_statements(schema: str) -> list[str]:
    """The DDL, idempotent. Column names follow eventsourcing's stored-event table."""
    s = _ident(schema)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        # One row whose lock serialises appends and whose value is the last global position.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_log_head (
                id boolean PRIMARY KEY DEFAULT true CHECK (id),
                position bigint NOT NULL)""",
        f"INSERT INTO {s}.agentlog_log_head (id, position) VALUES (true, 0) ON CONFLICT DO NOTHING",
        # A session's row is written once, when it is created. Its head and last activity are
        # read from its newest event (one step down the primary key index) rather than kept
        # here: rewriting a row per session in every append transaction cost about a quarter of
        # the transaction.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_sessions (
                session_id text PRIMARY KEY,
                created_at timestamptz NOT NULL)""",
        # originator_id = session id, originator_version = seq, topic = event type,
        # state = the event's JSON, notification_id = global position.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_events (
                originator_id text NOT NULL,
                originator_version bigint NOT NULL,
                topic text NOT NULL,
                state bytea NOT NULL,
                notification_id bigint NOT NULL,
                run_id text,
                recorded_at timestamptz NOT NULL,
                PRIMARY KEY (originator_id, originator_version))""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS agentlog_events_position
                ON {s}.agentlog_events (notification_id)""",
        append_function_sql(schema),
        # Written in the append's own transaction, so a retried request can never land twice.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_idempotency (
                session_id text NOT NULL,
                key text NOT NULL,
                seqs bigint[] NOT NULL,
                created_at timestamptz NOT NULL,
                request_hash text,
                PRIMARY KEY (session_id, key))""",
        f"ALTER TABLE {s}.agentlog_idempotency ADD COLUMN IF NOT EXISTS request_hash text",
        f"""CREATE INDEX IF NOT EXISTS agentlog_idempotency_age
                ON {s}.agentlog_idempotency (created_at)""",
        # The run index (agentlog.domain.ports.event_store.EventStore), written in the append's own
        # transaction:
        # it fences a run's writer and finds a run's events without reading the session.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_runs (
                session_id text NOT NULL,
                run_id text NOT NULL,
                started_seq bigint NOT NULL,
                ended_seq bigint,
                PRIMARY KEY (session_id, run_id))""",
        f"""CREATE INDEX IF NOT EXISTS agentlog_runs_latest
                ON {s}.agentlog_runs (session_id, started_seq DESC)""",
        f"""CREATE INDEX IF NOT EXISTS agentlog_runs_open
                ON {s}.agentlog_runs (session_id) WHERE ended_seq IS NULL""",
        # The turns-due index (the same docstring), written in the append's own transaction:
        # a session owed a look for its next turn, found by the sweep if that look was lost.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_turns_due (
                session_id text PRIMARY KEY,
                due_seq bigint NOT NULL,
                due_at timestamptz NOT NULL)""",
        # Run leases, always in the database (agentlog.infra.postgres.run_lock.PostgresRunLock).
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_run_leases (
                session_id text PRIMARY KEY,
                run_id text NOT NULL,
                token text NOT NULL,
                expires_at timestamptz NOT NULL,
                cancel_reason text,
                cancel_until timestamptz)""",
        # The sessions being imported or forked in batches (agentlog.infra.store.import_batches):
        # the append path refuses their ids until the last batch removes the row.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_imports (
                session_id text PRIMARY KEY,
                owner text NOT NULL,
                heartbeat timestamptz NOT NULL)""",
        # How many events the partial imports that were removed took out of the log: gaps in
        # its positions, which `agentlog verify` counts as it counts a tombstone's.
        f"""CREATE TABLE IF NOT EXISTS {s}.agentlog_removed_imports (
                session_id text NOT NULL,
                events_removed bigint NOT NULL,
                removed_at timestamptz NOT NULL)""",
        # The CLI's transcripts (agentlog.infra.store.transcripts).
        *postgres_transcripts.schema_statements(schema),
        # Revoked session tokens (agentlog.infra.postgres.token_revocations).
        *postgres_revocations.schema_statements(schema),
        # Files sent with prompts (agentlog.infra.postgres.attachments).
        *postgres_attachments.schema_statements(schema),
    ]


# The one-round-trip append of plain batches (see PostgresEventStore._write_plain). Versioned
# by name: a changed body gets a new name, so servers of both versions can share a database.
APPEND_FUNCTION = "agentlog_append_v3"
APPEND_FUNCTION_ARGUMENTS = (
    "integer[], integer[], text[], text[], integer[], integer[], bytea, text[], boolean[], "
    "timestamptz, text, bigint, bigint[], text[], text[], bigint[]"
)


def append_function_sql(schema: str) -> str:
    """A function, not one statement, because of snapshots: under READ COMMITTED a statement
    reads as of its start, so a statement that waited for the log head's lock would still read
    the heads from before the writer it waited for committed, and build on stale seqs. A
    VOLATILE function takes a new snapshot for each statement in it: the heads are read after
    the lock is held, and seq and position are computed here, in the database, from what the
    previous writer committed. No process needs to remember anything, so writers in several
    processes do not defeat each other: what a process remembers only spares a read.

    Arguments: the batch's rows in queue order as six arrays, one per column (the session's
    index in the batch's sessions, counted from 1; the seq relative to the session's head
    before the batch; the topic; the run id; where the state starts in the states, counted
    from 1; its length); their states concatenated; the batch's sessions; whether each is
    created by the batch (it must not exist, nor be a fork or import being written) or
    appended to (it must exist and not be deleted);
    the time; the NOTIFY payload ('' for none); the log position after the caller's own last
    commit and its sessions' heads as of then (NULL where it does not know one): when the log is
    still there, the heads are not read; the fences of the batch's fenced appends, as (session,
    run id, token) in three arrays. Writes nothing and answers applied = false if a session
    breaks its rule (the caller then plans the batch under the lock, with refusals). Answers the
    position before the batch and each session's head before it (NULL for a created session).

    Its statements are planned once per connection and the plan is kept, with whatever
    statistics the tables had then; migration analyzes them empty. Planned for an empty log,
    the heads read scanned and sorted the whole log once per session of the batch, inside the
    log head's lock: unnoticed by one process, whose remembered heads spare the read, but two
    workers miss that hint on every batch and fell to 0.08x of one worker's throughput (8,786
    scans reading 54 million rows in one 12 s run). Every table it reads is looked up by
    primary key, so scans are ruled out for the function's own statements (enable_seqscan is
    restored when it returns), whatever the statistics say.

    Why columns and not the JSON rows of agentlog_append_v2: per 64-row call the server spent
    about a fifth of its instructions parsing the JSON document (jsonb_recv) and taking its
    elements apart, and joined the rows to their sessions' heads with a hash join; arrays
    indexed by the row's session need neither (3.96 -> 2.94 million instructions per call,
    callgrind, docs/benchmarks.md). The client sends each array as one text literal
    (agentlog.infra.postgres.array_literals)."""
    s = _ident(schema)
    return f"""
        CREATE OR REPLACE FUNCTION {s}.{APPEND_FUNCTION}(
            row_sessions integer[], row_seqs integer[], row_topics text[], row_runs text[],
            row_starts integer[], row_lengths integer[], batch_states bytea,
            batch_sessions text[], batch_creates boolean[],
            batch_time timestamptz, notify_payload text,
            known_position bigint, known_heads bigint[],
            fence_sessions text[], fence_runs text[], fence_tokens bigint[],
            OUT applied boolean, OUT position_before bigint, OUT heads_before bigint[])
        LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $fn$
        DECLARE
            rules_hold boolean;
        BEGIN
            -- Every append takes this row's lock first and holds it to COMMIT: commit order
            -- is position order and seq order, across every process (see the module).
            SELECT h.position INTO position_before
                FROM {s}.agentlog_log_head AS h WHERE h.id FOR UPDATE;
            IF position_before = known_position AND known_heads IS NOT NULL
               AND array_position(known_heads, NULL) IS NULL
               AND NOT (true = ANY(batch_creates)) THEN
                -- Nobody appended since the caller's own last commit, so the heads it
                -- remembers from it are exact (never a deleted session's): no read.
                heads_before := known_heads;
                rules_hold := true;
            ELSE
                -- A new snapshot: it sees every append that committed before the lock was ours.
                SELECT array_agg(CASE WHEN b.known THEN b.head END ORDER BY b.n),
                       bool_and(CASE WHEN b.creates THEN NOT b.known AND NOT b.importing
                                     ELSE b.known AND NOT b.deleted END)
                    INTO heads_before, rules_hold
                    FROM (SELECT q.n, q.creates, s.session_id IS NOT NULL AS known,
                                 COALESCE(newest.seq, 0) AS head,
                                 COALESCE(newest.topic = 'session_deleted', false) AS deleted,
                                 -- A fork or import of the id is being written in batches:
                                 -- its rows are there, its session row is not yet.
                                 EXISTS (SELECT 1 FROM {s}.agentlog_imports AS i
                                         WHERE i.session_id = q.sid) AS importing
                          FROM unnest(batch_sessions, batch_creates) WITH ORDINALITY
                               AS q(sid, creates, n)
                          LEFT JOIN {s}.agentlog_sessions AS s ON s.session_id = q.sid
                          LEFT JOIN LATERAL (
                              SELECT e.originator_version AS seq, e.topic
                              FROM {s}.agentlog_events AS e WHERE e.originator_id = s.session_id
                              ORDER BY e.originator_version DESC LIMIT 1) AS newest ON true) AS b;
            END IF;
            -- A fenced append lands only while its run is its session's current, open run
            -- in the run index (read after the lock, like the heads).
            IF rules_hold AND cardinality(fence_sessions) > 0 THEN
                SELECT bool_and(cur.run_id IS NOT DISTINCT FROM f.run
                                AND cur.started_seq IS NOT DISTINCT FROM f.token
                                AND cur.ended_seq IS NULL)
                    INTO rules_hold
                    FROM unnest(fence_sessions, fence_runs, fence_tokens) AS f(sid, run, token)
                    LEFT JOIN LATERAL (
                        SELECT r.run_id, r.started_seq, r.ended_seq FROM {s}.agentlog_runs AS r
                        WHERE r.session_id = f.sid ORDER BY r.started_seq DESC LIMIT 1) AS cur
                        ON true;
            END IF;
            IF NOT rules_hold THEN
                applied := false;
                RETURN;
            END IF;
            -- A row's session and its head before the batch are looked up by the row's index
            -- into the batch's sessions: no join.
            INSERT INTO {s}.agentlog_events (originator_id, originator_version, topic, state,
                notification_id, run_id, recorded_at)
            SELECT batch_sessions[r.i], COALESCE(heads_before[r.i], 0) + r.seq, r.topic,
                   substring(batch_states FROM r.start FOR r.len),
                   position_before + r.n, r.run_id, batch_time
            FROM unnest(row_sessions, row_seqs, row_topics, row_runs, row_starts, row_lengths)
                 WITH ORDINALITY AS r(i, seq, topic, run_id, start, len, n);
            IF true = ANY(batch_creates) THEN
                INSERT INTO {s}.agentlog_sessions (session_id, created_at)
                SELECT c.sid, batch_time
                FROM unnest(batch_sessions, batch_creates) AS c(sid, creates)
                WHERE c.creates;
            END IF;
            UPDATE {s}.agentlog_log_head
                SET position = position_before + cardinality(row_seqs) WHERE id;
            IF notify_payload <> '' THEN
                PERFORM pg_notify('{NOTIFY_CHANNEL}', notify_payload);
            END IF;
            applied := true;
        END
        $fn$"""


def plain_call_arguments(
    plain: PlainPlan,
    notify_payload: str,
    known_position: int | None,
    known_heads: list[int | None],
) -> list[Any]:
    """The append function's arguments for a plain batch (see append_function_sql), arrays as
    text literals; `known_heads` in the order of `plain.sessions`."""
    plan = plain.plan
    index = {session_id: n for n, session_id in enumerate(plain.sessions, 1)}
    sessions, seqs, topics, runs, lengths = zip(*plan.rows, strict=True)
    starts = list(accumulate(lengths, initial=1))
    starts.pop()
    return [
        int_array([index[session_id] for session_id in sessions]),
        int_array(seqs),
        text_array(topics),
        text_array(runs),
        int_array(starts),
        int_array(lengths),
        b"".join(plan.states),
        text_array(plain.sessions),
        bool_array(plain.creates),
        utc_now(),
        notify_payload,
        known_position,
        int_array(known_heads),
        text_array([session_id for session_id, _, _ in plain.fences]),
        text_array([run_id for _, run_id, _ in plain.fences]),
        int_array([token for _, _, token in plain.fences]),
    ]


def index_runs_sql(schema: str, *, one_session: bool = False) -> str:
    """Fills the run index from the log (a schema from before it, an imported session: $1).
    A run ends at its first terminal event, or where the next run started (superseded)."""
    s = _ident(schema)
    only = " AND s.originator_id = $1" if one_session else ""
    return f"""
        INSERT INTO {s}.agentlog_runs (session_id, run_id, started_seq, ended_seq)
        SELECT s.originator_id, s.run_id, s.originator_version,
               (SELECT min(t.originator_version) FROM {s}.agentlog_events AS t
                WHERE t.originator_id = s.originator_id
                  AND t.originator_version > s.originator_version
                  AND (t.topic = 'run_started' OR (t.run_id = s.run_id AND t.topic IN
                       ('run_finished', 'run_failed', 'run_cancelled', 'run_abandoned'))))
        FROM {s}.agentlog_events AS s
        WHERE s.topic = 'run_started' AND s.run_id IS NOT NULL{only}
        ON CONFLICT DO NOTHING"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# What an append, a session read and the run index look up (the leases and the log head are a
# handful of rows).
_ANALYZED = ("agentlog_sessions", "agentlog_events", "agentlog_idempotency", "agentlog_runs")

_TABLES = (
    "agentlog_log_head",
    "agentlog_sessions",
    "agentlog_events",
    "agentlog_idempotency",
    "agentlog_runs",
    "agentlog_turns_due",
    "agentlog_run_leases",
    "agentlog_imports",
    "agentlog_removed_imports",
    *postgres_transcripts.TABLES,
    *postgres_revocations.TABLES,
    *postgres_attachments.TABLES,
)
# Columns of older layouts that migrate removes.
_LEGACY_COLUMNS = (("agentlog_sessions", "head"), ("agentlog_sessions", "updated_at"))


async def migrate(conn: asyncpg.Connection, schema: str) -> bool:
    """Create or update the schema; safe when several processes start at once. True when it
    changed the schema (its tables' statistics are then refreshed).

    When the schema is already current this runs no DDL at all. That matters: DDL such as
    ALTER TABLE takes ACCESS EXCLUSIVE locks even when it changes nothing, and a server starting
    while others append would then deadlock with them (seen in CI: four processes opening the
    store while appending).
    """
    async with conn.transaction():
        # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog; serialise.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('agentlog-migrate'))")
        legacy = await _legacy_columns(conn, schema)
        if (
            not legacy
            and await _tables_exist(conn, schema)
            and await _has_request_hash(conn, schema)
        ):
            # Tables current: at most the append function is new, and creating it locks no
            # table (servers of the version before keep appending meanwhile).
            if not await _has_append_function(conn, schema):
                await conn.execute(append_function_sql(schema))
            return False
        had_runs = await conn.fetchval("SELECT to_regclass($1)", f"{_ident(schema)}.agentlog_runs")
        for statement in schema_statements(schema):
            await conn.execute(statement)
        if had_runs is None:
            await conn.execute(index_runs_sql(schema))
        for table, column in legacy:
            await conn.execute(f"ALTER TABLE {_ident(schema)}.{table} DROP COLUMN {column}")
    return True


async def _tables_exist(conn: asyncpg.Connection, schema: str) -> bool:
    found = await conn.fetchval(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = $1 AND table_name = ANY($2::text[])",
        schema,
        list(_TABLES),
    )
    return bool(found == len(_TABLES))


async def _has_request_hash(conn: asyncpg.Connection, schema: str) -> bool:
    found = await conn.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 "
        "AND table_name = 'agentlog_idempotency' AND column_name = 'request_hash'",
        schema,
    )
    return bool(found)


async def _has_append_function(conn: asyncpg.Connection, schema: str) -> bool:
    found = await conn.fetchval(
        "SELECT to_regprocedure($1)",
        f"{_ident(schema)}.{APPEND_FUNCTION}({APPEND_FUNCTION_ARGUMENTS})",
    )
    return found is not None


async def _legacy_columns(conn: asyncpg.Connection, schema: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = $1 AND (table_name, column_name) IN "
        "(SELECT * FROM unnest($2::text[], $3::text[]))",
        schema,
        [t for t, _ in _LEGACY_COLUMNS],
        [c for _, c in _LEGACY_COLUMNS],
    )
    return [(row[0], row[1]) for row in rows]


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        session_id=row[0], seq=row[1], position=row[2], time=row[3], event=decode_event(row[4])
    )


class PostgresEventStore(StoreBase):
    """`postgresql://...`: the store shared by every server process."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        wakeups: Wakeups | None = None,
        notify: bool = False,
        max_event_bytes: int = 1024 * 1024,
        pool_size: int = 10,
        timeout: float = 5.0,
        heads_cache_bytes: int = heads_share(DEFAULT_CACHE_BYTES),
    ) -> None:
        super().__init__(wakeups=wakeups, max_event_bytes=max_event_bytes, timeout=timeout)
        self.dsn = dsn
        self.timeout = timeout
        self.schema = schema
        self.notify = notify
        self.process_token = secrets.token_hex(4)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._writer_conn: asyncpg.Connection | None = None
        # Plain batches the one-statement path handed to the locked path (a session that
        # broke its rule there: unknown, deleted, or created meanwhile).
        self.plain_path_misses = 0
        # The log position after this process's last commit and the heads it wrote then:
        # while nobody else appends, the append function need not read heads (a hint only).
        self._known_position: int | None = None
        self._known_heads: ByteBoundedLru[str, int] = ByteBoundedLru(heads_cache_bytes)
        t = _ident(schema)
        self._sql_lock_head = f"SELECT position FROM {t}.agentlog_log_head WHERE id FOR UPDATE"
        newest = (
            f"LEFT JOIN LATERAL (SELECT e.originator_version AS seq, e.recorded_at, e.topic "
            f"FROM {t}.agentlog_events AS e WHERE e.originator_id = s.session_id "
            "ORDER BY e.originator_version DESC LIMIT 1) AS newest ON true"
        )
        newest_type = (
            f"LEFT JOIN LATERAL (SELECT e.originator_version AS seq, e.topic "
            f"FROM {t}.agentlog_events AS e WHERE e.originator_id = s.session_id "
            "ORDER BY e.originator_version DESC LIMIT 1) AS newest ON true"
        )
        # What an append builds on, read under the log head lock: each session's head, and
        # whether its newest event is its tombstone (deletion is final: nothing is appended
        # after it, agentlog.domain.rules.appending).
        self._sql_heads = (
            "SELECT s.session_id, COALESCE(newest.seq, 0), "
            f"COALESCE(newest.topic = 'session_deleted', false) FROM {t}.agentlog_sessions AS s "
            f"{newest_type} "
            "WHERE s.session_id = ANY($1::text[])"
        )
        # Sessions being imported in batches (agentlog.infra.store.import_batches).
        self._sql_importing = (
            f"SELECT session_id FROM {t}.agentlog_imports WHERE session_id = ANY($1::text[])"
        )
        session_columns = (
            "s.session_id, COALESCE(newest.seq, 0), s.created_at, "
            "COALESCE(newest.recorded_at, s.created_at), newest.topic = 'session_deleted'"
        )
        # The batch's rows travel as one JSON array of [session, seq, topic, run id, length]
        # ($1) and their states as one concatenated bytea ($2), sliced apart here. asyncpg
        # encodes six typed arrays element by element with several isinstance checks each,
        # which cost more than the database spent inserting the rows (measured: 0.15-0.2 ms
        # of a 1.2 ms 64-event transaction); one document and one blob cost Python almost
        # nothing, though parsing the document costs the server about a fifth of a plain
        # batch's call, which is why plain batches, the common case, send column arrays as
        # text literals instead (append_function_sql); this locked path keeps the document.
        # $3 is the position before the batch, $4 the time, $5 the sessions this batch creates.
        insert_events = f"""
                INSERT INTO {t}.agentlog_events (originator_id, originator_version, topic,
                    state, notification_id, run_id, recorded_at)
                SELECT r.sid, r.seq, r.topic,
                       substring($2::bytea FROM (sum(r.len) OVER w - r.len + 1)::int FOR r.len),
                       $3::bigint + r.n, r.run_id, $4
                FROM (SELECT v ->> 0 AS sid, (v ->> 1)::bigint AS seq, v ->> 2 AS topic,
                             v ->> 3 AS run_id, (v ->> 4)::int AS len, n
                      FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(v, n)) AS r"""
        insert_sessions = f"""
                INSERT INTO {t}.agentlog_sessions (session_id, created_at)
                SELECT c.sid, $4 FROM unnest($5::text[]) AS c(sid)"""
        # One round trip writes the events, the rows of new sessions and the log head ($6 is
        # the position after the batch, $7 the NOTIFY payload).
        self._sql_write = f"""
            WITH events AS ({insert_events}
                WINDOW w AS (ORDER BY r.n)
            ), sessions AS ({insert_sessions}
            ), log_head AS (
                UPDATE {t}.agentlog_log_head SET position = $6 WHERE id
            )
            SELECT CASE WHEN $7::text <> '' THEN pg_notify('{NOTIFY_CHANNEL}', $7) END
        """
        # Every array goes as one text literal that the server casts (array_literals).
        self._sql_append_plain = (
            f"SELECT applied, position_before, heads_before FROM {t}.{APPEND_FUNCTION}"
            "($1::text::integer[], $2::text::integer[], $3::text::text[], $4::text::text[], "
            "$5::text::integer[], $6::text::integer[], $7::bytea, $8::text::text[], "
            "$9::text::boolean[], $10::timestamptz, $11::text, $12::bigint, "
            "$13::text::bigint[], $14::text::text[], $15::text::text[], $16::text::bigint[])"
        )
        columns = "originator_id, originator_version, notification_id, recorded_at, state"
        self._sql_read = (
            f"SELECT {columns} FROM {t}.agentlog_events WHERE originator_id = $1 "
            "AND originator_version > $2 ORDER BY originator_version LIMIT $3"
        )
        self._sql_read_all = (
            f"SELECT {columns} FROM {t}.agentlog_events WHERE notification_id > $1 "
            "ORDER BY notification_id LIMIT $2"
        )
        self._sql_session = (
            f"SELECT {session_columns} FROM {t}.agentlog_sessions AS s {newest} "
            "WHERE s.session_id = $1"
        )
        self._sql_sessions = (
            f"SELECT {session_columns} FROM {t}.agentlog_sessions AS s {newest} "
            "WHERE s.session_id > $1 ORDER BY s.session_id LIMIT $2"
        )
        self._sql_last_position = f"SELECT position FROM {t}.agentlog_log_head WHERE id"
        self._sql_keys = (
            "SELECT i.session_id, i.key, i.seqs, i.request_hash "
            f"FROM {t}.agentlog_idempotency AS i "
            "JOIN unnest($1::text[], $2::text[]) AS k(sid, key) "
            "ON i.session_id = k.sid AND i.key = k.key"
        )
        self._sql_insert_keys = (
            f"INSERT INTO {t}.agentlog_idempotency (session_id, key, seqs, created_at, "
            "request_hash) SELECT k.sid, k.key, string_to_array(k.seqs, ',')::bigint[], now(), "
            "k.hash FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
            "AS k(sid, key, seqs, hash)"
        )
        self._sql_keyed = (
            f"SELECT seqs, request_hash, created_at FROM {t}.agentlog_idempotency "
            "WHERE session_id = $1 AND key = $2"
        )
        self._sql_prune_keys = f"DELETE FROM {t}.agentlog_idempotency WHERE created_at < $1"
        runs = "session_id, run_id, started_seq, ended_seq"
        self._sql_current_runs = (
            f"SELECT DISTINCT ON (session_id) {runs} FROM {t}.agentlog_runs "
            "WHERE session_id = ANY($1::text[]) ORDER BY session_id, started_seq DESC"
        )
        self._sql_run = (
            f"SELECT {runs} FROM {t}.agentlog_runs WHERE session_id = $1 AND run_id = $2"
        )
        self._sql_current_run = (
            f"SELECT {runs} FROM {t}.agentlog_runs WHERE session_id = $1 "
            "ORDER BY started_seq DESC LIMIT 1"
        )
        self._sql_open_runs = (
            f"SELECT {runs} FROM {t}.agentlog_runs WHERE ended_seq IS NULL "
            "AND (session_id, run_id) > ($2, $3) ORDER BY session_id, run_id LIMIT $1"
        )
        self._sql_start_runs = (
            f"INSERT INTO {t}.agentlog_runs (session_id, run_id, started_seq) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING"
        )
        self._sql_end_runs = (
            f"UPDATE {t}.agentlog_runs AS r SET ended_seq = e.seq "
            "FROM unnest($1::text[], $2::text[], $3::bigint[]) AS e(sid, run_id, seq) "
            "WHERE r.session_id = e.sid AND r.run_id = e.run_id AND r.ended_seq IS NULL"
        )
        self._sql_mark_turns_due = (
            f"INSERT INTO {t}.agentlog_turns_due (session_id, due_seq, due_at) "
            "SELECT sid, seq, $3 FROM unnest($1::text[], $2::bigint[]) AS d(sid, seq) "
            "ON CONFLICT (session_id) DO UPDATE SET due_seq = excluded.due_seq, "
            "due_at = excluded.due_at"
        )
        self._sql_turns_due = (
            f"SELECT session_id, due_seq FROM {t}.agentlog_turns_due WHERE session_id > $1 "
            "AND due_at < $2 ORDER BY session_id LIMIT $3"
        )
        self._sql_settle_turn_due = (
            f"DELETE FROM {t}.agentlog_turns_due WHERE session_id = $1 AND due_seq <= $2"
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> PostgresEventStore:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self._pool_size,
            timeout=self.timeout,  # to connect
            # Also bounds every statement of the pool's other users (projections, import, the
            # run lease), so a silent connection never hangs them; raise the setting if a
            # rebuild's bulk statements on a very large projection need longer.
            command_timeout=self.timeout,
            server_settings=_server_settings(self.timeout),
            reset=keep_session_state,
        )
        async with self._pool.acquire() as conn:
            migrated = await migrate(conn, self.schema)
        if migrated:
            await self.analyze()
        return self

    async def analyze(self) -> None:
        """Fresh planner statistics for the log's tables. Autovacuum analyzes a table only
        after a tenth of its rows changed and at its own pace; after a bulk write the head
        lookups and session reads (prepared, so planned once for many calls) were seen to
        pick scans and sorts until a manual ANALYZE: 5,000 -> 396 sessions filled per second,
        a session read 10x slower. ANALYZE samples (30,000 rows per table by default), so its
        cost stays flat as the log grows, and it invalidates the plans it makes stale."""
        tables = ", ".join(f"{_ident(self.schema)}.{table}" for table in _ANALYZED)
        await self.pool.execute(f"ANALYZE {tables}")

    async def close(self) -> None:
        await super().close()
        await self._drop_writer_conn()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> PostgresEventStore:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    # -- writes -----------------------------------------------------------------------------

    async def _writer(self) -> asyncpg.Connection:
        # Appends are written by one task at a time (group commit), so one held connection
        # saves a pool round trip per transaction. It is our own connection, not the pool's:
        # the pool detaches a pooled connection that the server closed while it was idle,
        # after which every call on it fails ("released back to the pool") and it was never
        # replaced (issue 10).
        conn = self._writer_conn
        if conn is None or conn.is_closed():
            self._writer_conn = None
            # Every statement the writer sends looks rows up by key, and asyncpg prepares
            # them, so the server may keep one plan for many calls, made with the statistics
            # of then: planned against an empty log (migration analyzes it empty), the locked
            # path's heads read scanned the whole log per session (as the append function's
            # did; see append_function_sql). Scans are ruled out on this connection only.
            conn = await asyncpg.connect(
                self.dsn,
                timeout=self.timeout,
                server_settings={**_server_settings(self.timeout), "enable_seqscan": "off"},
            )
            self._writer_conn = conn
        return conn

    async def _drop_writer_conn(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            # terminate, not close: close waits for the server, which may be the thing hung.
            conn.terminate()

    async def _write_batch(self, batch: list[PendingAppend]) -> list[Outcome]:
        attempt = _Attempt()
        try:
            async with asyncio.timeout(attempt_seconds(batch, self.timeout)):
                conn = await self._writer()
                plain = plan_plain(batch)
                if plain is not None:
                    outcomes = await self._write_plain(conn, plain, attempt)
                    if outcomes is not None:
                        return outcomes
                    self.plain_path_misses += 1
                return await self._write_locked(conn, batch, attempt)
        except _TRANSIENT as exc:
            # The server answered with a race it rolled back (also at COMMIT): try again.
            self._forget_heads()
            raise TransientWriteError(str(exc)) from exc
        except asyncio.CancelledError:
            # The writer itself was cancelled: the connection is mid-protocol, drop it. The
            # cancellation goes on; it is never turned into an append's outcome.
            self._forget_heads()
            await self._drop_writer_conn()
            raise
        except Exception as exc:
            self._forget_heads()
            if connection_failed(exc):
                await self._drop_writer_conn()
                if attempt.committing:
                    raise OutcomeUnknown(f"append outcome unknown: {_describe(exc)}") from exc
                raise NotWritten(f"database unavailable: {_describe(exc)}") from exc
            # The server answered with an error: the statement was rolled back.
            raise

    async def check_writes(self) -> None:
        """The write path end to end, on the writer's own connection (run by the writer
        task): take the log head lock as an append does and commit. Fails while appends
        cannot commit (server down or hung, read-only after a failover, lock held)."""
        try:
            async with asyncio.timeout(self.timeout):
                conn = await self._writer()
                # Not `async with conn.transaction()`: after a timeout its rollback would wait
                # on the very connection that went silent.
                transaction = conn.transaction()
                await transaction.start()
                try:
                    await conn.execute(f"SET LOCAL lock_timeout = '{int(self.timeout * 1000)}ms'")
                    await conn.fetchval(self._sql_lock_head)
                except Exception as exc:
                    if not connection_failed(exc):
                        await transaction.rollback()
                    raise
                await transaction.commit()
        except asyncio.CancelledError:
            await self._drop_writer_conn()
            raise
        except Exception as exc:
            if connection_failed(exc):
                await self._drop_writer_conn()
            raise StoreUnavailable(f"cannot write: {_describe(exc)}") from exc

    async def _write_plain(
        self, conn: asyncpg.Connection, plain: PlainPlan, attempt: _Attempt
    ) -> list[Outcome] | None:
        """One auto-committed statement that numbers the batch in the database (see
        append_function_sql); None if a session broke its rule there."""
        plan = plain.plan
        known = self._known_heads
        arguments = plain_call_arguments(
            plain,
            self._notify_payload(plan.changed),
            self._known_position,
            [known.get(session_id) for session_id in plain.sessions],
        )
        attempt.committing = True  # one auto-committed statement: its COMMIT is implicit
        row = await conn.fetchrow(self._sql_append_plain, *arguments)
        attempt.committing = False  # answered: committed, or (not applied) nothing written
        if not row[0]:
            return None
        position_before: int = row[1]
        heads_before: list[int | None] = row[2]
        if position_before != self._known_position:
            known.clear()  # someone else appended since our last commit
        self._remember(
            position_before + len(plan.rows),
            {
                session_id: (head or 0) + plan.heads[session_id]  # type: ignore[operator]
                for session_id, head in zip(plain.sessions, heads_before, strict=True)
            },
        )
        return plain.outcomes(heads_before)

    async def _write_locked(
        self, conn: asyncpg.Connection, batch: list[PendingAppend], attempt: _Attempt
    ) -> list[Outcome]:
        transaction = conn.transaction()
        await transaction.start()
        try:
            # Lock first, read after: under READ COMMITTED the next statement sees every
            # append that committed before we got the lock.
            position: int = await conn.fetchval(self._sql_lock_head)
            session_ids = list({p.session_id for p in batch})
            heads: dict[str, int | None] = dict.fromkeys(session_ids)
            deleted: set[str] = set()
            for found in await conn.fetch(self._sql_heads, session_ids):
                heads[found[0]] = found[1]
                if found[2]:
                    deleted.add(found[0])
            importing: set[str] = set()
            if None in heads.values():  # not a session (yet): is it being imported?
                unknown = [s for s, h in heads.items() if h is None]
                importing = {r[0] for r in await conn.fetch(self._sql_importing, unknown)}
            keyed = [p for p in batch if p.idempotency_key is not None]
            known_keys: dict[tuple[str, str], KnownKey] = {}
            if keyed:
                for found in await conn.fetch(
                    self._sql_keys,
                    [p.session_id for p in keyed],
                    [p.idempotency_key for p in keyed],
                ):
                    known_keys[(found[0], found[1])] = (list(found[2]), found[3])
            runs: dict[str, RunRecord | None] | None = None
            if needs_run_index(batch):
                runs = dict.fromkeys(session_ids)
                for found in await conn.fetch(self._sql_current_runs, session_ids):
                    runs[found[0]] = _run_record(found)
            plan = plan_batch(batch, heads, position, known_keys, runs, deleted, importing)
            if plan.writes:
                await conn.fetchval(self._sql_write, *self._write_arguments(plan))
            if plan.new_keys:
                await conn.execute(
                    self._sql_insert_keys,
                    [sid for sid, _, _, _ in plan.new_keys],
                    [key for _, key, _, _ in plan.new_keys],
                    [",".join(map(str, seqs)) for _, _, seqs, _ in plan.new_keys],
                    [h for _, _, _, h in plan.new_keys],
                )
            for sql, changes in (
                (self._sql_start_runs, plan.run_starts),
                (self._sql_end_runs, plan.run_ends),
            ):
                if changes:
                    await conn.execute(
                        sql, *(list(column) for column in zip(*changes, strict=True))
                    )
            if plan.turns_due:
                await conn.execute(
                    self._sql_mark_turns_due,
                    [sid for sid, _ in plan.turns_due],
                    [seq for _, seq in plan.turns_due],
                    utc_now(),
                )
        except Exception as exc:
            # The server refused a statement (or planning failed) and the connection is fine:
            # roll back. A broken or silent connection is not rolled back (that would wait on
            # it); it is dropped, and the server rolls back when it sees the connection go.
            if not connection_failed(exc):
                await transaction.rollback()
            raise
        # From here a broken connection means "outcome unknown": the server may have
        # committed without our hearing it, so neither retry (duplicates) nor report failure.
        attempt.committing = True
        await transaction.commit()
        if self._known_position != position:
            # Someone else appended since our last commit: every head we remember may be stale.
            self._known_heads.clear()
        # A deleted session's head is never remembered: the append function, which does not
        # read the tombstone when it trusts what we remember, must never build on it.
        self._remember(
            plan.position,
            {
                s: h
                for s, h in heads.items()
                if h is not None and s not in deleted and s not in plan.tombstoned
            },
        )
        return plan.outcomes

    def _forget_heads(self) -> None:
        self._known_position = None
        self._known_heads.clear()

    def _remember(self, position: int, heads: dict[str, int]) -> None:
        self._known_position = position
        for session_id, head in heads.items():
            self._known_heads.put(session_id, head, _HEAD_ENTRY_BYTES + len(session_id))

    def _write_arguments(self, plan: BatchPlan) -> list[Any]:
        return [
            _rows_encoder.encode(plan.rows).decode(),
            b"".join(plan.states),
            plan.first_position,
            utc_now(),
            plan.created,
            plan.position,
            self._notify_payload(plan.changed),
        ]

    def _notify_payload(self, session_ids: set[str]) -> str:
        if not self.notify:
            return ""
        payload = self.process_token + "|" + ",".join(session_ids)
        if len(payload.encode()) > _NOTIFY_LIMIT:
            return self.process_token + "|*"
        return payload

    # -- reads ------------------------------------------------------------------------------

    async def _query(self, kind: str, sql: str, *args: Any) -> Any:
        """One read on a pooled connection, bounded by the timeout. A connection that failed
        or went silent is terminated before it goes back, so the pool replaces it and never
        waits on it; the caller gets StoreUnavailable (503), not a driver error."""
        pool = self.pool
        try:
            async with asyncio.timeout(self.timeout):
                conn = await pool.acquire()
        except Exception as exc:
            if connection_failed(exc):
                raise StoreUnavailable(f"database unavailable: {_describe(exc)}") from exc
            raise
        try:
            async with asyncio.timeout(self.timeout):
                result = await getattr(conn, kind)(sql, *args)
        except Exception as exc:
            if connection_failed(exc):
                conn.terminate()
                await pool.release(conn)
                raise StoreUnavailable(f"database unavailable: {_describe(exc)}") from exc
            await pool.release(conn, timeout=self.timeout)
            raise
        except BaseException:
            conn.terminate()  # cancelled mid-read: the protocol state is unknown
            await pool.release(conn)
            raise
        try:
            await pool.release(conn, timeout=self.timeout)
        except Exception:  # noqa: BLE001 - the read succeeded; a failed reset only loses it
            conn.terminate()
            with contextlib.suppress(Exception):
                await pool.release(conn)
        return result

    async def read(self, session_id: str, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self._query("fetch", self._sql_read, session_id, after, limit)
        return [_recorded(row) for row in rows]

    async def read_stored(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[tuple[RecordedEvent, bytes]]:
        rows = await self._query("fetch", self._sql_read, session_id, after, limit)
        return [(_recorded(row), row[4]) for row in rows]

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = await self._query("fetch", self._sql_read_all, after, limit)
        return [_recorded(row) for row in rows]

    async def session(self, session_id: str) -> SessionHead | None:
        row = await self._query("fetchrow", self._sql_session, session_id)
        return _session_head(row) if row is not None else None

    async def sessions(self, after: str | None = None, limit: int = 100) -> list[SessionHead]:
        rows = await self._query("fetch", self._sql_sessions, after or "", limit)
        return [_session_head(row) for row in rows]

    async def last_position(self) -> int:
        value: int = await self._query("fetchval", self._sql_last_position)
        return value

    async def notify_queue_usage(self) -> float:
        """The fraction of PostgreSQL's NOTIFY queue in use (0..1). A LISTEN connection that
        stops reading holds the queue back; when it is full, every NOTIFY, and so every
        append transaction that sends one, fails."""
        value: float = await self._query("fetchval", "SELECT pg_notification_queue_usage()")
        return value

    async def keyed_append(self, session_id: str, key: str) -> KeyedAppend | None:
        row = await self._query("fetchrow", self._sql_keyed, session_id, key)
        if row is None:
            return None
        return KeyedAppend(seqs=list(row[0]), request_hash=row[1], created_at=row[2])

    async def prune_idempotency(self, older_than: datetime) -> int:
        status: str = await self._query("execute", self._sql_prune_keys, older_than)
        return int(status.rsplit(" ", 1)[-1])

    async def run(self, session_id: str, run_id: str) -> RunRecord | None:
        row = await self._query("fetchrow", self._sql_run, session_id, run_id)
        return _run_record(row) if row is not None else None

    async def current_run(self, session_id: str) -> RunRecord | None:
        row = await self._query("fetchrow", self._sql_current_run, session_id)
        return _run_record(row) if row is not None else None

    async def open_runs(self, limit: int = 1000, after: RunRecord | None = None) -> list[RunRecord]:
        cursor = ("", "") if after is None else (after.session_id, after.run_id)
        rows = await self._query("fetch", self._sql_open_runs, limit, *cursor)
        return [_run_record(row) for row in rows]

    async def turns_due(
        self, due_before: datetime, limit: int = 1000, after: str = ""
    ) -> list[TurnDue]:
        rows = await self._query("fetch", self._sql_turns_due, after, due_before, limit)
        return [TurnDue(session_id=row[0], due_seq=row[1]) for row in rows]

    async def settle_turn_due(self, session_id: str, through_seq: int) -> None:
        await self._query("execute", self._sql_settle_turn_due, session_id, through_seq)


def _run_record(row: Sequence[Any]) -> RunRecord:
    return RunRecord(session_id=row[0], run_id=row[1], started_seq=row[2], ended_seq=row[3])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the database timeout"
    return f"{type(exc).__name__}: {exc}"


def _session_head(row: Sequence[Any]) -> SessionHead:
    created: datetime = row[2]
    updated: datetime = row[3]
    return SessionHead(
        session_id=row[0],
        head=row[1],
        created_at=created,
        updated_at=updated,
        deleted_at=updated if row[4] else None,
    )
