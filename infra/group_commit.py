"""Group commit: concurrent appends in one process share one transaction.

One commit (one fsync) per event caps any store near a few thousand events/s on this machine.
Callers queue their (already validated) batches; a single writer task takes everything pending,
writes it in one transaction, and resolves each caller only after that transaction committed.
A caller whose own rules fail (expected seq, unknown session) gets its error without failing the
others in the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from domain.errors import AgentlogError, StoreUnavailable
from domain.events import Event
from domain.ports import RunFence

log = logging.getLogger(__name__)


class TransientWriteError(Exception):
    """A write lost a race it can win by trying again (busy database, unique collision)."""


class OutcomeUnknown(StoreUnavailable):
    """The connection failed during COMMIT: never retried, never split, reported as is."""


@dataclass(slots=True)
class PendingAppend:
    session_id: str
    events: Sequence[Event]
    encoded: list[bytes]
    expected_seq: int | None
    future: asyncio.Future[list[int]] = field(repr=False)
    idempotency_key: str | None = None
    request_hash: str | None = None
    fence: RunFence | None = None


Outcome = list[int] | AgentlogError
WriteBatch = Callable[[list[PendingAppend]], Awaitable[list[Outcome]]]
OnCommitted = Callable[[list[str]], Awaitable[None]]


@dataclass(slots=True)
class GroupCommitStats:
    transactions: int = 0
    appends: int = 0
    events: int = 0
    retries: int = 0
    batch_sizes: list[int] = field(default_factory=list)

    def record(self, appends: int, events: int) -> None:
        self.transactions += 1
        self.appends += appends
        self.events += events
        if len(self.batch_sizes) < 100_000:
            self.batch_sizes.append(appends)


class GroupCommitter:
    """Coalesces this process's concurrent appends into few transactions."""

    def __init__(
        self,
        write_batch: WriteBatch,
        on_committed: OnCommitted,
        *,
        max_batch_events: int = 4000,
        max_batch_bytes: int = 32 * 1024 * 1024,
        max_attempts: int = 8,
    ) -> None:
        self._write_batch = write_batch
        self._on_committed = on_committed
        self._max_batch_events = max_batch_events
        # Bounds one transaction's payload (PostgreSQL refuses a parameter over 1 GB); an
        # append larger than this on its own still gets a transaction to itself.
        self._max_batch_bytes = max_batch_bytes
        self._max_attempts = max_attempts
        self._queue: list[PendingAppend] = []
        self._work = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = GroupCommitStats()

    async def submit(
        self,
        session_id: str,
        events: Sequence[Event],
        encoded: list[bytes],
        expected_seq: int | None,
        idempotency_key: str | None = None,
        *,
        request_hash: str | None = None,
        fence: RunFence | None = None,
    ) -> list[int]:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        pending = PendingAppend(
            session_id,
            events,
            encoded,
            expected_seq,
            loop.create_future(),
            idempotency_key,
            request_hash,
            fence,
        )
        self._queue.append(pending)
        self._work.set()
        if self._writer is None:
            self._writer = loop.create_task(self._run(), name="agentlog-group-commit")
        # A caller cancelled before its append is taken into a transaction writes nothing;
        # once taken, the append is written and the caller just never sees the seqs.
        return await pending.future

    async def close(self) -> None:
        """Finish what is queued, then stop the writer."""
        self._closed = True
        if self._writer is not None:
            self._work.set()
            await self._writer
            self._writer = None

    async def _run(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while self._queue:
                batch = self._take()
                if batch:
                    await self._commit(batch)
            if self._closed:
                return

    def _take(self) -> list[PendingAppend]:
        batch: list[PendingAppend] = []
        events = 0
        size = 0
        taken = 0
        for pending in self._queue:
            pending_size = sum(map(len, pending.encoded))
            if batch and (
                events + len(pending.encoded) > self._max_batch_events
                or size + pending_size > self._max_batch_bytes
            ):
                break
            taken += 1
            if pending.future.done():  # its caller was cancelled while queued: never written
                continue
            batch.append(pending)
            events += len(pending.encoded)
            size += pending_size
        del self._queue[:taken]
        return batch

    async def _commit(self, batch: list[PendingAppend]) -> None:
        try:
            outcomes = await self._write_with_retry(batch)
        except OutcomeUnknown as exc:
            for pending in batch:
                self._resolve(pending, exc)
            return
        except Exception as exc:  # noqa: BLE001 - isolate a poisoned batch, fail only its culprit
            if len(batch) > 1:
                log.warning(
                    "group commit of %d appends failed (%s); writing each alone", len(batch), exc
                )
                for pending in batch:
                    await self._commit([pending])
                return
            self._resolve(
                batch[0], exc if isinstance(exc, AgentlogError) else StoreUnavailable(str(exc))
            )
            return
        committed: list[str] = []
        events = 0
        for pending, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, list):
                committed.append(pending.session_id)
                events += len(outcome)
            self._resolve(pending, outcome)
        self.stats.record(len(batch), events)
        if committed:
            await self._on_committed(committed)

    async def _write_with_retry(self, batch: list[PendingAppend]) -> list[Outcome]:
        # Bounded retries with full jitter: two processes that collided must not collide again
        # in lock-step.
        delay = 0.002
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await self._write_batch(batch)
            except TransientWriteError as exc:
                if attempt == self._max_attempts:
                    raise StoreUnavailable(
                        f"append still colliding after {attempt} attempts: {exc}"
                    ) from exc
                self.stats.retries += 1
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    @staticmethod
    def _resolve(pending: PendingAppend, outcome: Outcome | BaseException) -> None:
        # A caller cancelled while waiting: nobody will read an outcome, so none is set (and
        # asyncio never warns about an exception that was not retrieved).
        if pending.future.done():
            return
        if isinstance(outcome, BaseException):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)
