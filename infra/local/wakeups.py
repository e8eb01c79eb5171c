"""In-process wake-ups: the hub every store publishes to and every reader waits on.

Remote bridges (Redis, PostgreSQL LISTEN/NOTIFY) feed the same hub, so a reader never cares
where an append happened. A wake-up carries no data; readers always read the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager


class Waiter:
    """One reader's wake-up flag. Wake-ups between two waits are remembered, never lost."""

    __slots__ = ("_flag",)

    def __init__(self) -> None:
        self._flag = asyncio.Event()

    def wake(self) -> None:
        self._flag.set()

    async def wait(self, timeout: float) -> bool:
        if not self._flag.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._flag.wait()
            except TimeoutError:
                return False
        self._flag.clear()
        return True


class LocalWakeups:
    """Wakes readers in this process. Used alone for the embedded default."""

    def __init__(self) -> None:
        self._by_session: dict[str, set[Waiter]] = {}
        self._all: set[Waiter] = set()

    @asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[Waiter]:
        waiter = Waiter()
        self._by_session.setdefault(session_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._by_session.get(session_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._by_session[session_id]

    @asynccontextmanager
    async def subscribe_all(self) -> AsyncIterator[Waiter]:
        waiter = Waiter()
        self._all.add(waiter)
        try:
            yield waiter
        finally:
            self._all.discard(waiter)

    def wake(self, session_ids: Iterable[str]) -> None:
        for session_id in session_ids:
            for waiter in self._by_session.get(session_id, ()):
                waiter.wake()
        for waiter in self._all:
            waiter.wake()

    def wake_everyone(self) -> None:
        """After a bridge reconnects it may have missed wake-ups: let every reader re-check."""
        for waiters in self._by_session.values():
            for waiter in waiters:
                waiter.wake()
        for waiter in self._all:
            waiter.wake()

    async def publish(self, session_ids: Sequence[str]) -> None:
        self.wake(session_ids)

    async def close(self) -> None:
        return None


class BridgedWakeups:
    """What the cross-process bridges (Redis, PostgreSQL NOTIFY) share: readers wait on this
    process's hub, and a message from another process wakes the readers it names.

    A message is `<sender token>|<session id>,<session id>...`, or `<sender token>|*` for
    "every session" (a list too long for the channel). A process ignores its own messages:
    its readers were woken when it committed.
    """

    def __init__(self, own_token: str = "") -> None:
        self.local = LocalWakeups()
        self.own_token = own_token

    def subscribe(self, session_id: str) -> AbstractAsyncContextManager[Waiter]:
        return self.local.subscribe(session_id)

    def subscribe_all(self) -> AbstractAsyncContextManager[Waiter]:
        return self.local.subscribe_all()

    def _deliver(self, message: str) -> None:
        token, _, ids = message.partition("|")
        if token == self.own_token:
            return
        if ids == "*":
            self.local.wake_everyone()
        else:
            self.local.wake(ids.split(","))
