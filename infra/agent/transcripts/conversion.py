"""A session's earlier runs as the Claude CLI's transcript: the converter for sessions
recorded before the CLI's own transcript was kept (`LogSessionStore`), and for new branches.

Runs resume from the transcript the CLI itself wrote and the SDK mirrored into the store
(`infra/agent/transcripts/resume.py`). A session recorded before that has runs in its log but no
transcript in the store: its first run converts the log once, with `transcript_lines`, and
appends the result to the store; from then on the CLI's own lines follow it. A rewind or a
fork writes its new branch's transcript the same way (`infra/agent/transcripts/branching.py`).

The lines are the minimal shape the CLI accepts (checked against CLI 2.1.33x): `user` and
`assistant` lines with type, uuid, parentUuid (a chain), sessionId, timestamp, cwd,
isSidechain, userType and message. Per run:
- a `user` line with the prompt (and a note naming the files sent with it: their bytes are
  not in the log);
- per model response (a `message_id`), one `assistant` line with its text and tool_use blocks in
  log order, then one `user` line with a tool_result for each of its tool calls: the output, or
  `is_error: true` with the error text, the denial as the CLI words it ("PreToolUse:<Tool> hook
  error: <reason>", so the model never believes a denied call ran), or "interrupted" when the
  log has no end for the call (the API refuses a tool_use without its result);
- a cancelled run ends with the CLI's own marker, "[Request interrupted by user]";
- a call waiting on an approval (asked, not ended) gets no tool_result: after its response
  comes the CLI's own `attachment` line `hook_deferred_tool` (what the CLI writes when a
  PreToolUse hook defers), so the resumed CLI settles that call first, asking the PreToolUse
  hook again (tests/agent/fixtures/defer-resume.json records it); a continuation run has no
  prompt line of its own.
Left out: thinking blocks (the API ignores them in earlier turns), sub-agent internals (their
result is the parent call's tool_result), agent errors and empty text. A run without an answer
leaves its prompt alone; the CLI merges it with the next user line, as it does itself.

The agent session of a session recorded before branches is derived from agentlog's id
(uuid5, `agent_session_id`); `run_started.agent_session` names it on later runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentlog.domain.events import (
    RecordedEvent,
    RunCancelled,
    RunStarted,
    StepStarted,
    TextCompleted,
    ToolApprovalRequested,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)

NAMESPACE = uuid.UUID("6f1c3a52-7d0e-4b8e-9a55-2c1b6e0f4a17")
INTERRUPTED_TEXT = "interrupted: no result was recorded for this call"
CANCELLED_MARKER = "[Request interrupted by user]"


def prompt_uuid(run_id: str) -> str:
    """The transcript uuid of the run's prompt line: the runner sends the prompt with it (the
    CLI keeps a uuid it is given), and the converter writes it too, so the turns of any
    transcript can be told apart by run (infra/agent/transcripts/branching.py cuts a branch
    there)."""
    return str(uuid.uuid5(NAMESPACE, f"prompt:{run_id}"))


def agent_session_id(session_id: str) -> str:
    """The CLI session id of an agentlog session: stable, so every run continues the same one."""
    return str(uuid.uuid5(NAMESPACE, session_id))


@dataclass
class _Response:
    message_id: str
    model: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    tool_ids: list[str] = field(default_factory=list)


@dataclass
class _Run:
    prompt: str
    seq: int
    time: datetime
    run_id: str | None = None
    responses: dict[str, _Response] = field(default_factory=dict)
    models: dict[str, str | None] = field(default_factory=dict)
    cancelled: bool = False
    continuation: bool = False


def tool_result_block(tool_call_id: str, name: str, end: object) -> dict[str, Any]:
    """The `tool_result` block the CLI writes for a call that ended with `end` (a terminal
    tool event; anything else reads as interrupted)."""
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    if isinstance(end, ToolCallSucceeded):
        output = end.output
        if isinstance(output, str) or (
            isinstance(output, list) and all(isinstance(b, dict) and "type" in b for b in output)
        ):
            block["content"] = output
        elif output is None:
            block["content"] = ""
        else:
            block["content"] = json.dumps(output, ensure_ascii=False)
        return block
    if isinstance(end, ToolCallDenied):
        block["content"] = f"PreToolUse:{name} hook error: {end.reason}"
    elif isinstance(end, ToolCallFailed):
        block["content"] = end.error_text or "failed"
    else:
        block["content"] = INTERRUPTED_TEXT
    block["is_error"] = True
    return block


def _prompt_text(event: RunStarted) -> str:
    """The prompt, and a note naming the files sent with it: a converted line holds no
    file's bytes (the log keeps only their references), so the model is told they were there."""
    if not event.files:
        return event.prompt
    named = ", ".join(
        f"{f.filename or f.sha256[:12]} ({f.media_type}, {f.size} bytes)" for f in event.files
    )
    note = f"[The user attached {len(event.files)} file(s) here: {named}.]"
    return f"{event.prompt}\n\n{note}" if event.prompt else note


def _runs(
    events: Iterable[RecordedEvent],
) -> tuple[list[_Run], dict[str, object], set[str]]:
    """The runs in log order, every tool call's terminal event by call id, and the calls
    whose approval was asked."""
    runs: list[_Run] = []
    by_id: dict[str, _Run] = {}
    ends: dict[str, object] = {}
    asked: set[str] = set()
    current: _Run | None = None
    for recorded in events:
        event = recorded.event
        if isinstance(event, ToolApprovalRequested):
            asked.add(event.tool_call_id)
            continue
        if isinstance(event, RunStarted):
            current = _Run(_prompt_text(event), recorded.seq, recorded.time, event.run_id)
            # A turn continued after approvals has no prompt; one continued after a crash
            # has agentlog's, which the model was sent.
            current.continuation = (
                event.continues_run_id is not None and not event.resumed_after_crash
            )
            runs.append(current)
            if event.run_id is not None:
                by_id[event.run_id] = current
            continue
        if isinstance(event, (ToolCallSucceeded, ToolCallFailed, ToolCallDenied)):
            ends.setdefault(event.tool_call_id, event)
            continue
        run = by_id.get(event.run_id, current) if event.run_id is not None else current
        if run is None:
            continue
        if isinstance(event, RunCancelled):
            run.cancelled = True
        elif isinstance(event, StepStarted) and event.parent_tool_call_id is None:
            run.models[event.message_id] = event.model
        elif isinstance(event, TextCompleted) and event.parent_tool_call_id is None:
            if event.text.strip():
                _response(run, event.message_id).blocks.append({"type": "text", "text": event.text})
        elif isinstance(event, ToolCallStarted) and event.parent_tool_call_id is None:
            # A start recorded by a hook has no message id: it belongs to the latest response.
            message_id = event.message_id or (
                next(reversed(run.responses)) if run.responses else f"tool-{event.tool_call_id}"
            )
            response = _response(run, message_id)
            if event.tool_call_id in response.tool_ids:
                continue
            response.tool_ids.append(event.tool_call_id)
            response.blocks.append(
                {
                    "type": "tool_use",
                    "id": event.tool_call_id,
                    "name": event.tool_name,
                    "input": event.input if isinstance(event.input, dict) else {},
                }
            )
    for run in runs:
        for response in run.responses.values():
            response.model = run.models.get(response.message_id)
    return runs, ends, asked


def _response(run: _Run, message_id: str) -> _Response:
    if message_id not in run.responses:
        run.responses[message_id] = _Response(message_id)
    return run.responses[message_id]


def transcript_lines(
    events: Iterable[RecordedEvent], *, session_id: str, agent_session: str, cwd: str
) -> list[dict[str, Any]]:
    """The CLI transcript of every run in `events` (the session's log before the new run)."""
    runs, ends, asked = _runs(events)
    lines: list[dict[str, Any]] = []

    def add(
        kind: str,
        message: dict[str, Any],
        run: _Run,
        body: str = "message",
        line_id: str | None = None,
    ) -> None:
        line_id = line_id or str(uuid.uuid5(NAMESPACE, f"{session_id}:{run.seq}:{len(lines)}"))
        lines.append(
            {
                "type": kind,
                "uuid": line_id,
                "parentUuid": lines[-1]["uuid"] if lines else None,
                "sessionId": agent_session,
                "timestamp": run.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "cwd": cwd,
                "isSidechain": False,
                "userType": "external",
                body: message,
            }
        )

    for run in runs:
        if not run.continuation:
            prompt_id = prompt_uuid(run.run_id) if run.run_id else None
            add("user", {"role": "user", "content": run.prompt}, run, line_id=prompt_id)
        for response in run.responses.values():
            if not response.blocks:
                continue
            add(
                "assistant",
                {
                    "id": response.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": response.model or "claude-sonnet-4-5",
                    "content": response.blocks,
                    "stop_reason": "tool_use" if response.tool_ids else "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
                run,
            )
            if response.tool_ids:
                uses = {b["id"]: b for b in response.blocks if b["type"] == "tool_use"}
                deferred = [t for t in response.tool_ids if t in asked and t not in ends]
                results = [
                    tool_result_block(t, uses[t]["name"], ends.get(t))
                    for t in response.tool_ids
                    if t not in deferred
                ]
                if results:
                    add("user", {"role": "user", "content": results}, run)
                for t in deferred:
                    attachment = {
                        "type": "hook_deferred_tool",
                        "toolUseID": t,
                        "toolName": uses[t]["name"],
                        "toolInput": uses[t]["input"],
                    }
                    add("attachment", attachment, run, body="attachment")
        if run.cancelled:
            add("user", {"role": "user", "content": CANCELLED_MARKER}, run)
    return lines
