"""`data-<name>` parts: custom events and agent errors."""

from __future__ import annotations

from typing import Any

from agentlog.domain.events import AgentErrorReported, CustomEventRecorded, RecordedEvent
from agentlog.projections.ui_messages.builder import Builder, Handler
from agentlog.projections.ui_messages.state import DataPart


def _agent_error(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, AgentErrorReported)
    data: dict[str, Any] = {"kind": event.kind, "message": event.message}
    if event.status is not None:
        data["status"] = event.status
    b.data_part(recorded, DataPart(name="agent-error", data=data))


def _custom(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, CustomEventRecorded)
    b.data_part(recorded, DataPart(name=event.name, data=event.data))


HANDLERS: dict[type, Handler] = {
    AgentErrorReported: _agent_error,
    CustomEventRecorded: _custom,
}
