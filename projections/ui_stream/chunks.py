"""The chunks that build, move or replay one part of the message."""

from __future__ import annotations

from typing import Any

from agentlog.projections.ui_messages import PARKED, subagent_metadata
from agentlog.projections.ui_stream.parts import Block, Call, Data, Part, Steering, joined

Chunk = dict[str, Any]


def _tool_ids(call: Call) -> Chunk:
    chunk: Chunk = {"toolCallId": call.tool_call_id, "toolName": call.tool_name}
    if call.tool_name.startswith("mcp__"):
        chunk["dynamic"] = True
    if call.parent is not None:  # the client keeps it as the part's callProviderMetadata
        chunk["providerMetadata"] = subagent_metadata(call.parent)
    return chunk


def block_start(block: Block) -> Chunk:
    chunk: Chunk = {"type": f"{block.kind}-start", "id": block.chunk_id}
    if block.parent is not None:  # the client keeps it as the part's providerMetadata
        chunk["providerMetadata"] = subagent_metadata(block.parent)
    return chunk


def tool_input_start(call: Call) -> Chunk:
    return {"type": "tool-input-start", **_tool_ids(call)}


def tool_input_available(call: Call) -> Chunk:
    return {"type": "tool-input-available", **_tool_ids(call), "input": call.input}


def tool_output_error(call: Call) -> Chunk:
    return {
        "type": "tool-output-error",
        "toolCallId": call.tool_call_id,
        "errorText": call.error_text,
    }


def tool_result(call: Call) -> list[Chunk]:
    """The chunks that move an input-available call to its (ended) state."""
    if call.state == "output-available":
        return [
            {
                "type": "tool-output-available",
                "toolCallId": call.tool_call_id,
                "output": call.output,
            }
        ]
    if call.state == "output-error":
        return [tool_output_error(call)]
    assert call.state == "output-denied"
    if call.approval_id is not None:
        # The client's part already carries the person's answer.
        return [{"type": "tool-output-denied", "toolCallId": call.tool_call_id}]
    approval = call.tool_call_id
    return [
        approval_request(approval, call),
        {
            "type": "tool-approval-response",
            "approvalId": approval,
            "approved": False,
            "reason": call.error_text,
        },
        {"type": "tool-output-denied", "toolCallId": call.tool_call_id},
    ]


def tool_input_delta(call: Call, delta: str) -> Chunk:
    return {"type": "tool-input-delta", "toolCallId": call.tool_call_id, "inputTextDelta": delta}


def approval_request(approval_id: str, call: Call) -> Chunk:
    return {
        "type": "tool-approval-request",
        "approvalId": approval_id,
        "toolCallId": call.tool_call_id,
    }


def approval_response(call: Call) -> Chunk:
    chunk: Chunk = {
        "type": "tool-approval-response",
        "approvalId": call.approval_id,
        "approved": call.approved,
    }
    if call.approval_reason is not None:
        chunk["reason"] = call.approval_reason
    return chunk


def part_chunks(part: Part) -> list[Chunk]:
    """The chunks that build `part` as it is now on a client that does not have it yet."""
    if type(part) is Data:
        return [{"type": part.type, "data": part.data}]
    if type(part) is Steering:
        return [
            {
                "type": "steering-message",
                "id": part.id,
                "parts": [{"type": "text", "text": part.text}],
            }
        ]
    if type(part) is Block:
        chunks: list[Chunk] = [block_start(part)]
        text = joined(part.pieces)
        if text:
            chunks.append({"type": f"{part.kind}-delta", "id": part.chunk_id, "delta": text})
        if not part.open:
            chunks.append({"type": f"{part.kind}-end", "id": part.chunk_id})
        return chunks
    assert type(part) is Call
    if part.state == "input-streaming":
        chunks = [tool_input_start(part)]
        if part.input_pieces:
            chunks.append(tool_input_delta(part, joined(part.input_pieces)))
        return chunks
    chunks = [tool_input_available(part)]
    if part.approval_id is not None:
        chunks.append(approval_request(part.approval_id, part))
        if part.approved is not None:
            chunks.append(approval_response(part))
    if part.state not in ("input-available", *PARKED):
        chunks += tool_result(part)
    return chunks
