"""Text, reasoning and step-start parts."""

from __future__ import annotations

from msgspec.structs import replace

from agentlog.domain.events import (
    ReasoningCompleted,
    ReasoningDelta,
    RecordedEvent,
    StepStarted,
    TextCompleted,
    TextDelta,
)
from agentlog.projections.ui_messages.builder import Builder, Handler, Streamed
from agentlog.projections.ui_messages.state import ReasoningPart, StepStartPart, TextPart


def _step_started(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, StepStarted)
    if event.parent_tool_call_id is not None:
        return  # a subagent's step: its parts nest under its call, not in the turn's steps
    message = b.run_message(event.run_id)
    if message is not None:
        message.parts.append(StepStartPart(message_id=event.message_id))


def _text_delta(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, TextDelta | ReasoningDelta)
    message = b.run_message(event.run_id)
    if message is None:
        return
    kind = "text" if type(event) is TextDelta else "reasoning"
    key = (kind, event.message_id, event.block_index)
    position = message.find(key)
    if position is None:
        cls = TextPart if kind == "text" else ReasoningPart
        part = cls(
            message_id=event.message_id,
            block_index=event.block_index,
            parent_tool_call_id=event.parent_tool_call_id,
        )
        message.add(key, Streamed(part, [event.delta]))
    else:
        message.extend(position, event.delta)


def _text_completed(b: Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, TextCompleted | ReasoningCompleted)
    message = b.run_message(event.run_id)
    if message is None:
        return
    cls = TextPart if type(event) is TextCompleted else ReasoningPart
    kind = "text" if cls is TextPart else "reasoning"
    key = (kind, event.message_id, event.block_index)
    part = cls(
        message_id=event.message_id,
        block_index=event.block_index,
        text=event.text,
        done=True,
        parent_tool_call_id=event.parent_tool_call_id,
    )
    position = message.find(key)
    if position is None:
        message.add(key, part)
    else:
        current = message.parts[position]
        first = current.part if type(current) is Streamed else current
        if isinstance(first, TextPart | ReasoningPart) and first.parent_tool_call_id is not None:
            part = replace(part, parent_tool_call_id=first.parent_tool_call_id)  # as the client
        message.parts[position] = part


HANDLERS: dict[type, Handler] = {
    StepStarted: _step_started,
    TextDelta: _text_delta,
    ReasoningDelta: _text_delta,
    TextCompleted: _text_completed,
    ReasoningCompleted: _text_completed,
}
