"""Wake-ups: how readers learn that events committed, in this process and in others."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol


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
