"""Abandoned runs: what to record when a run's owner died, as a pure function of the log.

A run is abandoned when the log says it is running (the sessions fold has an active run) but
nobody holds the session's run lock: its process died and the lock expired. The caller holds
the lock while it records the result, so two processes never both recover one run.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.events import (
    TOOL_TERMINAL_TYPES,
    Event,
    RecordedEvent,
    RunAbandoned,
    ToolCallFailed,
    ToolCallStarted,
)
from projections import sessions

INTERRUPTED_BY_OWNER_LOSS = "interrupted: the run's server stopped"
ABANDONED_REASON = "the server running this turn stopped; its run lock expired"


def running_run(events: Iterable[RecordedEvent]) -> tuple[str | None, list[ToolCallStarted]]:
    """The run the log says is still running (None if none), and every tool call of the
    session that started and never ended, in start order."""
    summary: sessions.SessionSummary | None = None
    started: dict[str, ToolCallStarted] = {}
    ended: set[str] = set()
    for recorded in events:
        summary = sessions.apply(summary, recorded)
        event = recorded.event
        if isinstance(event, ToolCallStarted):
            started.setdefault(event.tool_call_id, event)
        elif isinstance(event, TOOL_TERMINAL_TYPES):
            ended.add(event.tool_call_id)
    active = summary.active_run_id if summary is not None else None
    dangling = [call for call_id, call in started.items() if call_id not in ended]
    return active, dangling


def recovery_events(
    events: Iterable[RecordedEvent],
    *,
    reason: str = ABANDONED_REASON,
    error_text: str = INTERRUPTED_BY_OWNER_LOSS,
) -> list[Event]:
    """Events that close an abandoned run: each dangling tool call fails as interrupted (under
    its own run), then `run_abandoned`. Empty when the log has nothing to close."""
    active, dangling = running_run(events)
    closing: list[Event] = [
        ToolCallFailed(
            run_id=call.run_id,
            tool_call_id=call.tool_call_id,
            error_text=error_text,
            source="runner",
            interrupted=True,
        )
        for call in dangling
    ]
    if active is not None:
        closing.append(RunAbandoned(run_id=active, reason=reason))
    return closing
