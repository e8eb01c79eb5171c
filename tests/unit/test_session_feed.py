"""A follower whose connection is already gone never becomes a push-mode sink.

aiohttp sets `request.transport` to None once the connection is lost; a client that cuts the
stream while its replay is being written reaches `tail.attach` with None (or a closing
transport). Attached, the tail's next push would fail on it, and a failed tail ends every
follower of the session: one client's disconnect must not do that.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from infra.store_base import StoreBase
from infra.wakeups import Waiter
from transport.session_feed import SessionTail


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
