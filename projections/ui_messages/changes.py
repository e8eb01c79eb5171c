"""Which stored messages a fold changed: what a store of one row per message must write.

A fold leaves every message it did not touch in place (the same object at the same position),
so the rows to write are the messages it thawed and every position from the first one a
rewind or the tombstone took away. `merged` joins the changes of consecutive folds of one
session; `everything` stands for a state written afresh (a rebuild of one session, a state
healed from the log).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MessageChanges:
    """Positions whose message must be (re)written, and whether the conversation got shorter
    at some point (rows past its new length must then go)."""

    written: frozenset[int] = frozenset()
    shrunk: bool = False
    everything: bool = False

    def merged(self, later: MessageChanges) -> MessageChanges:
        """These changes, then `later`'s (of the state these led to)."""
        if self.everything or later.everything:
            return EVERYTHING
        return MessageChanges(
            written=self.written | later.written, shrunk=self.shrunk or later.shrunk
        )

    def positions(self, length: int) -> range | list[int]:
        """The positions to write in a conversation of `length` messages, in order."""
        if self.everything:
            return range(length)
        return sorted(p for p in self.written if p < length)


NONE = MessageChanges()
EVERYTHING = MessageChanges(shrunk=True, everything=True)
