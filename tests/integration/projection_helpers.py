"""What the projection tests compare: the pure fold of the whole log, and the stored rows."""

from __future__ import annotations

from collections.abc import Sequence

from agentlog.domain.events import (
    RecordedEvent,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    StepStarted,
    TextDelta,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.ports.event_store import EventStore
from agentlog.infra.store.projection_store import ProjectionStore
from agentlog.projections import sessions, ui_messages
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.ui_messages import ConversationState

Rows = tuple[dict[str, ConversationState], dict[str, SessionSummary]]


async def whole_log(store: EventStore) -> list[RecordedEvent]:
    events: list[RecordedEvent] = []
    while page := await store.read_all(after=events[-1].position if events else 0, limit=5000):
        events += page
    return events


async def folded(store: EventStore) -> Rows:
    """The pure fold of everything in the log: what every projection must equal."""
    events = await whole_log(store)
    by_session: dict[str, list[RecordedEvent]] = {}
    for recorded in events:
        by_session.setdefault(recorded.session_id, []).append(recorded)
    states = {sid: ui_messages.fold(log) for sid, log in by_session.items()}
    return states, sessions.fold(events)


async def stored(projections: ProjectionStore, session_ids: Sequence[str] = ()) -> Rows:
    """The live rows as stored (no folding of the log beyond them)."""
    summaries = {s.session_id: s for s in await projections.read_summaries(None, 1_000_000)}
    states = {}
    for session_id in {*summaries, *session_ids}:
        state = await projections.read_state(session_id)
        if state is not None:
            states[session_id] = state
    return states, summaries


def a_run(run_id: str, tools: int = 2, words: int = 3) -> list[SessionEvent]:
    """A run with streamed text and parallel tool calls that all return."""
    events: list[SessionEvent] = [
        RunStarted(run_id=run_id, prompt="go"),
        StepStarted(run_id=run_id, message_id=f"{run_id}-m"),
    ]
    events += [
        TextDelta(run_id=run_id, message_id=f"{run_id}-m", block_index=0, delta=f"w{i} ")
        for i in range(words)
    ]
    calls = [f"{run_id}-t{i}" for i in range(tools)]
    events += [ToolCallStarted(run_id=run_id, tool_call_id=c, tool_name="Bash") for c in calls]
    events += [ToolCallSucceeded(run_id=run_id, tool_call_id=c, output=c) for c in calls[::-1]]
    events.append(RunFinished(run_id=run_id, result="done"))
    return events


async def seed(store: EventStore, sessions_count: int, runs: int = 1) -> None:
    for i in range(sessions_count):
        await store.append(f"s{i:03d}", [SessionCreated(title=f"session {i}")])
    for r in range(runs):
        for i in range(sessions_count):
            await store.append(f"s{i:03d}", a_run(f"s{i:03d}-r{r}"))
