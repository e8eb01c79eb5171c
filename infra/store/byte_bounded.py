"""Memory bounded in bytes: an LRU map whose entries carry an estimate of what they hold.

A bound in entries says nothing about memory when one session's state is 1 KiB and another's
20 MiB (2,000 remembered sessions could hold 40 GiB); a bound in bytes does. Sizes are
estimates given by the caller (encoded lengths), erring on the large side.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

KIB = 1024
MIB = 1024 * KIB

# What the process's caches and rings may hold together by default
# (AGENTLOG_CACHE_BYTES), and each one's share of it (see docs/configuration.md).
DEFAULT_CACHE_BYTES = 64 * MIB


def projector_share(total: int) -> int:
    """The projector's remembered rows: a quarter."""
    return total // 4


def feed_rings_share(total: int) -> int:
    """The live feeds' rings of every followed session together: half."""
    return total // 2


def rebuild_share(total: int) -> int:
    """A projection rebuild's states held before they are written: an eighth."""
    return total // 8


def heads_share(total: int) -> int:
    """The PostgreSQL writer's remembered session heads: a thirty-second."""
    return total // 32


class ByteBoundedLru(Generic[K, V]):
    """Least recently used entries go first once the sizes add up to more than `max_bytes`;
    an entry larger than the whole bound is never held."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def size_of(self, key: K) -> int:
        """The size `key` was put with; 0 when absent."""
        found = self._entries.get(key)
        return 0 if found is None else found[1]

    def put(self, key: K, value: V, size: int) -> None:
        entries = self._entries
        found = entries.get(key)
        if found is not None and found[1] == size:
            # The common case (a remembered head moving on, once per session of every
            # commit): same size, so the total and what fits do not change.
            entries[key] = (value, size)
            entries.move_to_end(key)
            return
        self.pop(key)
        if size > self.max_bytes:
            return
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted

    def pop(self, key: K) -> V | None:
        found = self._entries.pop(key, None)
        if found is None:
            return None
        self.bytes -= found[1]
        return found[0]

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
