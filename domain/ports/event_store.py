"""The event store: the append-only log of every session, and what it answers about runs.

Its contract is written once, in `EventStore`'s docstring; every backend is run through the same
contract suite (tests/contract) to prove it keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import NamedTuple, Protocol

import msgspec

from agentlog.domain.events import Event, RecordedEvent
from agentlog.domain.ports.wakeups import Wakeup


class SessionHead(msgspec.Struct, frozen=True, kw_only=True):
    """Where a session's log stands, cheap to read without reading events."""

    session_id: str
    head: int
    created_at: datetime
    updated_at: datetime
    # When its tombstone was written, if its newest event is one (read by the same query as
    # the head, so telling a deleted session from a live one costs no second read).
    deleted_at: datetime | None = None


class RunFence(msgspec.Struct, frozen=True, kw_only=True):
    """What a run's writer shows the store with each append: its run id and its fencing
    token, the seq of its `run_started` (per session, tokens only grow)."""

    run_id: str
    token: int


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One run in the store's run index: where it started and, once it ended, where."""

    session_id: str
    run_id: str
    started_seq: int
    ended_seq: int | None = None


class TurnDue(msgspec.Struct, frozen=True, kw_only=True):
    """A session owed a look for its next turn (an answered approval's continuation, a queued
    prompt's turn) once no run holds it: `due_seq` is the newest event that owes it."""

    session_id: str
    due_seq: int


class KeyedAppend(msgspec.Struct, frozen=True, kw_only=True):
    """What an idempotency key is bound to: the seqs its append got and its request's hash."""

    seqs: list[int]
    request_hash: str | None = None
    created_at: datetime


class FramedPage(NamedTuple):
    """A page read framed (`read_framed`): how many events it holds, the last one's seq
    (`after` when it holds none), and their frames, joined."""

    events: int
    last_seq: int
    frames: bytes


class EventStore(Protocol):
    """The append-only log of every session.

    Contract:
    - `append` is atomic for its batch and returns the assigned seqs only once the events are
      durable. Seqs are per session, start at 1 and are dense: no gaps, no duplicates.
    - Without `expected_seq` an append never fails because another writer got there first: it
      lands at the next free seqs. With `expected_seq`, if the session's head differs the
      append raises ExpectedSeqMismatch (carrying the head) and writes nothing.
    - Seq order is commit order, and so is `position` order across sessions: a reader tailing
      `seq > N` (or `position > P`) never passes an event that commits later.
    - A batch starting with SessionCreated creates the session; any other append to a missing
      session raises UnknownSession. Bad input raises InvalidAppend and writes nothing.
    - Deletion is final: once a session's tombstone (`session_deleted`) has committed, every
      append to it raises SessionDeleted and writes nothing, whatever its fence, key or
      expected seq, and however long it was in flight; the check is made under the same lock
      as the head it builds on. The same holds for the CLI's transcripts of the session.
    - With `idempotency_key`, an append whose key this session already used writes nothing
      and returns the seqs the first append with that key got (also after a restart and
      across processes); an append that was refused does not use its key. With
      `request_hash` too, the key is bound to it: the same key with another hash raises
      IdempotencyKeyReused. `keyed_append` looks a key up; `prune_idempotency` forgets keys
      older than a moment.
    - The run index: every `run_started` (with a run id) adds a run, its first terminal event
      ends it, in the append's own transaction. `current_run` is the session's latest run,
      `open_runs` every run not ended. With `fence`, an append is written only while that run
      is the session's current run and not ended (else RunFenced, nothing written); the
      batch may itself end it.
    - The turns-due index: an append holding a `prompt_queued`, or a
      `tool_approval_responded` not followed by a `run_started` in the same append, marks its
      session in the append's own transaction; `turns_due` lists the marks made before a
      moment, `settle_turn_due` removes one once its look is done (never a newer mark).
    - `read_session` returns every event of the session after `after`, in seq order, however
      many there are.
    - `subscribe` wakes a reader after events commit; a lost wake-up only delays a reader that
      also re-checks periodically.
    """

    max_event_bytes: int

    async def append(
        self,
        session_id: str,
        events: Sequence[Event],
        expected_seq: int | None = None,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        fence: RunFence | None = None,
    ) -> list[int]: ...

    async def keyed_append(self, session_id: str, key: str) -> KeyedAppend | None: ...

    async def prune_idempotency(self, older_than: datetime) -> int:
        """Forget idempotency keys created before `older_than`; returns how many."""
        ...

    async def run(self, session_id: str, run_id: str) -> RunRecord | None: ...

    async def current_run(self, session_id: str) -> RunRecord | None: ...

    async def open_runs(self, limit: int = 1000, after: RunRecord | None = None) -> list[RunRecord]:
        """Runs not ended, ordered by (session, run id), from the one after `after` (the last
        of the previous page) on: page until an empty page to see every one."""
        ...

    async def turns_due(
        self, due_before: datetime, limit: int = 1000, after: str = ""
    ) -> list[TurnDue]:
        """Sessions marked before `due_before`, ordered by id, from the one after `after` on."""
        ...

    async def settle_turn_due(self, session_id: str, through_seq: int) -> None:
        """Remove the session's mark if it is for an event at or before `through_seq`."""
        ...

    async def read(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[RecordedEvent]: ...

    async def read_session(self, session_id: str, after: int = 0) -> list[RecordedEvent]:
        """Every event of the session after seq `after` (all pages)."""
        ...

    async def read_stored(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[tuple[RecordedEvent, bytes]]:
        """As `read`, each event with the JSON the log holds for it, byte for byte: fields
        this version does not know (written by a newer one) are in it, not in the event."""
        ...

    async def read_flat(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, str, bytes]]:
        """As `read`, each event as `(seq, type, encode_recorded(event))`: the flat JSON that
        HTTP sends, byte for byte what encoding the decoded event gives (so a field a newer
        version wrote is left out, and a default an older one lacked is in), built without
        an event object per row where the backend can."""
        ...

    async def read_framed(
        self, session_id: str, after: int = 0, limit: int = 1000, *, frame: bytes
    ) -> FramedPage:
        """As `read_flat`, each event written out as `frame % (seq, type, flat JSON)` (the type
        as UTF-8 bytes) and the page joined into one bytes object: the bytes of a page of
        frames, built where the rows are read, in one formatting step per event where the
        backend can. `frame` holds exactly `%d`, `%b`, `%b`, in that order, and no other `%`."""
        ...

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]: ...

    async def head(self, session_id: str) -> int:
        """The session's last seq; raises UnknownSession."""
        ...

    async def session(self, session_id: str) -> SessionHead | None: ...

    async def sessions(self, after: str | None = None, limit: int = 100) -> list[SessionHead]: ...

    async def last_position(self) -> int: ...

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[Wakeup]: ...

    def subscribe_all(self) -> AbstractAsyncContextManager[Wakeup]: ...
