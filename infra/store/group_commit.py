"""Group commit: concurrent appends in one process share one transaction.

One commit (one fsync) per event caps any store near a few thousand events/s on this machine.
Callers queue their (already validated) batches; a single writer task takes everything pending,
writes it in one transaction, and resolves each caller only after that transaction committed.
A caller whose own rules fail (expected seq, unknown session) gets its error without failing the
others in the transaction.

Failures, and what a caller is told:
- the database could not be reached, or broke the connection before COMMIT was sent
  (`NotWritten`): nothing was written, so the batch is tried again, with backoff, until the
  oldest caller in it has waited `timeout` seconds; then `StoreUnavailable` (nothing written);
- the connection broke at or after COMMIT (`OutcomeUnknown`): reported as is, never retried;
- the writer task itself crashed or was cancelled: the callers of the batch it was writing get
  `OutcomeUnknown` (it cannot tell how far it got), the others stay queued, and a new writer
  takes over. A cancellation is never handed to a caller as its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from agentlog.domain.errors import AgentlogError, StoreClosed, StoreUnavailable
from agentlog.domain.events import Event
from agentlog.domain.ports.event_store import RunFence

log = logging.getLogger(__name__)


class TransientWriteError(Exception):
    """A write lost a race it can win by trying again (busy database, unique collision)."""


class NotWritten(Exception):
    """The write failed before anything could commit (no connection, or it broke before
    COMMIT was sent): certainly not written, so safe to try again."""


class OutcomeUnknown(StoreUnavailable):
    """The connection failed during COMMIT: never retried, never split, reported as is."""

    code = "append_outcome_unknown"


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
    deadline: float = 0.0  # loop time by which its caller must have an answer


def attempt_seconds(batch: Sequence[PendingAppend], ceiling: float) -> float:
    """How long one write attempt of `batch` may take: what is left of its oldest caller's
    wait, at most `ceiling` (an adapter bounds each attempt with this)."""
    left = min(p.deadline for p in batch) - asyncio.get_running_loop().time()
    return max(0.05, min(ceiling, left))


Outcome = list[int] | AgentlogError
WriteBatch = Callable[[list[PendingAppend]], Awaitable[list[Outcome]]]
OnCommitted = Callable[[list[str]], Awaitable[None]]
CheckWrites = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class GroupCommitStats:
    transactions: int = 0
    appends: int = 0
    events: int = 0
    retries: int = 0
    writer_restarts: int = 0
    outcome_unknown: int = 0
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
        timeout: float = 5.0,
        check_writes: CheckWrites | None = None,
    ) -> None:
        self._write_batch = write_batch
        self._on_committed = on_committed
        self._max_batch_events = max_batch_events
        # Bounds one transaction's payload (PostgreSQL refuses a parameter over 1 GB); an
        # append larger than this on its own still gets a transaction to itself.
        self._max_batch_bytes = max_batch_bytes
        self._max_attempts = max_attempts
        self.timeout = timeout
        self._check_writes = check_writes
        self._queue: list[PendingAppend] = []
        self._probes: list[asyncio.Future[None]] = []
        self._writing: list[PendingAppend] = []  # the batch being written, for a crash
        self._work = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = GroupCommitStats()

    def submit(
        self,
        session_id: str,
        events: Sequence[Event],
        encoded: list[bytes],
        expected_seq: int | None,
        idempotency_key: str | None = None,
        *,
        request_hash: str | None = None,
        fence: RunFence | None = None,
    ) -> asyncio.Future[list[int]]:
        """Queue the append; the future gets its seqs once its transaction committed. A plain
        function returning the future, not a coroutine: one coroutine less per append."""
        if self._closed:
            raise StoreClosed("the store is closed")
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
            loop.time() + self.timeout,
        )
        self._queue.append(pending)
        self._wake_writer()
        # A caller cancelled before its append is taken into a transaction writes nothing
        # (awaiting the future, its cancellation cancels the future, and `_take` skips it);
        # once taken, the append is written and the caller just never sees the seqs.
        return pending.future

    async def probe(self) -> None:
        """Check the write path from the writer task itself (so a dead or stuck writer
        shows): raises when appends could not commit now."""
        if self._closed:
            raise StoreClosed("the store is closed")
        probe: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._probes.append(probe)
        self._wake_writer()
        await probe

    def _wake_writer(self) -> None:
        self._work.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._run(), name="agentlog-group-commit"
            )
            self._writer.add_done_callback(self._writer_ended)

    async def close(self) -> None:
        """Finish what is queued, then stop the writer."""
        self._closed = True
        if self._writer is not None:
            self._work.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        for probe in self._probes:
            if not probe.done():
                probe.set_exception(StoreClosed("the store is closed"))
        self._probes.clear()

    async def _run(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while self._queue or self._probes:
                batch = self._take()
                if batch:
                    self._writing = batch
                    failure = await self._commit(batch)
                    self._writing = []
                    # A batch is the best probe there is: waiting probes share its fate
                    # instead of holding later appends up with a check of their own.
                    self._answer_probes_with(failure)
                elif self._probes:
                    await self._answer_probes()
            if self._closed:
                return

    def _writer_ended(self, task: asyncio.Task[None]) -> None:
        """The writer never dies silently: whoever it was writing for is told, and a new
        writer takes over what is still queued."""
        if task.cancelled():
            reason = "the commit writer was cancelled during a write"
        elif task.exception() is not None:
            reason = f"the commit writer crashed: {task.exception()!r}"
            log.error("group commit writer crashed", exc_info=task.exception())
        else:
            return  # closed normally
        batch, self._writing = self._writing, []
        if batch:
            self.stats.outcome_unknown += len(batch)
        unknown = OutcomeUnknown(f"{reason}; the append may or may not be written")
        for pending in batch:
            self._resolve(pending, unknown)
        for probe in self._probes:
            if not probe.done():
                probe.set_exception(StoreUnavailable(reason))
        self._probes.clear()
        if self._writer is task:
            self._writer = None
        if self._closed:
            for pending in self._queue:
                self._resolve(pending, StoreUnavailable("the store is closed; not written"))
            self._queue.clear()
            return
        self.stats.writer_restarts += 1
        if self._queue:
            self._wake_writer()

    async def _answer_probes(self) -> None:
        try:
            if self._check_writes is not None:
                await self._check_writes()
        except Exception as exc:  # noqa: BLE001 - the probe's caller gets the failure
            self._answer_probes_with(exc)
        else:
            self._answer_probes_with(None)

    def _answer_probes_with(self, failure: BaseException | None) -> None:
        probes, self._probes = self._probes, []
        for probe in probes:
            if probe.done():
                continue
            if failure is None:
                probe.set_result(None)
            else:
                probe.set_exception(failure)

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

    async def _commit(self, batch: list[PendingAppend]) -> StoreUnavailable | None:
        """Write the batch and resolve its callers; the failure of the write path, if any."""
        try:
            outcomes = await self._write_with_retry(batch)
        except StoreUnavailable as exc:
            # Outcome unknown, or the database stayed out of reach: the same for every append
            # of the batch, so splitting it would only wait again.
            if isinstance(exc, OutcomeUnknown):
                self.stats.outcome_unknown += len(batch)
            for pending in batch:
                self._resolve(pending, exc)
            return exc
        except Exception as exc:  # noqa: BLE001 - isolate a poisoned batch, fail only its culprit
            if len(batch) > 1:
                log.warning(
                    "group commit of %d appends failed (%s); writing each alone", len(batch), exc
                )
                failures = []
                for pending in batch:
                    self._writing = [pending]
                    failures.append(await self._commit([pending]))
                return next((f for f in failures if f is not None), None)
            self._resolve(
                batch[0], exc if isinstance(exc, AgentlogError) else StoreUnavailable(str(exc))
            )
            return None
        committed: list[str] = []
        events = 0
        for pending, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, list):
                committed.append(pending.session_id)
                events += len(outcome)
            self._resolve(pending, outcome)
        self.stats.record(len(batch), events)
        if committed:
            try:
                await self._on_committed(committed)
            except Exception:
                log.exception("waking readers after a commit failed")
        return None

    async def _write_with_retry(self, batch: list[PendingAppend]) -> list[Outcome]:
        # Bounded retries with full jitter: two processes that collided must not collide again
        # in lock-step. A batch that could not reach the database is retried until its oldest
        # caller's deadline: a restart of the database is then invisible to callers.
        loop = asyncio.get_running_loop()
        deadline = min(p.deadline for p in batch)
        delay = 0.002
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._write_batch(batch)
            except TransientWriteError as exc:
                if attempt >= self._max_attempts or loop.time() >= deadline:
                    raise StoreUnavailable(
                        f"append still colliding after {attempt} attempts: {exc}"
                    ) from exc
                pause = random.uniform(0, delay)
            except NotWritten as exc:
                if loop.time() + 0.05 >= deadline:
                    raise StoreUnavailable(
                        f"{exc}; nothing was written (tried for {self.timeout:g} s)"
                    ) from exc
                pause = random.uniform(delay / 2, delay)
            self.stats.retries += 1
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, 0.5)

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
