"""Abandoned runs: what to record when a run's owner died, as a pure function of the log.

A run is abandoned when the log says it is running (the sessions fold has an active run) but
nobody holds the session's run lock: its process died and the lock expired. The caller holds
the lock while it records the result, so two processes never both recover one run.
"""

from __future__ import annotations

from collections.abc import Iterable

from agentlog.domain.events import (
    Event,
    RecordedEvent,
    RunAbandoned,
    ToolCallFailed,
    ToolCallStarted,
)
from agentlog.domain.rules.open_work import open_work

INTERRUPTED_BY_OWNER_LOSS = "interrupted: the run's server stopped"
ABANDONED_REASON = "the server running this turn stopped; its run lock expired"


def running_run(events: Iterable[RecordedEvent]) -> tuple[str | None, list[ToolCallStarted]]:
    """The run the log says is still running (None if none), and every tool call of the
    session that started and never ended, in start order."""
    work = open_work(events)
    return work.open_run_id, list(work.waiting.values())


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
