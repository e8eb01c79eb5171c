"""Tool parts: the streamed input, the call's start and its end."""

from __future__ import annotations

from msgspec.structs import replace

from agentlog.domain.events import (
    RecordedEvent,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
)
from agentlog.projections.ui_messages.builder import Builder, Handler, Streamed, tool_key
from agentlog.projections.ui_messages.state import PARKED, WAITING, ToolPart


def _tool_input_delta(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, ToolInputDelta)
    message = b.run_message(event.run_id)
    if message is None:
        return
    key = tool_key(event.tool_call_id)
    position = message.find(key)
    if position is None:
        part = ToolPart(
            tool_call_id=event.tool_call_id,
            tool_name=event.tool_name,
            state="input-streaming",
            parent_tool_call_id=event.parent_tool_call_id,
        )
        message.add(key, Streamed(part, [event.delta]))
    else:
        message.extend(position, event.delta)


def _tool_call_started(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, ToolCallStarted)
    message = b.run_message(event.run_id)
    if message is None:
        return
    key = tool_key(event.tool_call_id)
    part = ToolPart(
        tool_call_id=event.tool_call_id,
        tool_name=event.tool_name,
        state="input-available",
        input=event.input,
        parent_tool_call_id=event.parent_tool_call_id,
    )
    position = message.find(key)
    if position is None:
        message.add(key, part)
        return
    current = message.parts[position]
    if type(current) is Streamed or (
        isinstance(current, ToolPart) and current.state == "input-streaming"
    ):
        first = current.part if type(current) is Streamed else current
        if part.parent_tool_call_id is None and isinstance(first, ToolPart):
            part = replace(part, parent_tool_call_id=first.parent_tool_call_id)
        message.parts[position] = part


def _tool_call_ended(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, ToolCallSucceeded | ToolCallFailed | ToolCallDenied)
    found = b.tool_part(event.tool_call_id, event.run_id)
    if found is None:
        return
    message, position, current = found
    if current.state not in WAITING and current.state not in PARKED:
        return
    if type(event) is ToolCallSucceeded:
        ended = replace(current, state="output-available", output=event.output)
    elif type(event) is ToolCallFailed:
        ended = replace(current, state="output-error", error_text=event.error_text)
    else:
        assert isinstance(event, ToolCallDenied)
        ended = replace(current, state="output-denied", error_text=event.reason)
    message.parts[position] = ended


HANDLERS: dict[type, Handler] = {
    ToolInputDelta: _tool_input_delta,
    ToolCallStarted: _tool_call_started,
    ToolCallSucceeded: _tool_call_ended,
    ToolCallFailed: _tool_call_ended,
    ToolCallDenied: _tool_call_ended,
}
