"""A page of a conversation, newest first to load, chronological to show (useChat's order).

`page_before(messages, limit, before)`: the `limit` messages just older than the message
whose id is `before` (None: the newest), in the conversation's order, and the cursor for the
page before it: the id of the page's oldest message, or None when the page starts the
conversation. A client loads `?limit=N` first, then `?limit=N&before=<cursor>` until the
cursor is None, prepending each page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from agentlog.projections.ui_messages.state import Message

M = TypeVar("M", bound=Message)


class UnknownCursor(LookupError):
    """`before` names no message of the conversation's current branch (a rewind can drop
    messages: the client starts again from the newest page)."""

    def __init__(self, before: str) -> None:
        super().__init__(f"no message {before!r} in the conversation")
        self.before = before


def page_before(
    messages: Sequence[M], limit: int, before: str | None = None
) -> tuple[Sequence[M], str | None]:
    end = len(messages)
    if before is not None:
        # From the newest: a client pages back from the end, so its cursor is near it.
        end = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].id == before), -1)
        if end < 0:
            raise UnknownCursor(before)
    start = max(0, end - limit)
    page = messages[start:end]
    return page, (page[0].id if start > 0 else None)
