"""A follower whose connection is already gone never becomes a push-mode sink.

aiohttp sets `request.transport` to None once the connection is lost; a client that cuts the
stream while its replay is being written reaches `tail.attach` with None (or a closing
transport). Attached, the tail's next push would fail on it, and a failed tail ends every
follower of the session: one client's disconnect must not do that.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from agentlog.infra.local.wakeups import Waiter
from agentlog.infra.store.base import StoreBase
from agentlog.transport.streaming.session_feed import RingBudget, SessionTail


class _Transport:
    def __init__(self, closing: bool) -> None:
        self.closing = closing
        self.written: list[bytes] = []

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.written.append(data)


def _tail() -> SessionTail:
    return SessionTail(cast("StoreBase", None), "s", recheck_seconds=1.0)


async def test_a_lost_or_closing_connection_is_not_attached() -> None:
    tail = _tail()
    assert tail.attach(None, 0, Waiter()) is None
    assert tail.attach(cast("Any", _Transport(closing=True)), 0, Waiter()) is None
    assert tail.sinks == set()


async def test_an_open_connection_is_attached_and_pushed_to() -> None:
    tail = _tail()
    transport = _Transport(closing=False)
    sink = tail.attach(cast("asyncio.WriteTransport", transport), 0, Waiter())
    assert sink is not None and tail.sinks == {sink}
    tail.ring.append((1, b"id: 1\n\n"))
    tail.head = 1
    tail._push()
    assert transport.written == [b"7\r\nid: 1\n\n\r\n"] and sink.last == 1


async def test_a_push_counts_every_frame_it_hands_out_in_one_metrics_update() -> None:
    counted: list[int] = []
    tail = SessionTail(
        cast("StoreBase", None), "s", recheck_seconds=1.0, on_delivered=counted.append
    )
    behind, ahead = _Transport(closing=False), _Transport(closing=False)
    tail.attach(cast("asyncio.WriteTransport", behind), 0, Waiter())
    tail.ring.append((1, b"id: 1\n\n"))
    tail.head = 1
    tail.attach(cast("asyncio.WriteTransport", ahead), 1, Waiter())
    tail.ring.append((2, b"id: 2\n\n"))
    tail.head = 2
    tail._push()
    assert behind.written == [b"e\r\nid: 1\n\nid: 2\n\n\r\n"]
    assert ahead.written == [b"7\r\nid: 2\n\n\r\n"]
    # Two frames to one sink and one to the other: one update per push, not one per sink.
    assert counted == [3]
    tail._push()
    assert counted == [3]


def _frame(seq: int, size: int) -> bytes:
    return b"id: %d\n" % seq + b"x" * size + b"\n\n"


async def test_the_ring_is_bounded_in_bytes_and_stays_dense_up_to_the_head() -> None:
    tail = SessionTail(cast("StoreBase", None), "s", recheck_seconds=1.0, ring_bytes=50_000)
    for seq in range(1, 41):
        tail._keep(seq, _frame(seq, 9_000))
        tail.head = seq
        assert tail.ring_bytes == sum(len(f) for _, f in tail.ring) <= 50_000
        assert [s for s, _ in tail.ring] == list(range(seq - len(tail.ring) + 1, seq + 1))
    assert len(tail.ring) == 5
    assert tail.frames_after(35) is not None and tail.frames_after(34) is None

    # A frame over the bound is never held, and what the ring held before it goes too: a
    # follower behind it reads that stretch from the log.
    tail._keep(41, _frame(41, 60_000))
    tail.head = 41
    assert (len(tail.ring), tail.ring_bytes) == (0, 0)
    assert tail.frames_after(40) is None and tail.frames_after(41) == ([], 41)
    tail._keep(42, _frame(42, 10))
    tail.head = 42
    assert tail.frames_after(41) == ([_frame(42, 10)], 42)


async def test_a_push_never_hands_a_client_more_than_the_high_water_mark() -> None:
    tail = _tail()
    transport = _Transport(closing=False)
    waiter = Waiter()
    sink = tail.attach(cast("asyncio.WriteTransport", transport), 0, waiter)
    assert sink is not None
    tail._keep(1, _frame(1, 300 * 1024))  # over PUSH_HIGH_WATER
    tail.head = 1
    tail._push()
    assert transport.written == [] and sink.detached and tail.sinks == set()


async def test_the_rings_of_all_followed_sessions_share_one_byte_bound() -> None:
    budget = RingBudget(100_000)
    quiet, busy = (
        SessionTail(cast("StoreBase", None), name, 1.0, ring_bytes=80_000, budget=budget)
        for name in ("quiet", "busy")
    )
    for seq in range(1, 8):
        quiet._keep(seq, _frame(seq, 9_000))
        quiet.head = seq
    for seq in range(1, 8):
        busy._keep(seq, _frame(seq, 9_000))
        busy.head = seq
        assert budget.bytes == quiet.ring_bytes + busy.ring_bytes <= 100_000
    # The quiet ring gave up its oldest frames first; both stay dense up to their heads.
    # 7 + 4 frames of 9,008 bytes fit in 100,000; the quiet ring kept its newest four.
    assert len(busy.ring) == 7 and [s for s, _ in quiet.ring] == [4, 5, 6, 7]
    assert quiet.frames_after(3) is not None and quiet.frames_after(2) is None

    budget.release(quiet)
    assert budget.bytes == busy.ring_bytes and len(quiet.ring) == 0


async def test_a_caught_up_sink_whose_client_left_is_let_go_without_an_event() -> None:
    tail = _tail()
    gone, staying = _Transport(closing=False), _Transport(closing=False)
    gone_waiter, staying_waiter = Waiter(), Waiter()
    gone_sink = tail.attach(cast("asyncio.WriteTransport", gone), 0, gone_waiter)
    staying_sink = tail.attach(cast("asyncio.WriteTransport", staying), 0, staying_waiter)
    assert gone_sink is not None and staying_sink is not None
    gone.closing = True  # the client closed; no new event comes to find it
    tail.detach_closed()
    assert tail.sinks == {staying_sink}
    assert gone_sink.detached and await gone_waiter.wait(0)  # its handler is woken to end
    assert not staying_sink.detached and not await staying_waiter.wait(0)
