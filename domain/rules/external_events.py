"""Decisions for events posted by external writers (a job posting a tool's output later, a
client's own data): pure functions that return the events to append or raise."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import msgspec

from agentlog.domain.errors import AgentlogError
from agentlog.domain.events import (
    CustomEventRecorded,
    Event,
    RecordedEvent,
    ToolCallFailed,
    ToolCallSucceeded,
)
from agentlog.domain.rules.open_work import open_work

MAX_CUSTOM_NAME = 100


class CustomInput(
    msgspec.Struct, frozen=True, tag="custom", tag_field="type", forbid_unknown_fields=True
):
    name: str
    data: Any = None


class ToolOutputInput(
    msgspec.Struct, frozen=True, tag="tool_output", tag_field="type", forbid_unknown_fields=True
):
    tool_call_id: str
    output: Any = None
    is_error: bool = False


ExternalInput = CustomInput | ToolOutputInput


class ToolCallNotWaiting(AgentlogError):
    """tool_output names a call that never started or already has its output."""

    code = "tool_call_not_waiting"
    http_status = 409

    def __init__(self, tool_call_id: str, reason: str) -> None:
        super().__init__(f"tool call {tool_call_id!r} is not waiting for output: {reason}")
        self.details = {"tool_call_id": tool_call_id}


class ToolCallOwnedByRun(AgentlogError):
    """tool_output names a call the live agent is executing itself: its own result will come."""

    code = "tool_call_owned_by_run"
    http_status = 409

    def __init__(self, tool_call_id: str, run_id: str) -> None:
        super().__init__(
            f"tool call {tool_call_id!r} is being executed by the active run {run_id!r}; "
            "its result comes from the agent"
        )
        self.details = {"tool_call_id": tool_call_id, "run_id": run_id}


class InvalidExternalEvent(AgentlogError):
    code = "invalid_event"
    http_status = 400


def waiting_tool_calls(history: Iterable[RecordedEvent]) -> dict[str, str | None]:
    """Tool calls started and not yet resolved, mapped to their run id."""
    return open_work(history).waiting_calls()


def decide_external_events(
    inputs: Sequence[ExternalInput],
    waiting: dict[str, str | None],
    *,
    live_run: str | None = None,
    outside_answers: Collection[str] = (),
) -> list[Event]:
    """Translate posted inputs into events; every tool_output must name a waiting call, and
    one call may be answered once per request. A call of `live_run` (the run an agent is
    executing now) is its agent's to answer, unless it waits for an outside answer (its id in
    `outside_answers`: client-side tools, approvals)."""
    events: list[Event] = []
    answered: set[str] = set()
    for item in inputs:
        if isinstance(item, CustomInput):
            if not item.name or len(item.name) > MAX_CUSTOM_NAME:
                raise InvalidExternalEvent(
                    f"a custom event's name must be 1 to {MAX_CUSTOM_NAME} characters"
                )
            events.append(CustomEventRecorded(name=item.name, data=item.data))
            continue
        call = item.tool_call_id
        if call in answered:
            raise ToolCallNotWaiting(call, "answered twice in this request")
        if call not in waiting:
            raise ToolCallNotWaiting(call, "it never started or already has its output")
        run_id = waiting[call]
        if live_run is not None and run_id == live_run and call not in outside_answers:
            raise ToolCallOwnedByRun(call, live_run)
        answered.add(call)
        if item.is_error:
            text = item.output if isinstance(item.output, str) else json.dumps(item.output)
            events.append(
                ToolCallFailed(run_id=run_id, tool_call_id=call, error_text=text, source="external")
            )
        else:
            events.append(
                ToolCallSucceeded(
                    run_id=run_id, tool_call_id=call, output=item.output, source="external"
                )
            )
    return events
