"""The state read as AI SDK `UIMessage` dicts, hydrated (see the package docstring)."""

from __future__ import annotations

from typing import Any

from agentlog.projections.ui_messages.state import (
    WAITING,
    ConversationState,
    DataPart,
    FilePart,
    Part,
    ReasoningPart,
    RunInfo,
    SteeringPart,
    StepStartPart,
    TextPart,
    ToolPart,
)
from agentlog.projections.usage import cost_metadata

INTERRUPTED = "interrupted: the run ended before this tool returned"


def to_ui_messages(
    state: ConversationState, *, run_active: bool, files_url: str = ""
) -> list[dict[str, Any]]:
    """The conversation as UIMessage dicts, hydrated (see the package docstring).

    `run_active`: the caller knows the open run is still executing (its lock is held).
    `files_url`: where the session's files are served; a file part's `url` is it + sha256.
    The dicts share event payloads (tool input/output, data) with the state: read-only.
    """
    live_id = state.open_run_id if run_active else None
    messages: list[dict[str, Any]] = []
    for message in state.messages:
        live = message.run is not None and (
            message.id == live_id or (live_id is not None and live_id in message.run.continued_by)
        )
        ui: dict[str, Any] = {
            "id": message.id,
            "role": message.role,
            "parts": [
                _ui_file(part, files_url)
                if type(part) is FilePart
                else _ui_part(part, live, message.role)
                for part in message.parts
            ],
        }
        if message.run is not None:
            ui["metadata"] = _ui_metadata(message.run)
        messages.append(ui)
    return messages


def _ui_part(part: Part, live: bool, role: str) -> dict[str, Any]:
    if type(part) is TextPart or type(part) is ReasoningPart:
        kind = "text" if type(part) is TextPart else "reasoning"
        if role == "user":
            return {"type": kind, "text": part.text}
        ui: dict[str, Any] = {
            "type": kind,
            "text": part.text,
            "state": _text_state(part.done, live),
        }
        if part.parent_tool_call_id is not None:
            ui["providerMetadata"] = subagent_metadata(part.parent_tool_call_id)
        return ui
    if type(part) is ToolPart:
        return _ui_tool(part, live)
    if type(part) is StepStartPart:
        return {"type": "step-start"}
    if type(part) is SteeringPart:
        return {
            "type": "steering-message",
            "id": part.id,
            "parts": [{"type": "text", "text": part.text}],
        }
    assert isinstance(part, DataPart)
    return {"type": f"data-{part.name}", "data": part.data}


def _ui_file(part: FilePart, files_url: str) -> dict[str, Any]:
    """The AI SDK's FileUIPart, its `url` the route that serves the stored bytes."""
    ui: dict[str, Any] = {
        "type": "file",
        "mediaType": part.media_type,
        "url": files_url + part.sha256,
    }
    if part.filename is not None:
        ui["filename"] = part.filename
    return ui


def subagent_metadata(parent_tool_call_id: str) -> dict[str, Any]:
    """Where a subagent's part says which tool call started the subagent (AI SDK provider
    metadata, which the client keeps on the part as it streams)."""
    return {"agentlog": {"parentToolCallId": parent_tool_call_id}}


def _text_state(done: bool, live: bool) -> str:
    return "streaming" if live and not done else "done"


def _ui_tool(part: ToolPart, live: bool) -> dict[str, Any]:
    ui: dict[str, Any]
    if part.tool_name.startswith("mcp__"):
        ui = {"type": "dynamic-tool", "toolName": part.tool_name}
    else:
        ui = {"type": f"tool-{part.tool_name}"}
    ui["toolCallId"] = part.tool_call_id
    if part.parent_tool_call_id is not None:
        ui["callProviderMetadata"] = subagent_metadata(part.parent_tool_call_id)
    state = part.state
    if state in WAITING and not live:
        ui["state"] = "output-error"
        if state == "input-available":
            ui["input"] = part.input
        ui["errorText"] = INTERRUPTED
        return ui
    ui["state"] = state
    if state == "input-streaming":
        return ui
    ui["input"] = part.input
    if state == "output-available":
        ui["output"] = part.output
    elif state == "output-error":
        ui["errorText"] = part.error_text
    elif state == "output-denied" and part.approval_id is None:
        # A policy denial: the AI SDK's shape for a refused call, keyed by the call.
        ui["approval"] = {"id": part.tool_call_id, "approved": False, "reason": part.error_text}
    if part.approval_id is not None:
        approval: dict[str, Any] = {"id": part.approval_id}
        if part.approved is not None:
            approval["approved"] = part.approved
            if part.approval_reason is not None:
                approval["reason"] = part.approval_reason
        ui["approval"] = approval
    return ui


def _ui_metadata(run: RunInfo) -> dict[str, Any]:
    fields = {
        "status": run.status,
        "agent": run.agent,
        "model": run.model,
        "startedAt": run.started_at.isoformat() if run.started_at else None,
        "endedAt": run.ended_at.isoformat() if run.ended_at else None,
        "usage": run.usage,
        "totalCostUsd": run.total_cost_usd,
        "cost": None if run.cost is None else cost_metadata(run.cost),
        "durationMs": run.duration_ms,
        "numTurns": run.num_turns,
        "stopReason": run.stop_reason,
        "error": run.error,
    }
    return {name: value for name, value in fields.items() if value is not None}
