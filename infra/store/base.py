"""What every event store adapter shares: validation, group commit and wake-ups.

Adapters implement the backend-specific parts (`_write_batch`, the reads); `append` and
`subscribe` behave the same everywhere, which the contract suite checks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from agentlog.domain.errors import InvalidAppend, UnknownSession
from agentlog.domain.events import Event, RecordedEvent, encode_recorded
from agentlog.domain.ports.event_store import (
    FramedPage,
    KeyedAppend,
    RunFence,
    RunRecord,
    SessionHead,
    TurnDue,
)
from agentlog.domain.ports.wakeups import Wakeup, Wakeups
from agentlog.domain.rules.appending import (
    DEFAULT_MAX_EVENT_BYTES,
    encode_batch,
    validate_idempotency_key,
    validate_session_id,
)
from agentlog.infra.local.wakeups import LocalWakeups
from agentlog.infra.store.backend import Backend
from agentlog.infra.store.group_commit import (
    GroupCommitStats,
    GroupCommitter,
    Outcome,
    PendingAppend,
)
from agentlog.infra.store.store import AppendObserver


class StoreBase:
    """Validation before any I/O, then group commit, then a wake-up for readers: every
    backend's Store (agentlog.infra.store.store)."""

    # The backend that built this store (its folder's backend.py sets it): whoever holds the
    # store reaches the adapters that live beside its log through it.
    backend: Backend

    def __init__(
        self,
        *,
        wakeups: Wakeups | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_batch_events: int = 4000,
        timeout: float = 5.0,
    ) -> None:
        self.wakeups: Wakeups = wakeups if wakeups is not None else LocalWakeups()
        self.max_event_bytes = max_event_bytes
        self.append_observers: list[AppendObserver] = []
        self._committer = GroupCommitter(
            self._write_batch,
            self.wakeups.publish,
            max_batch_events=max_batch_events,
            timeout=timeout,
            check_writes=self.check_writes,
        )

    @property
    def commit_stats(self) -> GroupCommitStats:
        return self._committer.stats

    async def append(
        self,
        session_id: str,
        events: Sequence[Event],
        expected_seq: int | None = None,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        fence: RunFence | None = None,
    ) -> list[int]:
        """See agentlog.domain.ports.event_store.EventStore. With `idempotency_key`, a second
        append with the same
        key to the same session writes nothing and returns the seqs of the first (422 if its
        `request_hash` differs); with `fence`, only the session's current run may write."""
        validate_session_id(session_id)
        if idempotency_key is not None:
            validate_idempotency_key(idempotency_key)
        encoded = encode_batch(events, self.max_event_bytes)
        if expected_seq is not None and (
            not isinstance(expected_seq, int) or isinstance(expected_seq, bool) or expected_seq < 0
        ):
            raise InvalidAppend("expected_seq must be a non-negative integer")
        observed = bool(self.append_observers)
        started = time.perf_counter() if observed else 0.0
        try:
            seqs = await self._committer.submit(
                session_id,
                list(events),
                encoded,
                expected_seq,
                idempotency_key,
                request_hash=request_hash,
                fence=fence,
            )
        except Exception as exc:
            if observed:
                self._observe(events, time.perf_counter() - started, exc)
            raise
        if observed:
            self._observe(events, time.perf_counter() - started, None)
        return seqs

    def _observe(
        self, events: Sequence[Event], seconds: float, error: BaseException | None
    ) -> None:
        for observer in self.append_observers:
            observer(events, seconds, error)

    async def probe_writes(self) -> None:
        """Raises unless an append could commit now; run by the commit writer itself, so a
        stuck or dead writer shows too (GET /healthz)."""
        await self._committer.probe()

    async def read_session(self, session_id: str, after: int = 0) -> list[RecordedEvent]:
        """Every event of the session after seq `after`, read page by page."""
        events: list[RecordedEvent] = []
        while True:
            page = await self.read(
                session_id, after=events[-1].seq if events else after, limit=5000
            )
            events += page
            if len(page) < 5000:  # a short page is the end: no extra round trip to learn it
                return events

    async def head(self, session_id: str) -> int:
        found = await self.session(session_id)
        if found is None:
            raise UnknownSession(session_id)
        return found.head

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[Wakeup]:
        return self.wakeups.subscribe(session_id)

    def subscribe_all(self) -> AbstractAsyncContextManager[Wakeup]:
        return self.wakeups.subscribe_all()

    async def close(self) -> None:
        await self._committer.close()

    # -- implemented by adapters ----------------------------------------------------------

    async def _write_batch(self, batch: list[PendingAppend]) -> list[Outcome]:
        raise NotImplementedError

    async def check_writes(self) -> None:
        """Called on the writer task by probe_writes: raise unless a write could commit."""
        raise NotImplementedError

    async def session(self, session_id: str) -> SessionHead | None:
        raise NotImplementedError

    async def read(self, session_id: str, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        raise NotImplementedError

    async def read_stored(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[tuple[RecordedEvent, bytes]]:
        raise NotImplementedError

    async def read_flat(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, str, bytes]]:
        # A backend whose reads cost more than the encoding (PostgreSQL's round trip) keeps
        # this; SQLite builds the JSON from its row directly (agentlog.infra.sqlite).
        page = await self.read(session_id, after=after, limit=limit)
        return [(e.seq, e.type, encode_recorded(e)) for e in page]

    async def read_framed(
        self, session_id: str, after: int = 0, limit: int = 1000, *, frame: bytes
    ) -> FramedPage:
        # A backend whose reads cost more than the formatting keeps this; SQLite writes the
        # frames from its rows in one step (agentlog.infra.sqlite).
        page = await self.read_flat(session_id, after=after, limit=limit)
        data = b"".join([frame % (seq, kind.encode(), flat) for seq, kind, flat in page])
        return FramedPage(len(page), page[-1][0] if page else after, data)

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        raise NotImplementedError

    async def sessions(self, after: str | None = None, limit: int = 100) -> list[SessionHead]:
        raise NotImplementedError

    async def last_position(self) -> int:
        raise NotImplementedError

    async def keyed_append(self, session_id: str, key: str) -> KeyedAppend | None:
        raise NotImplementedError

    async def prune_idempotency(self, older_than: datetime) -> int:
        raise NotImplementedError

    async def run(self, session_id: str, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    async def current_run(self, session_id: str) -> RunRecord | None:
        raise NotImplementedError

    async def open_runs(self, limit: int = 1000, after: RunRecord | None = None) -> list[RunRecord]:
        raise NotImplementedError

    async def turns_due(
        self, due_before: datetime, limit: int = 1000, after: str = ""
    ) -> list[TurnDue]:
        raise NotImplementedError

    async def settle_turn_due(self, session_id: str, through_seq: int) -> None:
        raise NotImplementedError
