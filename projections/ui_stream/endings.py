"""A run's last chunks, by how it ended, with the metadata the fold gives it."""

from __future__ import annotations

from typing import Any

from agentlog.domain.events import RecordedEvent, RunAbandoned, RunCancelled, RunFailed, RunFinished
from agentlog.projections.ui_messages.runs import finished_error, finished_status
from agentlog.projections.ui_stream.chunks import Chunk
from agentlog.projections.usage import cost_metadata, run_usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool-calls",
    "refusal": "content-filter",
}


def ending_of(recorded: RecordedEvent, agent: str | None) -> list[Chunk]:
    """The last chunks for a run's terminal event, with the metadata the fold gives it."""
    event = recorded.event
    metadata: dict[str, Any] = {"endedAt": recorded.time.isoformat()}
    cost = run_usage(event, agent=agent)
    if cost is not None:
        metadata["cost"] = cost_metadata(cost)
    if isinstance(event, RunFinished):
        metadata |= {
            "status": finished_status(event),
            "usage": event.usage or None,
            "totalCostUsd": None if cost is None else cost.cost_usd,
            "durationMs": event.duration_ms,
            "numTurns": event.num_turns,
            "stopReason": event.stop_reason,
        }
        error = finished_error(event)
        if error is not None:
            metadata["error"] = error
            return _failed(_present(metadata), error)
        reason = FINISH_REASONS.get(event.stop_reason or "end_turn", "other")
        finish = {"type": "finish", "finishReason": reason, "messageMetadata": _present(metadata)}
        return [finish]
    if isinstance(event, RunFailed):
        metadata |= {"status": "failed", "error": event.error, "stopReason": event.terminal_reason}
        return _failed(_present(metadata), event.error)
    if isinstance(event, RunCancelled):
        metadata |= {"status": "cancelled", "error": event.reason}
        return [
            {"type": "message-metadata", "messageMetadata": metadata},
            {"type": "abort", "reason": event.reason},
        ]
    assert isinstance(event, RunAbandoned)
    metadata |= {"status": "abandoned", "error": event.reason}
    return [{"type": "finish", "finishReason": "interrupted", "messageMetadata": metadata}]


def _failed(metadata: dict[str, Any], error: str) -> list[Chunk]:
    return [
        {"type": "finish", "finishReason": "error", "messageMetadata": metadata},
        {"type": "error", "errorText": error},
    ]


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
