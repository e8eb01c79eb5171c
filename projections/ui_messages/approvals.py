"""A tool call that waits on a person: the approval request and its answer."""

from __future__ import annotations

from msgspec.structs import replace

from agentlog.domain.events import RecordedEvent, ToolApprovalRequested, ToolApprovalResponded
from agentlog.projections.ui_messages.builder import Builder, Handler
from agentlog.projections.ui_messages.state import WAITING


def _approval_requested(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, ToolApprovalRequested)
    found = b.tool_part(event.tool_call_id, event.run_id)
    if found is None:
        return
    message, position, current = found
    if current.state not in WAITING:
        return
    message.parts[position] = replace(
        current,
        state="approval-requested",
        input=current.input if current.state == "input-available" else event.input,
        approval_id=event.approval_id,
    )


def _approval_responded(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, ToolApprovalResponded)
    found = b.tool_part(event.tool_call_id, event.run_id)
    if found is None:
        return
    message, position, current = found
    if current.state != "approval-requested" or current.approval_id != event.approval_id:
        return
    message.parts[position] = replace(
        current, state="approval-responded", approved=event.approved, approval_reason=event.reason
    )


HANDLERS: dict[type, Handler] = {
    ToolApprovalRequested: _approval_requested,
    ToolApprovalResponded: _approval_responded,
}
