"""Reading a run, not its session: the run index says where a run starts, and only the
events from there are read (O(run), however long the session's log grows)."""

from __future__ import annotations

from typing import Protocol

from agentlog.domain.events import RecordedEvent
from agentlog.domain.ports.event_store import RunRecord
from agentlog.domain.rules.open_work import OpenWork, open_work


class RunReads(Protocol):
    """What reading a run takes of the event store (the EventStore port has it, and so does
    the runner's narrower RunStore): its run index and a session's events."""

    async def current_run(self, session_id: str) -> RunRecord | None: ...

    async def read_session(self, session_id: str, after: int = 0) -> list[RecordedEvent]: ...


async def current_run_events(
    store: RunReads, session_id: str
) -> tuple[RunRecord | None, list[RecordedEvent]]:
    """The session's latest run and every event from its `run_started` on ([] if none)."""
    current = await store.current_run(session_id)
    if current is None:
        return None, []
    return current, await store.read_session(session_id, after=current.started_seq - 1)


async def current_open_work(store: RunReads, session_id: str) -> OpenWork:
    """What the session leaves open, read from its latest run's start: earlier runs left
    nothing open (each ended with every call resolved, or recovery closed it before the next
    run started). A session that never ran an agent is read whole."""
    current, events = await current_run_events(store, session_id)
    if current is None:
        events = await store.read_session(session_id)
    return open_work(events)


async def open_run_events(store: RunReads, session_id: str) -> list[RecordedEvent]:
    """The events of the session's run that is still open in the run index, from its
    `run_started` on; [] when no run is open (nothing to recover)."""
    current = await store.current_run(session_id)
    if current is None or current.ended_seq is not None:
        return []
    return await store.read_session(session_id, after=current.started_seq - 1)
