"""Live delivery for many subscribers: one tail per followed session in this process.

A tail subscribes to the session's wake-ups, reads each new event from the log once, encodes it
once as an SSE frame and keeps the newest frames in a bounded ring. Every follower of the
session takes its frames from that ring, so 1,000 subscribers cost one read and one encode per
event, not 1,000. A follower that falls behind the ring (slow, or just connected far back)
reads the missing stretch from the log itself: it never holds the tail up, and the ring's
bound is the memory bound.

Seqs decide everything: a follower only ever asks for "frames after the last seq I sent", so
a frame is never sent twice or skipped, whichever path (ring or log) supplies it.

Push mode: waking 1,000 follower coroutines per event, each awaiting its own write, costs more
CPU than everything else together. A follower that has caught up therefore hands the tail a
`LiveSink` (its transport and last seq) and sleeps; the tail writes each new stretch of frames
straight to every caught-up transport, as one HTTP/1.1 chunk built once for all sinks at the
same seq. A sink whose transport buffers more than PUSH_HIGH_WATER bytes (a client not reading)
is detached and its follower woken: it falls back to the pull path, whose writes have a
timeout, so a stalled client is dropped without ever slowing the tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from agentlog.domain.events import RecordedEvent, SessionDeleted, encode_recorded
from agentlog.infra.local.wakeups import Waiter
from agentlog.infra.store.byte_bounded import DEFAULT_CACHE_BYTES, feed_rings_share
from agentlog.infra.store.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

RING_FRAMES = 2048
RING_BYTES = 4 * 1024 * 1024
PAGE = 1000
PUSH_HIGH_WATER = 256 * 1024
# A tail retries a failed read of the log (a database restart, a blip) with backoff, and
# fails its followers only when reads kept failing this long.
READ_RETRY_FIRST = 0.1
READ_RETRY_MAX = 2.0
READ_FAILURE_BOUND_SECONDS = 30.0


def http_chunk(data: bytes) -> bytes:
    """One chunk of an HTTP/1.1 chunked body: what aiohttp's writer puts on the wire for
    `response.write(data)` on a response without Content-Length."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class LiveSink:
    """A caught-up follower's connection, written to directly by the tail."""

    __slots__ = ("detached", "last", "last_write", "transport", "waiter")

    def __init__(self, transport: asyncio.WriteTransport, last: int, waiter: Waiter) -> None:
        self.transport = transport
        self.last = last
        self.waiter = waiter
        self.detached = False
        self.last_write = asyncio.get_running_loop().time()

    def write(self, data: bytes) -> None:
        self.transport.write(http_chunk(data))
        self.last_write = asyncio.get_running_loop().time()


# `id: <seq>`, `event: <type>`, `data: <event JSON>` (compact JSON has no newlines): the
# frame of one event, as `read_framed` takes it.
SSE_FRAME = b"id: %d\nevent: %b\ndata: %b\n\n"


def sse_frame(recorded: RecordedEvent) -> bytes:
    """The frame of one event: what a page read framed with `SSE_FRAME` holds for it."""
    return SSE_FRAME % (recorded.seq, recorded.type.encode(), encode_recorded(recorded))


class RingBudget:
    """The bytes every ring of this process holds together, and the rings in order of their
    last new frame: over the bound, the quietest rings give up their oldest frames first.

    Each ring's own bound (4 MiB) times the followed sessions (1,000 streams) would allow
    gigabytes; this bound holds for the process. A ring trimmed from its old end stays dense
    up to its head, so its followers lose nothing: one that needs a dropped frame reads it
    from the log."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._rings: OrderedDict[SessionTail, None] = OrderedDict()

    def grew(self, tail: SessionTail, added: int) -> None:
        self.bytes += added
        self._rings[tail] = None
        self._rings.move_to_end(tail)
        while self.bytes > self.max_bytes and self._rings:
            quietest = next(iter(self._rings))
            if not quietest.drop_oldest():
                del self._rings[quietest]

    def shrank(self, removed: int) -> None:
        self.bytes -= removed

    def release(self, tail: SessionTail) -> None:
        """The tail stopped: what its ring held is free."""
        self._rings.pop(tail, None)
        self.bytes -= tail.ring_bytes
        tail.ring.clear()
        tail.ring_bytes = 0


class SessionTail:
    """Reads one session's new events once and fans their frames out to followers."""

    def __init__(
        self,
        store: Store,
        session_id: str,
        recheck_seconds: float,
        on_delivered: Callable[[int], None] | None = None,
        *,
        ring_bytes: int = RING_BYTES,
        failure_bound_seconds: float = READ_FAILURE_BOUND_SECONDS,
        budget: RingBudget | None = None,
    ) -> None:
        self.store = store
        self.budget = budget or RingBudget(ring_bytes)
        self.on_delivered = on_delivered
        self.session_id = session_id
        self.recheck_seconds = recheck_seconds
        self.failure_bound_seconds = failure_bound_seconds
        # Bounded in frames and in bytes: 2,048 frames of up to 1 MiB could hold 2 GiB for
        # one followed session. A frame larger than the byte bound is never held; followers
        # that need it read it from the log.
        self.ring: deque[tuple[int, bytes]] = deque(maxlen=RING_FRAMES)
        self.ring_bytes = 0
        self.max_ring_bytes = ring_bytes
        self.read_failures = 0
        self.head = 0  # the last seq this tail has read into the ring
        self.followers: set[Waiter] = set()  # pull mode: woken on new frames
        self.sinks: set[LiveSink] = set()  # push mode: written to by the tail itself
        self.refs = 0
        self.ready = asyncio.Event()
        self.failed: BaseException | None = None
        # The seq of the session's tombstone once read: streams end after sending it.
        self.deleted_seq: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"agentlog-tail-{self.session_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            async with self.store.subscribe(self.session_id) as wakeup:
                # Subscribed first, then read the head: anything committed after this read
                # wakes us, so the tail cannot miss an event.
                found = await self._with_retries(lambda: self.store.session(self.session_id))
                self.head = found.head if found is not None else 0
                self.ready.set()
                while True:
                    page = await self._with_retries(
                        lambda: self.store.read(self.session_id, after=self.head, limit=PAGE)
                    )
                    if page:
                        for recorded in page:
                            self._keep(recorded.seq, sse_frame(recorded))
                            if isinstance(recorded.event, SessionDeleted):
                                self.deleted_seq = recorded.seq
                        self.head = page[-1].seq
                        self._push()
                        for follower in self.followers:
                            follower.wake()
                        if self.deleted_seq is not None:
                            for sink in self.sinks:  # push mode: the holder ends the stream
                                sink.waiter.wake()
                        if len(page) == PAGE:
                            continue
                    # A lost wake-up only delays us until the re-check.
                    if not await wakeup.wait(self.recheck_seconds):
                        self.detach_closed()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("tail of session %s failed", self.session_id)
            self.failed = exc
            self.ready.set()
            for follower in self.followers:
                follower.wake()
            for sink in list(self.sinks):
                self.detach(sink)

    async def _with_retries(self, read: Callable[[], Awaitable[T]]) -> T:
        """A read of the log, retried with backoff through a database blip; the error goes
        on (and fails the followers) only once reads kept failing for the bound."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        pause = READ_RETRY_FIRST
        while True:
            try:
                return await read()
            except Exception as exc:
                self.read_failures += 1
                if loop.time() - started >= self.failure_bound_seconds:
                    raise
                log.warning("tail of session %s: read failed (%s); retrying", self.session_id, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, READ_RETRY_MAX)

    def _keep(self, seq: int, frame: bytes) -> None:
        """Add a frame to the ring, dropping the oldest to stay within the ring's bounds and
        the process's (the budget)."""
        ring = self.ring
        if len(frame) > min(self.max_ring_bytes, self.budget.max_bytes):
            # Never held; the ring must stay dense up to the head, so what it held goes too.
            while self.drop_oldest():
                pass
            return
        if len(ring) == ring.maxlen:
            self.drop_oldest()
        ring.append((seq, frame))
        self.ring_bytes += len(frame)
        while self.ring_bytes > self.max_ring_bytes:
            self.drop_oldest()
        self.budget.grew(self, len(frame))

    def drop_oldest(self) -> bool:
        """Drop the ring's oldest frame; False when it held none."""
        if not self.ring:
            return False
        size = len(self.ring.popleft()[1])
        self.ring_bytes -= size
        self.budget.shrank(size)
        return True

    def attach(
        self, transport: asyncio.WriteTransport | None, last: int, waiter: Waiter
    ) -> LiveSink | None:
        """Switch a caught-up follower to push mode; None if it is not caught up, or its
        connection is already gone (aiohttp's `request.transport` is then None)."""
        if last != self.head or self.failed is not None:
            return None
        if transport is None or transport.is_closing():
            return None
        sink = LiveSink(transport, last, waiter)
        self.sinks.add(sink)
        return sink

    def detach(self, sink: LiveSink) -> None:
        if sink in self.sinks:
            self.sinks.discard(sink)
            sink.detached = True
            sink.waiter.wake()

    def detach_closed(self) -> None:
        """Let go of the sinks whose client has left, on a quiet session too: a push finds
        them at the next event, but a caught-up follower's handler otherwise holds its stream
        slot (AGENTLOG_MAX_SSE_CONNECTIONS) until its next keep-alive, 15 s by default. With
        2,000 sinks this is 2,000 attribute reads per re-check, not 2,000 coroutines woken."""
        for sink in [s for s in self.sinks if s.transport.is_closing()]:
            self.detach(sink)

    def _push(self) -> None:
        # Runs once per new stretch for every caught-up sink (2,000 followers: 2,000 times per
        # event), so what is the same for all of them is done once, outside the loop: the
        # head, the clock, and the metrics update (one call for the whole push, not one per
        # sink; a call per sink was a tenth of the push's time at 2,000 subscribers).
        head = self.head
        now = asyncio.get_running_loop().time()
        delivered = 0
        chunks: dict[int, bytes] = {}  # one encoded chunk per distinct starting seq
        for sink in list(self.sinks):
            last = sink.last
            if last >= head:
                continue
            transport = sink.transport
            if transport.is_closing() or transport.get_write_buffer_size() > PUSH_HIGH_WATER:
                self.detach(sink)
                continue
            chunk = chunks.get(last)
            if chunk is None:
                got = self.frames_after(last)
                if got is None:
                    self.detach(sink)
                    continue
                chunk = http_chunk(b"".join(got[0]))
                chunks[last] = chunk
            if len(chunk) > PUSH_HIGH_WATER:
                # Never more than the high-water mark at once: the pull path sends it with a
                # write timeout instead.
                self.detach(sink)
                continue
            transport.write(chunk)
            delivered += head - last
            sink.last = head
            sink.last_write = now
        if delivered and self.on_delivered is not None:
            self.on_delivered(delivered)

    def frames_after(self, seq: int) -> tuple[list[bytes], int] | None:
        """Frames with seq > `seq` held in the ring and the last seq among them, or None when
        the ring no longer holds seq + 1 (the caller reads that stretch from the log)."""
        if seq >= self.head:
            return [], seq
        count = self.head - seq
        ring = self.ring
        if count > len(ring):
            return None
        # The ring is dense and ordered, ending at self.head: a caught-up follower needs only
        # the newest few frames, reached from the right end without walking the ring.
        return [ring[i - count][1] for i in range(count)], self.head


class SessionFeeds:
    """The tails of this process, shared by every SSE response; a tail stops with its last
    follower."""

    def __init__(
        self,
        store: Store,
        *,
        recheck_seconds: float = 2.0,
        on_delivered: Callable[[int], None] | None = None,
        ring_bytes: int = RING_BYTES,
        rings_bytes: int = feed_rings_share(DEFAULT_CACHE_BYTES),
    ) -> None:
        self.store = store
        self.recheck_seconds = recheck_seconds
        self.on_delivered = on_delivered
        self.ring_bytes = ring_bytes
        self.budget = RingBudget(rings_bytes)
        self._tails: dict[str, SessionTail] = {}

    @asynccontextmanager
    async def follow(self, session_id: str) -> AsyncIterator[tuple[SessionTail, Waiter]]:
        tail = self._tails.get(session_id)
        if tail is None:
            tail = SessionTail(
                self.store,
                session_id,
                self.recheck_seconds,
                self.on_delivered,
                ring_bytes=self.ring_bytes,
                budget=self.budget,
            )
            self._tails[session_id] = tail
            tail.start()
        waiter = Waiter()
        tail.refs += 1
        tail.followers.add(waiter)
        try:
            await tail.ready.wait()
            if tail.failed is not None:
                raise tail.failed
            yield tail, waiter
        finally:
            tail.followers.discard(waiter)
            for sink in [s for s in tail.sinks if s.waiter is waiter]:
                tail.sinks.discard(sink)
            tail.refs -= 1
            if tail.refs == 0 and self._tails.get(session_id) is tail:
                del self._tails[session_id]
                await tail.stop()
                self.budget.release(tail)

    def wake_all(self) -> None:
        """Shutdown: let every follower notice at once instead of at its next keep-alive."""
        for tail in self._tails.values():
            for follower in tail.followers:
                follower.wake()
            for sink in tail.sinks:
                sink.waiter.wake()

    @property
    def followed_sessions(self) -> int:
        return len(self._tails)

    async def close(self) -> None:
        for tail in list(self._tails.values()):
            await tail.stop()
            self.budget.release(tail)
        self._tails.clear()
