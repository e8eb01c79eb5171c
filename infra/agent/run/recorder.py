"""A run's ordered writer: every event of a run reaches the log in the order it was recorded.

Several tasks produce a run's events: the reader of the SDK's messages, hook callbacks, the
heartbeat timer and the safety net. `record` is synchronous and only queues, so a producer that
decides what to record (the translator, which never awaits) and queues it in one step can never
be overtaken by another producer: the log's order is the order of those steps. One writer task
appends what is queued, oldest first, merging batches that waited into one append.

The reader never waits for the database, so it keeps draining the SDK's message stream; a slow
append delays the log, not the agent.

Nothing is dropped while the run may still write. An append that fails with StoreUnavailable
(the database is down, or the outcome is unknown) is retried with the same idempotency key, so
it is written at most once, with capped backoff for as long as the run holds its lease; later
batches wait behind it in order. After `stop_after_seconds` of failures the runner is told
(it stops the agent, and the safety net queues the terminal event). A batch holding the run's
terminal event has its own budget, `terminal_budget_seconds`, also once the lease is lost:
the store's fence refuses it if another process already recorded the run's end. A batch given
up on is counted as dropped; recovery then writes the run's terminal event once the store is
back. Every append carries the run's fence, so a run that is no longer the session's current
run writes nothing (RunFenced: reported at once, no retry), nor does a run of a session deleted
meanwhile (SessionDeleted, the same).
An event over the store's size limit has its largest fields cut down (`fit_event`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import msgspec

from agentlog.domain.errors import RunFenced, SessionDeleted, StoreClosed, StoreUnavailable
from agentlog.domain.events import RUN_TERMINAL_TYPES, Event, RecordedEvent, encode_event
from agentlog.domain.ports.event_store import RunFence, RunRecord
from agentlog.domain.ports.wakeups import Wakeup
from agentlog.infra.store.store import OnBackend

log = logging.getLogger(__name__)

# Fields that identify an event: never cut down.
_IDENTITY = frozenset({"run_id", "tool_call_id", "message_id", "tool_name", "subtype", "kind"})
_MARKER_ROOM = 64


class RunStore(OnBackend, Protocol):
    """What the runner needs of the event store (StoreBase and its adapters provide it)."""

    max_event_bytes: int

    async def append(
        self,
        session_id: str,
        events: Sequence[Event],
        expected_seq: int | None = None,
        *,
        idempotency_key: str | None = None,
        fence: RunFence | None = None,
    ) -> list[int]: ...

    async def read(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[RecordedEvent]: ...

    async def read_session(self, session_id: str, after: int = 0) -> list[RecordedEvent]: ...

    async def head(self, session_id: str) -> int: ...

    async def run(self, session_id: str, run_id: str) -> RunRecord | None: ...

    async def current_run(self, session_id: str) -> RunRecord | None: ...

    async def settle_turn_due(self, session_id: str, through_seq: int) -> None: ...

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[Wakeup]: ...


def _preview(value: Any, keep: int) -> str:
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text[: max(0, keep)] + f"… [cut: {len(text)} characters in all]"


def _shrunk(value: Any, keep: int) -> list[Any]:
    """Smaller stand-ins for `value`, most informative first; the event's schema picks."""
    preview = _preview(value, keep)
    if isinstance(value, dict):
        return [{"cut": preview}, preview, {}]
    if isinstance(value, list):
        return [preview, [preview], []]
    return [preview]


def _valid(event: Event) -> bool:
    try:
        msgspec.json.decode(encode_event(event), type=type(event))
    except msgspec.ValidationError:
        return False
    return True


def fit_event(event: Event, limit: int) -> Event:
    """`event` itself if its JSON fits in `limit` bytes, else a copy whose largest fields are
    replaced by a cut-down text preview (or the nearest stand-in its field type accepts)."""
    size = len(encode_event(event))
    if size <= limit:
        return event
    names = [f.name for f in msgspec.structs.fields(event) if f.name not in _IDENTITY]
    names.sort(key=lambda name: len(msgspec.json.encode(getattr(event, name))), reverse=True)
    for name in names:
        if size <= limit:
            break
        value = getattr(event, name)
        keep = len(msgspec.json.encode(value)) - (size - limit) - _MARKER_ROOM
        # Characters can take several bytes: cut further until it fits or nothing is left.
        while True:
            for stand_in in _shrunk(value, keep):
                candidate = msgspec.structs.replace(event, **{name: stand_in})
                if _valid(candidate):
                    event, size = candidate, len(encode_event(candidate))
                    break
            if size <= limit or keep <= 0:
                break
            keep -= size - limit + _MARKER_ROOM
    return event


class RunRecorder:
    """Queues a run's events and appends them, in order, from one writer task."""

    def __init__(
        self,
        store: RunStore,
        session_id: str,
        run_id: str,
        *,
        fence: RunFence | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        holds_lease: Callable[[], bool] = lambda: True,
        on_delayed: Callable[[], None] | None = None,
        after_seq: int | None = None,
        stop_after_seconds: float = 10.0,
        terminal_budget_seconds: float = 30.0,
        max_backoff_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.run_id = run_id
        self.fence = fence
        self.on_failure = on_failure
        self.holds_lease = holds_lease
        self.on_delayed = on_delayed
        self.stop_after_seconds = stop_after_seconds
        self.terminal_budget_seconds = terminal_budget_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.failure: BaseException | None = None
        self.fenced = False
        self.last_seq: int | None = after_seq
        # Whether every event appended since `after_seq` is this run's: nobody else wrote to
        # the session in between (the runner's O(1) look for a queue after the run).
        self.alone = after_seq is not None
        self.delayed_batches = 0
        self.dropped_events = 0
        # Sealed: what is recorded from now on is dropped (what was queued before is written).
        self.sealed = False
        self._queue: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        self._appends = 0
        self._writer = asyncio.create_task(self._write(), name=f"agentlog-recorder-{run_id}")

    def record(self, events: Sequence[Event]) -> None:
        """Queue `events` behind everything recorded before; never waits."""
        if events and self.sealed:
            log.debug("run %s: sealed; not recorded: %d events", self.run_id, len(events))
        elif events:
            self._queue.put_nowait(list(events))

    def seal(self) -> None:
        """Record nothing more: the run is handed over as it is (runner.close)."""
        self.sealed = True

    async def flush(self) -> None:
        """Wait until everything recorded so far was appended (or given up on)."""
        await self._queue.join()

    async def close(self) -> None:
        self._queue.put_nowait(None)
        await asyncio.shield(self._writer)

    async def _write(self) -> None:
        while True:
            batch = await self._queue.get()
            taken = 1
            done = batch is None
            events = list(batch or [])
            while not self._queue.empty():
                more = self._queue.get_nowait()
                taken += 1
                if more is None:
                    done = True
                else:
                    events.extend(more)
            try:
                if events:
                    await self._append(events)
            finally:
                for _ in range(taken):
                    self._queue.task_done()
            if done:
                return

    async def _append(self, events: list[Event]) -> None:
        if self.fenced:
            self._drop(events, "the run may no longer write")
            return
        limit = self.store.max_event_bytes
        events = [fit_event(e, limit) for e in events]
        terminal = any(isinstance(e, RUN_TERMINAL_TYPES) for e in events)
        self._appends += 1
        key = f"run:{self.run_id}:{self._appends}"
        delay = 0.05
        failing_since: float | None = None
        while True:
            try:
                seqs = await self.store.append(
                    self.session_id, events, idempotency_key=key, fence=self.fence
                )
            except StoreClosed as exc:  # shutting down: retrying cannot help
                self._fail(exc)
                self._drop(events, str(exc))
                return
            except (RunFenced, SessionDeleted) as exc:
                # Both final: a newer run (or the session's tombstone) will never step aside.
                self.fenced = True
                self._fail(exc)
                self._drop(events, str(exc))
                return
            except StoreUnavailable as exc:
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                    self.delayed_batches += 1
                    if self.on_delayed is not None:
                        self.on_delayed()
                failed_for = now - failing_since
                if failed_for >= self.stop_after_seconds and self.failure is None:
                    self._fail(exc)  # the runner stops the agent; we keep trying
                may_retry = self.holds_lease() and not self.fenced
                if terminal and not may_retry:
                    may_retry = failed_for < self.terminal_budget_seconds
                if not may_retry:
                    self._fail(exc)
                    self._drop(events, str(exc))
                    return
                log.warning("run %s: append failed (%s); retrying", self.run_id, exc)
                await asyncio.sleep(delay)
                delay = min(self.max_backoff_seconds, delay * 2)
            except Exception as exc:  # noqa: BLE001 - reported to the runner, which stops the run
                self._fail(exc)
                self._drop(events, str(exc))
                return
            else:
                if self.last_seq is None or seqs[0] != self.last_seq + 1:
                    self.alone = False
                self.last_seq = seqs[-1]
                return

    def _drop(self, events: list[Event], why: str) -> None:
        self.dropped_events += len(events)
        log.error("run %s: gave up on %d events: %s", self.run_id, len(events), why)

    def _fail(self, exc: BaseException) -> None:
        if self.failure is not None:
            return
        log.error("run %s: could not record events: %s", self.run_id, exc)
        self.failure = exc
        if self.on_failure is not None:
            self.on_failure(exc)
