"""Bring the CLI's mirrored transcript up to what the log says, before a run resumes it.

The transcript in the store is the CLI's own, mirrored as it was written; the log is
authoritative where the transcript is behind it. The ways it falls behind:
- the server died mid-turn: the CLI's `tool_use` was mirrored but its result never was, and
  recovery recorded the call failed ("interrupted: the run's server stopped"); a CLI killed
  mid-tool leaves the same gap, closed by the runner's safety net;
- the server died during an approval's grace: the CLI never wrote its `hook_deferred_tool`
  attachment (the hook never answered `defer`), so a resumed CLI would not ask the hook again
  for the waiting call;
- a continuation settled a deferred call (the approved tool ran) and its server died before the
  CLI's result line was mirrored: the transcript still shows the deferral;
- the server died before the mirror's next flush (~100 ms): the log recorded a tool call
  (its PreToolUse hook runs in the server) whose `assistant` line never reached the store. A
  resumed CLI would ask the model again, and the model would ask for a new call: the one
  waiting on an approval would never be settled.

`missing_lines` returns the lines that close those gaps, in the shapes the CLI writes itself
(an `assistant` line with the call's `tool_use`, under the response's own message id, which
the CLI merges with that response's other lines; a `user` line with one `tool_result` per
ended call, as in `transcript.py`; the `attachment` line `hook_deferred_tool`, as in
tests/agent/fixtures/defer-resume.json), chained after the transcript's last line. Their
uuids are derived from the agent session and the call, so a repair appended twice lands once
(the store keeps the first of each uuid).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentlog.domain.events import (
    TOOL_TERMINAL_TYPES,
    RecordedEvent,
    StepStarted,
    ToolApprovalRequested,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.agent.transcripts.conversion import NAMESPACE, tool_result_block

# Lines that belong to the conversation's chain (parentUuid); the rest are the CLI's own
# bookkeeping (`last-prompt`, `queue-operation`, ...), which carry no uuid.
CHAIN_TYPES = frozenset({"user", "assistant", "attachment", "system"})
# An assistant line needs a model; the log names the response's when it recorded its step.
DEFAULT_MODEL = "claude-sonnet-4-5"


@dataclass
class TranscriptCalls:
    """What a transcript says about its tool calls."""

    uses: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> tool_use block
    answered: set[str] = field(default_factory=set)  # a tool_result is there
    deferred: set[str] = field(default_factory=set)  # a hook_deferred_tool attachment is there
    last_uuid: str | None = None  # the chain's last line

    @property
    def open(self) -> list[str]:
        """Calls with neither a result nor a deferral, in the order they were asked for."""
        return [t for t in self.uses if t not in self.answered and t not in self.deferred]


def transcript_calls(entries: Iterable[dict[str, Any]]) -> TranscriptCalls:
    calls = TranscriptCalls()
    for entry in entries:
        kind = entry.get("type")
        if kind not in CHAIN_TYPES or entry.get("isSidechain"):
            continue
        if isinstance(entry.get("uuid"), str):
            calls.last_uuid = entry["uuid"]
        if kind == "attachment":
            attachment = entry.get("attachment")
            if isinstance(attachment, dict) and attachment.get("type") == "hook_deferred_tool":
                calls.deferred.add(str(attachment.get("toolUseID")))
            continue
        message = entry.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            if kind == "assistant" and block.get("type") == "tool_use":
                calls.uses.setdefault(str(block.get("id")), block)
            elif kind == "user" and block.get("type") == "tool_result":
                calls.answered.add(str(block.get("tool_use_id")))
    return calls


@dataclass
class LogCalls:
    """What the log says about the agent's own tool calls (not a subagent's): their starts, in
    order, their ends, the calls asked for approval, and each response's model."""

    started: dict[str, ToolCallStarted] = field(default_factory=dict)
    ends: dict[str, object] = field(default_factory=dict)
    asked: set[str] = field(default_factory=set)
    models: dict[str, str | None] = field(default_factory=dict)


def log_calls(events: Iterable[RecordedEvent]) -> LogCalls:
    calls = LogCalls()
    for recorded in events:
        event = recorded.event
        if isinstance(event, ToolCallStarted) and event.parent_tool_call_id is None:
            calls.started.setdefault(event.tool_call_id, event)
        elif isinstance(event, StepStarted) and event.parent_tool_call_id is None:
            calls.models[event.message_id] = event.model
        elif isinstance(event, TOOL_TERMINAL_TYPES):
            calls.ends.setdefault(event.tool_call_id, event)
        elif isinstance(event, ToolApprovalRequested):
            calls.asked.add(event.tool_call_id)
    return calls


def unexplained(entries: Sequence[dict[str, Any]], events: Iterable[RecordedEvent]) -> list[str]:
    """The transcript's open calls about which `events` say nothing (neither an end nor an
    approval): a wider read of the log is needed to repair them."""
    logged = log_calls(events)
    return [
        t for t in transcript_calls(entries).open if t not in logged.ends and t not in logged.asked
    ]


def missing_lines(
    entries: Sequence[dict[str, Any]],
    events: Iterable[RecordedEvent],
    *,
    agent_session: str,
    cwd: str,
    whole_log: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The lines to append to `entries` (the stored transcript) so it agrees with `events` (the
    log from the latest run's start on): each call the log started that the transcript lacks,
    then a result for each open call the log ended and a deferral for each open call that
    waits on an approval. [] when the transcript is not behind.

    With `whole_log` (`events` is the session's whole log), an open call the log knows nothing
    of (the CLI's line was mirrored, the server died before recording the call) is answered
    "interrupted": as far as the log knows it never ran, and the API refuses a call without
    its result."""
    calls = transcript_calls(entries)
    logged = log_calls(events)
    stamp = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines: list[dict[str, Any]] = []
    parent = calls.last_uuid

    def add(kind: str, call_id: str, body: str, value: dict[str, Any]) -> None:
        nonlocal parent
        line_id = str(uuid.uuid5(NAMESPACE, f"{agent_session}:repair:{kind}:{call_id}"))
        lines.append(
            {
                "type": kind,
                "uuid": line_id,
                "parentUuid": parent,
                "sessionId": agent_session,
                "timestamp": stamp,
                "cwd": cwd,
                "isSidechain": False,
                "userType": "external",
                body: value,
            }
        )
        parent = line_id

    # Calls the log started whose assistant line never reached the store, per response.
    responses: dict[str, list[dict[str, Any]]] = {}
    for call_id, start in logged.started.items():
        if call_id not in calls.uses:
            block = {
                "type": "tool_use",
                "id": call_id,
                "name": start.tool_name,
                "input": start.input if isinstance(start.input, dict) else {},
            }
            responses.setdefault(start.message_id or f"repair-{call_id}", []).append(block)
            calls.uses[call_id] = block
    for message_id, blocks in responses.items():
        message = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": logged.models.get(message_id) or DEFAULT_MODEL,
            "content": blocks,
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        add("assistant", message_id, "message", message)

    for call_id, use in calls.uses.items():
        if call_id in calls.answered:
            continue
        name = str(use.get("name"))
        end = logged.ends.get(call_id)
        if isinstance(end, (ToolCallSucceeded, ToolCallFailed, ToolCallDenied)):
            # Also for a deferred call: a continuation settled it (the tool ran, or was
            # refused) and its server died before the CLI's result line was mirrored. A
            # resumed CLI would otherwise ask for the call again and run it twice.
            block = tool_result_block(call_id, name, end)
            add("user", call_id, "message", {"role": "user", "content": [block]})
        elif call_id in calls.deferred:
            continue  # it waits on its approval, as the CLI wrote
        elif call_id in logged.asked:
            deferral: dict[str, Any] = {
                "type": "hook_deferred_tool",
                "toolUseID": call_id,
                "toolName": name,
                "toolInput": use.get("input") if isinstance(use.get("input"), dict) else {},
            }
            add("attachment", call_id, "attachment", deferral)
        elif whole_log:
            block = tool_result_block(call_id, name, None)
            add("user", call_id, "message", {"role": "user", "content": [block]})
    return lines
