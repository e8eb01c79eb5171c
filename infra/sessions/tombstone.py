"""Whether, and when, a session was deleted: its log ends in its tombstone."""

from __future__ import annotations

from datetime import datetime

from agentlog.domain.errors import SessionDeleted, UnknownSession
from agentlog.domain.ports.event_store import EventStore


async def deleted_at(store: EventStore, session_id: str) -> datetime | None:
    """When the session was deleted, or None if it is not (or does not exist)."""
    found = await store.session(session_id)
    return found.deleted_at if found is not None else None


async def live_head(store: EventStore, session_id: str) -> int:
    """The head of a session that exists and is not deleted, from one read: raises
    UnknownSession (404) or SessionDeleted (410), which that read tells apart."""
    found = await store.session(session_id)
    if found is None:
        raise UnknownSession(session_id)
    if found.deleted_at is not None:
        raise SessionDeleted(session_id, found.deleted_at.isoformat())
    return found.head
