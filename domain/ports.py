"""Ports: what the application needs from the outside world, written as Protocols.

The contract of the event store is written here, once; every adapter is run through the same
contract test suite (tests/contract) to prove it keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

import msgspec

from domain.events import Event, RecordedEvent


class SessionHead(msgspec.Struct, frozen=True, kw_only=True):
    """Where a session's log stands, cheap to read without reading events."""

    session_id: str
    head: int
    created_at: datetime
    updated_at: datetime


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


class KeyedAppend(msgspec.Struct, frozen=True, kw_only=True):
    """What an idempotency key is bound to: the seqs its append got and its request's hash."""

    seqs: list[int]
    request_hash: str | None = None
    created_at: datetime


class Wakeup(Protocol):
    """A subscription to wake-ups. A wake-up carries no data: readers always read the log."""

    async def wait(self, timeout: float) -> bool:
        """Return True when woken since the last wait, False when `timeout` passed first.

        Wake-ups that arrive between two waits are not lost: the next wait returns at once.
        """
        ...


class Wakeups(Protocol):
    """Wakes readers when events commit, in this process and (when configured) in others."""

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[Wakeup]:
        """Wake-ups for one session's appends."""
        ...

    def subscribe_all(self) -> AbstractAsyncContextManager[Wakeup]:
        """Wake-ups for any append to any session."""
        ...

    async def publish(self, session_ids: Sequence[str]) -> None:
        """Announce that these sessions have new committed events."""
        ...


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

    async def open_runs(self, limit: int = 1000) -> list[RunRecord]: ...

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

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]: ...

    async def head(self, session_id: str) -> int:
        """The session's last seq; raises UnknownSession."""
        ...

    async def session(self, session_id: str) -> SessionHead | None: ...

    async def sessions(self, after: str | None = None, limit: int = 100) -> list[SessionHead]: ...

    async def last_position(self) -> int: ...

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[Wakeup]: ...

    def subscribe_all(self) -> AbstractAsyncContextManager[Wakeup]: ...


class StartedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A run that was accepted: `offset` is the session's head just before `run_started` (or
    before the `conversation_rewound` it answers from), so a client that streams from it sees
    the whole run."""

    session_id: str
    run_id: str
    offset: int


class Rewind(msgspec.Struct, frozen=True, kw_only=True):
    """Start a run from an earlier point: the conversation goes back to `to_seq` (the last seq
    kept on the current branch) and the run answers from there (`conversation_rewound`)."""

    to_seq: int
    trigger: str = "from_message"  # "regenerate", "edit" or "from_message"
    message_id: str | None = None  # the UI message rewound to
    # The session's head when the rewind was planned: the runner appends with it as
    # `expected_seq`, so a conversation that changed since (another rewind, a run, an append)
    # is refused (ExpectedSeqMismatch) instead of going back further than meant. Events that
    # only close an abandoned run do not count (they land after any turn a rewind keeps).
    # None: not checked.
    expected_head: int | None = None


class AgentRuns(Protocol):
    """Agent turns, one active run per session across every process.

    Contract:
    - `start` records `run_started` and returns at once; the turn runs in the background and
      everything it does is appended as it happens. A second start while a run is active
      raises RunAlreadyActive with that run's id. A run whose owner died (lock expired) is
      first recorded as `run_abandoned`, its tool calls resolved, and the start proceeds.
    - Every run ends with exactly one terminal event (`run_finished`, `run_failed`,
      `run_cancelled`, `run_abandoned`), and every tool call it started gets exactly one
      terminal event, whatever happens (result, SDK error, CLI crash, cancel, shutdown).
    - `cancel` interrupts the turn, records `run_cancelled`, releases the lock and leaves no
      task or process behind. Raises UnknownRun / RunNotActive.
    - With `rewind`, `conversation_rewound` and `run_started` are appended in one batch, and
      the agent's context is the current branch only (domain.branches). With
      `rewind.expected_head`, a log changed since (beyond closing an abandoned run) raises
      ExpectedSeqMismatch and nothing is written.
    - `user_message_id` names the prompt's user message in the UIMessage projection (the
      client's own id); None: `<run id>:user`.
    """

    async def start(
        self,
        session_id: str,
        prompt: str,
        rewind: Rewind | None = None,
        *,
        user_message_id: str | None = None,
    ) -> StartedRun: ...

    async def cancel(self, session_id: str, run_id: str) -> None: ...

    async def active_run(self, session_id: str) -> str | None: ...

    async def close(self) -> None: ...
