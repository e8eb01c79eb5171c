"""Whether, and when, a session was deleted: its log ends in its tombstone."""

from __future__ import annotations

from datetime import datetime

from agentlog.domain.events import SessionDeleted as SessionDeletedEvent
from agentlog.domain.ports.event_store import EventStore


async def deleted_at(store: EventStore, session_id: str) -> datetime | None:
    """When the session was deleted, or None if it is not (or does not exist)."""
    found = await store.session(session_id)
    if found is None or found.head < 1:
        return None
    newest = await store.read(session_id, after=found.head - 1, limit=1)
    if newest and isinstance(newest[0].event, SessionDeletedEvent):
        return newest[0].time
    return None
