"""`data-<name>` parts (custom events and agent errors), and steering-message parts."""

from __future__ import annotations

from typing import Any

from agentlog.domain.events import (
    AgentErrorReported,
    CustomEventRecorded,
    RecordedEvent,
    SteeringDelivered,
)
from agentlog.projections.ui_messages.builder import Builder, Handler
from agentlog.projections.ui_messages.state import DataPart, SteeringPart


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


def _steering(b: Builder, recorded: RecordedEvent) -> None:
    """On the run's message, where it was delivered: before the step that received it."""
    event = recorded.event
    assert isinstance(event, SteeringDelivered)
    message = b.run_message(event.run_id)
    if message is not None:
        message.parts.append(SteeringPart(id=steering_id(event), text=event.prompt))


def steering_id(event: SteeringDelivered) -> str:
    """The steering message's id: the client's, else one named after its queue entry."""
    return event.user_message_id or f"steer:{event.queued_seq}"


HANDLERS: dict[type, Handler] = {
    AgentErrorReported: _agent_error,
    CustomEventRecorded: _custom,
    SteeringDelivered: _steering,
}
