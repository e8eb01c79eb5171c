"""Translate claude-agent-sdk messages into agentlog events: the edge where SDK types stop.

One `SdkTranslator` per run. It is stateful because the CLI's frames are not one-to-one with
our events:

- an API response ("step") arrives as several `assistant` frames sharing one `message.id`, one
  content block per frame, surrounded (with partial messages on) by `stream_event` frames;
- a tool call starts in an `assistant` frame and ends in a later `user` frame, and the same end
  may also be observed by a PostToolUse hook: each call's terminal event is recorded once.

Choices the log's readers rely on:

- Steps. `StepStarted` is emitted the first time a message id is seen (a `message_start` stream
  event or the first `assistant` frame). `StepFinished` is emitted at `message_stop`; without
  partial messages, when the next message id starts, at the result, or on `finish()`. Steps are
  tracked per `parent_tool_use_id`, so parallel sub-agents do not close each other's steps.
  A step that finishes with `stop_reason=None` and deltas but no `TextCompleted` was cut off
  mid-stream (the CLI marks it `abandoned_blocks`, which the SDK does not expose).
- Block indexes. `*Delta` events carry the API's block index; `*Completed` events count the
  blocks of their message in arrival order, which is the same index because the CLI writes
  every block of a message as its own frame, in order.
- One end per tool call, whoever reports it. A call can end through the transcript (the `user`
  frame's tool_result), a PostToolUse / PostToolUseFailure hook, a PreToolUse policy denial, or
  the runner's safety net. Every one of them goes through `tool_call_ended`, which records
  `ToolCallStarted` first when the call was not seen starting yet (hooks run concurrently with
  the message stream and can overtake the `assistant` frame that carries the tool_use) and the
  terminal event at most once. It never awaits, so on one event loop the first caller wins and
  the log's order is the order of these calls.
- Hook output. A PostToolUse hook claims the call only when its `tool_response` is what the
  model sees (a string or a list of content blocks: MCP tools). A built-in tool's response is a
  structured object (Bash: stdout/stderr); the transcript's tool_result, which the model saw,
  records those, with the object as `structured_output`.
- Tool output. `ToolResultBlock.content` is a string, a list of content blocks, or None.
  `ToolCallSucceeded.output` is the string as is; a list made only of text blocks is joined with
  newlines into one string (what MCP tools usually return); any other list (images, resources)
  is kept as the JSON list of blocks so nothing is lost; None stays None. `ToolCallFailed` and
  `ToolCallDenied` carry text: text blocks joined with newlines, other blocks as compact JSON.
- Denials. The SDK's parsed `UserMessage` drops the frame's `tool_result_meta`
  (`non_execution_kind: "permission-rule"`), so a PreToolUse denial is recognised by its text,
  `"PreToolUse:<Tool> hook error: <reason>"` (also in `tool_use_result`, prefixed "Error: ").
  A `can_use_tool` denial is not recognisable from the transcript: the runner's callback knows
  it, so it should record `ToolCallDenied` itself after `mark_resolved(tool_use_id)` returns True.
- Results. `RunFinished` keeps the result frame whole (`is_error`, `subtype`, `terminal_reason`,
  `errors`, `api_error_status`, `permission_denials`); whether the turn counts as cancelled is the
  runner's decision, made from `outcome`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ConversationResetMessage,
    RateLimitEvent,
    ResultMessage,
    ServerToolResultBlock,
    ServerToolUseBlock,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from agentlog.domain.events import (
    AgentErrorReported,
    AgentInitialized,
    AgentStatusReported,
    Event,
    ReasoningCompleted,
    ReasoningDelta,
    RunFinished,
    StepFinished,
    StepStarted,
    TextCompleted,
    TextDelta,
    ToolApprovalRequested,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
)
from agentlog.infra.agent.offline.scripted_model import SCRIPTED_NAME

# System frames that are dropped rather than logged as `agent_status`:
# - thinking_tokens: sent between every pair of thinking deltas with only a running token
#   estimate; the deltas themselves (ReasoningDelta) already show progress.
SKIPPED_SYSTEM_SUBTYPES = frozenset({"thinking_tokens"})

# Terminal reasons that mean the turn was interrupted (ClaudeSDKClient.interrupt()).
CANCELLED_TERMINAL_REASONS = frozenset({"aborted_tools", "aborted_streaming"})

_DENIAL = re.compile(r"\A(?:Error: )?PreToolUse:.+? hook error: (?P<reason>.*)\Z", re.DOTALL)
# The synthetic assistant frame's `api_error_status` is not exposed by the SDK; its text is
# "API Error: 529 Overloaded. ..." when the status is known.
_API_ERROR_STATUS = re.compile(r"\AAPI Error: (?P<status>\d{3})\b")


@dataclass(frozen=True)
class TurnOutcome:
    """How the CLI said the turn ended: what the runner needs beyond `RunFinished`."""

    subtype: str
    is_error: bool
    terminal_reason: str | None = None
    errors: tuple[str, ...] = ()
    api_error_status: int | None = None
    permission_denials: tuple[Any, ...] = ()
    result: str | None = None

    @property
    def cancelled(self) -> bool:
        """The turn was interrupted (the CLI still reports it as an error result)."""
        return self.terminal_reason in CANCELLED_TERMINAL_REASONS

    @property
    def error_text(self) -> str:
        """The most informative description of a failed turn, for `RunFailed.error`."""
        if self.errors:
            return "; ".join(self.errors)
        if self.result and self.result.strip():
            return self.result.strip()
        if self.subtype != "success":
            return self.subtype
        if self.api_error_status is not None:
            return f"API error (HTTP {self.api_error_status})"
        return "unknown error"


@dataclass
class _Step:
    message_id: str
    parent: str | None = None  # the tool call (Agent/Task) whose subagent this step is
    streamed: bool = False
    stop_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _StreamBlock:
    kind: str
    tool_call_id: str = ""
    tool_name: str = ""


class SdkTranslator:
    """Turns the SDK's messages for one run into agentlog events, all with `run_id`."""

    def __init__(self, run_id: str, *, scripted: bool = False) -> None:
        self.run_id = run_id
        # The scripted model costs nothing and is named as itself: the CLI is told a real
        # model's name (its behaviour depends on knowing the model) and prices the tokens
        # from its own table, so those figures are made up there; recorded as 0.
        self.scripted = scripted
        self.outcome: TurnOutcome | None = None
        # Open step per parent_tool_use_id (None = the main thread); dicts keep insertion order.
        self._open_steps: dict[str | None, _Step] = {}
        self._finished_steps: set[str] = set()
        self._next_block_index: dict[str, int] = {}
        # Stream blocks of the open streamed message, per parent: index -> kind / tool.
        self._stream_blocks: dict[str | None, dict[int, _StreamBlock]] = {}
        self._started_tools: dict[str, None] = {}
        self._resolved_tools: set[str] = set()
        # Calls deferred for an approval: they wait for the next turn, not for this one.
        self._parked_tools: set[str] = set()
        self._anonymous_messages = 0

    # -- public API ------------------------------------------------------------------------

    def translate(self, message: object) -> list[Event]:
        """The events one SDK message means; unknown message types give none."""
        if isinstance(message, StreamEvent):
            return self._on_stream_event(message)
        if isinstance(message, AssistantMessage):
            return self._on_assistant(message)
        if isinstance(message, UserMessage):
            return self._on_user(message)
        if isinstance(message, ResultMessage):
            return self._on_result(message)
        if isinstance(message, SystemMessage):  # also Task*, HookEvent, MirrorError messages
            return self._on_system(message)
        if isinstance(message, RateLimitEvent):
            info = message.rate_limit_info
            return [self._status("rate_limit", dict(info.raw) or {"status": info.status})]
        if isinstance(message, ConversationResetMessage):
            data = {"new_conversation_id": message.new_conversation_id}
            return [self._status("conversation_reset", data)]
        return []

    def finish(self) -> list[Event]:
        """Close every open step (the stream ended without `message_stop` or a result)."""
        events: list[Event] = []
        for parent in list(self._open_steps):
            events.extend(self._finish_step(parent))
        return events

    def pending_tool_calls(self) -> list[str]:
        """Ids of tool calls that started and have no terminal event yet, in start order."""
        return [
            tid
            for tid in self._started_tools
            if tid not in self._resolved_tools and tid not in self._parked_tools
        ]

    def park(self, tool_call_id: str) -> None:
        """The call was deferred for an approval: no safety net of this run may end it."""
        self._parked_tools.add(tool_call_id)

    def adopt(self, tool_call_id: str) -> None:
        """A call an earlier run started (and deferred): this run reports its end."""
        self._started_tools.setdefault(tool_call_id, None)

    def approval_requested(
        self, tool_call_id: str, approval_id: str, *, tool_name: str, tool_input: Any, reason: str
    ) -> list[Event]:
        """The call waits for a person: its start first when it was not seen, then the request."""
        events = self._start_unless_seen(tool_call_id, tool_name=tool_name, tool_input=tool_input)
        events.append(
            ToolApprovalRequested(
                run_id=self.run_id,
                approval_id=approval_id,
                tool_call_id=tool_call_id,
                tool_name=tool_name,
                input=tool_input,
                reason=reason,
            )
        )
        return events

    def mark_resolved(self, tool_call_id: str) -> bool:
        """Claim the right to record `tool_call_id`'s terminal event.

        True the first time (the caller records the event), False afterwards. Every path that
        ends a tool call (this translator, a PostToolUse hook, a safety net) goes through here;
        there is no await in it, so concurrent hooks on one event loop cannot both win.
        """
        if tool_call_id in self._resolved_tools:
            return False
        self._resolved_tools.add(tool_call_id)
        return True

    def is_resolved(self, tool_call_id: str) -> bool:
        return tool_call_id in self._resolved_tools

    def tool_call_ended(
        self,
        terminal: ToolCallSucceeded | ToolCallFailed | ToolCallDenied,
        *,
        tool_name: str | None = None,
        tool_input: Any = None,
    ) -> list[Event]:
        """The events that record `terminal`: none if the call already ended, else its
        `ToolCallStarted` first when it was not seen starting (from `tool_name`/`tool_input`),
        then `terminal`. The one door every reporter of a tool call's end goes through."""
        tool_call_id = terminal.tool_call_id
        if not self.mark_resolved(tool_call_id):
            return []
        events = self._start_unless_seen(
            tool_call_id, tool_name=tool_name or "unknown", tool_input=tool_input
        )
        events.append(terminal)
        return events

    def _start_unless_seen(
        self,
        tool_call_id: str,
        *,
        tool_name: str,
        tool_input: Any,
        message_id: str | None = None,
        parent: str | None = None,
    ) -> list[Event]:
        """The call's `ToolCallStarted` the first time the call is seen, else nothing: the
        assistant frame, a hook and an approval request may each be first to report a call."""
        if tool_call_id in self._started_tools:
            return []
        self._started_tools[tool_call_id] = None
        return [
            ToolCallStarted(
                run_id=self.run_id,
                tool_call_id=tool_call_id,
                tool_name=tool_name,
                input=tool_input,
                message_id=message_id,
                parent_tool_call_id=parent,
            )
        ]

    def post_tool_use(self, hook_input: Mapping[str, Any]) -> list[Event]:
        """A PostToolUse hook's report (see "Hook output" in the module docstring)."""
        tool_call_id = hook_input.get("tool_use_id")
        response = hook_input.get("tool_response")
        if not isinstance(tool_call_id, str) or not _model_visible(response):
            return []
        return self.tool_call_ended(
            ToolCallSucceeded(
                run_id=self.run_id,
                tool_call_id=tool_call_id,
                output=tool_output(response),
                source="hook",
            ),
            tool_name=_str_or_none(hook_input.get("tool_name")),
            tool_input=hook_input.get("tool_input"),
        )

    def post_tool_use_failure(self, hook_input: Mapping[str, Any]) -> list[Event]:
        """A PostToolUseFailure hook's report: the error text is what the model is told."""
        tool_call_id = hook_input.get("tool_use_id")
        if not isinstance(tool_call_id, str):
            return []
        error = hook_input.get("error")
        return self.tool_call_ended(
            ToolCallFailed(
                run_id=self.run_id,
                tool_call_id=tool_call_id,
                error_text=error if isinstance(error, str) else json.dumps(error),
                source="hook",
                interrupted=hook_input.get("is_interrupt") is True,
            ),
            tool_name=_str_or_none(hook_input.get("tool_name")),
            tool_input=hook_input.get("tool_input"),
        )

    def denied(
        self, tool_call_id: str, reason: str, *, tool_name: str, tool_input: Any
    ) -> list[Event]:
        """A policy (PreToolUse hook or permission callback) refused the call."""
        return self.tool_call_ended(
            ToolCallDenied(run_id=self.run_id, tool_call_id=tool_call_id, reason=reason),
            tool_name=tool_name,
            tool_input=tool_input,
        )

    def interrupt_pending(self, error_text: str, *, source: str = "runner") -> list[Event]:
        """The safety net: every started call without an end fails as interrupted."""
        events: list[Event] = []
        for tool_call_id in self.pending_tool_calls():
            events += self.tool_call_ended(
                ToolCallFailed(
                    run_id=self.run_id,
                    tool_call_id=tool_call_id,
                    error_text=error_text,
                    source=source,
                    interrupted=True,
                )
            )
        return events

    # -- stream events (partial messages) --------------------------------------------------

    def _on_stream_event(self, message: StreamEvent) -> list[Event]:
        event = message.event
        kind = event.get("type")
        parent = message.parent_tool_use_id
        if kind == "message_start":
            api_message = event.get("message") or {}
            message_id = api_message.get("id")
            if not isinstance(message_id, str):
                return []
            self._stream_blocks[parent] = {}
            events = self._start_step(parent, message_id, api_message.get("model"))
            step = self._open_steps.get(parent)
            if step is not None and step.message_id == message_id:
                step.streamed = True
                step.usage = _without_nulls(api_message.get("usage"))
            return events

        step = self._open_steps.get(parent)
        if step is None:
            return []
        if kind == "content_block_start":
            return self._on_block_start(parent, step, event)
        if kind == "content_block_delta":
            return self._on_block_delta(parent, step, event)
        if kind == "message_delta":
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                step.stop_reason = delta["stop_reason"]
            step.usage.update(_without_nulls(event.get("usage")))
            return []
        if kind == "message_stop":
            return self._finish_step(parent)
        return []  # content_block_stop, ping, error: nothing to record

    def _on_block_start(
        self, parent: str | None, step: _Step, event: dict[str, Any]
    ) -> list[Event]:
        index = event.get("index")
        block = event.get("content_block") or {}
        if not isinstance(index, int):
            return []
        kind = str(block.get("type"))
        if kind in ("tool_use", "server_tool_use"):
            stream_block = _StreamBlock(kind, str(block.get("id", "")), str(block.get("name", "")))
        else:
            stream_block = _StreamBlock(kind)
        self._stream_blocks.setdefault(parent, {})[index] = stream_block
        # Blocks normally start empty; a non-empty start is the first piece of the stream.
        if kind == "text" and block.get("text"):
            return [self._delta(TextDelta, step, index, block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [self._delta(ReasoningDelta, step, index, block["thinking"])]
        return []

    def _on_block_delta(
        self, parent: str | None, step: _Step, event: dict[str, Any]
    ) -> list[Event]:
        index = event.get("index")
        delta = event.get("delta") or {}
        if not isinstance(index, int):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._delta(TextDelta, step, index, delta["text"])]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._delta(ReasoningDelta, step, index, delta["thinking"])]
        if kind == "input_json_delta" and delta.get("partial_json"):
            block = self._stream_blocks.get(parent, {}).get(index)
            if block is None or not block.tool_call_id:
                return []
            return [
                ToolInputDelta(
                    run_id=self.run_id,
                    message_id=step.message_id,
                    block_index=index,
                    tool_call_id=block.tool_call_id,
                    tool_name=block.tool_name,
                    delta=delta["partial_json"],
                    parent_tool_call_id=step.parent,
                )
            ]
        return []  # signature_delta: the signature arrives whole with ReasoningCompleted

    def _delta(
        self, kind: type[TextDelta | ReasoningDelta], step: _Step, index: int, text: str
    ) -> TextDelta | ReasoningDelta:
        """A piece of block `index` of the step's message: text or reasoning, as `kind`."""
        return kind(
            run_id=self.run_id,
            message_id=step.message_id,
            block_index=index,
            delta=text,
            parent_tool_call_id=step.parent,
        )

    # -- steps -----------------------------------------------------------------------------

    def _start_step(self, parent: str | None, message_id: str, model: object) -> list[Event]:
        if message_id in self._finished_steps:
            return []  # a late frame of a finished step: never reopen it
        open_step = self._open_steps.get(parent)
        if open_step is not None and open_step.message_id == message_id:
            return []
        events: list[Event] = []
        if open_step is not None:
            events.extend(self._finish_step(parent))
        self._open_steps[parent] = _Step(message_id, parent)
        events.append(
            StepStarted(
                run_id=self.run_id,
                message_id=message_id,
                model=model if isinstance(model, str) else None,
                parent_tool_call_id=parent,
            )
        )
        return events

    def _finish_step(self, parent: str | None) -> list[Event]:
        step = self._open_steps.pop(parent, None)
        if step is None:
            return []
        self._finished_steps.add(step.message_id)
        self._stream_blocks.pop(parent, None)
        return [
            StepFinished(
                run_id=self.run_id,
                message_id=step.message_id,
                stop_reason=step.stop_reason,
                usage=step.usage,
            )
        ]

    # -- assistant frames ------------------------------------------------------------------

    def _on_assistant(self, message: AssistantMessage) -> list[Event]:
        if message.error is not None:
            return [self._agent_error(message)]
        parent = message.parent_tool_use_id
        message_id = message.message_id or message.uuid or self._anonymous_message_id()
        events = self._start_step(parent, message_id, message.model)
        step = self._open_steps.get(parent)
        if step is not None and step.message_id == message_id:
            if message.stop_reason:
                step.stop_reason = message.stop_reason
            if not step.streamed and message.usage:
                step.usage = _without_nulls(message.usage)

        for block in message.content:
            index = self._next_block_index.get(message_id, 0)
            self._next_block_index[message_id] = index + 1
            if isinstance(block, TextBlock):
                events.append(
                    TextCompleted(
                        run_id=self.run_id,
                        message_id=message_id,
                        block_index=index,
                        text=block.text,
                        parent_tool_call_id=parent,
                    )
                )
            elif isinstance(block, ThinkingBlock):
                events.append(
                    ReasoningCompleted(
                        run_id=self.run_id,
                        message_id=message_id,
                        block_index=index,
                        text=block.thinking,
                        signature=block.signature,
                        parent_tool_call_id=parent,
                    )
                )
            elif isinstance(block, (ToolUseBlock, ServerToolUseBlock)):
                events += self._start_unless_seen(
                    block.id,
                    tool_name=block.name,
                    tool_input=block.input,
                    message_id=message_id,
                    parent=parent,
                )
            elif isinstance(block, ServerToolResultBlock):
                # A server-side tool (advisor, web_search) ran inside the API call.
                if self.mark_resolved(block.tool_use_id):
                    events.append(
                        ToolCallSucceeded(
                            run_id=self.run_id, tool_call_id=block.tool_use_id, output=block.content
                        )
                    )
            elif isinstance(block, ToolResultBlock):
                events.extend(self._on_tool_result(block, None))
        return events

    def _anonymous_message_id(self) -> str:
        self._anonymous_messages += 1
        return f"{self.run_id}:message:{self._anonymous_messages}"

    def _agent_error(self, message: AssistantMessage) -> AgentErrorReported:
        text = "\n".join(b.text for b in message.content if isinstance(b, TextBlock))
        match = _API_ERROR_STATUS.match(text)
        return AgentErrorReported(
            run_id=self.run_id,
            kind=str(message.error),
            message=text or str(message.error),
            status=int(match["status"]) if match else None,
        )

    # -- user frames (tool results) --------------------------------------------------------

    def _on_user(self, message: UserMessage) -> list[Event]:
        if isinstance(message.content, str):
            return []  # prompts and "[Request interrupted by user ...]": RunStarted has the prompt
        events: list[Event] = []
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                events.extend(self._on_tool_result(block, message.tool_use_result))
        return events

    def _on_tool_result(self, block: ToolResultBlock, tool_use_result: object) -> list[Event]:
        tool_call_id = block.tool_use_id
        if self.is_resolved(tool_call_id):
            return []
        terminal: ToolCallSucceeded | ToolCallFailed | ToolCallDenied
        if not block.is_error:
            terminal = ToolCallSucceeded(
                run_id=self.run_id,
                tool_call_id=tool_call_id,
                output=tool_output(block.content),
                structured_output=tool_use_result if isinstance(tool_use_result, dict) else None,
            )
            return self.tool_call_ended(terminal)
        text = tool_text(block.content)
        reason = denial_reason(text)
        if reason is None and isinstance(tool_use_result, str):
            reason = denial_reason(tool_use_result)
        if reason is not None:
            terminal = ToolCallDenied(run_id=self.run_id, tool_call_id=tool_call_id, reason=reason)
        else:
            terminal = ToolCallFailed(
                run_id=self.run_id, tool_call_id=tool_call_id, error_text=text
            )
        return self.tool_call_ended(terminal)

    # -- system frames and the result ------------------------------------------------------

    def _on_system(self, message: SystemMessage) -> list[Event]:
        data = message.data
        if message.subtype == "init":
            tools = data.get("tools")
            return [
                AgentInitialized(
                    run_id=self.run_id,
                    agent_session_id=_str_or_none(data.get("session_id")),
                    # The scripted model answers whatever model the CLI is told to use.
                    model=SCRIPTED_NAME if self.scripted else _str_or_none(data.get("model")),
                    tools=[str(t) for t in tools] if isinstance(tools, list) else [],
                    cwd=_str_or_none(data.get("cwd")),
                )
            ]
        if message.subtype in SKIPPED_SYSTEM_SUBTYPES:
            return []
        return [self._status(message.subtype, dict(data))]

    def _status(self, subtype: str, data: dict[str, Any]) -> AgentStatusReported:
        return AgentStatusReported(run_id=self.run_id, subtype=subtype, data=data)

    def _on_result(self, message: ResultMessage) -> list[Event]:
        events = self.finish()
        self.outcome = TurnOutcome(
            subtype=message.subtype,
            is_error=message.is_error,
            terminal_reason=message.terminal_reason,
            errors=tuple(e for e in (message.errors or []) if isinstance(e, str)),
            api_error_status=message.api_error_status,
            permission_denials=tuple(message.permission_denials or ()),
            result=message.result,
        )
        events.append(
            RunFinished(
                run_id=self.run_id,
                result=message.result,
                stop_reason=message.stop_reason,
                num_turns=message.num_turns,
                duration_ms=message.duration_ms,
                duration_api_ms=message.duration_api_ms,
                total_cost_usd=0.0 if self.scripted else message.total_cost_usd,
                usage=message.usage or {},
                model_usage=_model_usage(message.model_usage, scripted=self.scripted),
                agent_session_id=message.session_id,
                is_error=message.is_error,
                subtype=message.subtype,
                terminal_reason=message.terminal_reason,
                errors=list(self.outcome.errors),
                api_error_status=message.api_error_status,
                permission_denials=[
                    d for d in self.outcome.permission_denials if isinstance(d, dict)
                ],
                deferred_tool_call_id=(
                    message.deferred_tool_use.id if message.deferred_tool_use else None
                ),
            )
        )
        return events


# -- content normalisation -----------------------------------------------------------------


def tool_output(content: str | list[dict[str, Any]] | None) -> Any:
    """A tool result's content as the log keeps it (see the module docstring)."""
    if isinstance(content, list) and all(_is_text_block(b) for b in content):
        return "\n".join(str(b["text"]) for b in content)
    return content


def tool_text(content: str | list[dict[str, Any]] | None) -> str:
    """A tool result's content as one string: text blocks joined, other blocks as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [
        str(b["text"]) if _is_text_block(b) else json.dumps(b, separators=(",", ":"))
        for b in content
    ]
    return "\n".join(parts)


def denial_reason(text: str) -> str | None:
    """The policy's reason if `text` is the CLI's PreToolUse denial, else None."""
    match = _DENIAL.match(text)
    return match["reason"] if match else None


def _model_visible(response: object) -> bool:
    """A hook's tool_response is what the model sees: text, or a list of content blocks."""
    if isinstance(response, str):
        return True
    return isinstance(response, list) and all(
        isinstance(b, dict) and isinstance(b.get("type"), str) for b in response
    )


def _is_text_block(block: object) -> bool:
    return isinstance(block, dict) and block.get("type") == "text" and "text" in block


def _model_usage(models: object, *, scripted: bool) -> dict[str, Any]:
    if not isinstance(models, dict):
        return {}
    kept: dict[str, Any] = {}
    for name, figures in models.items():
        if isinstance(figures, dict):
            kept[str(name)] = dict(figures)
    if scripted and kept:
        # Every model the CLI was told to use was the scripted one: its tokens, summed under
        # its own name, and no price.
        merged: dict[str, Any] = {}
        for figures in kept.values():
            for key, value in figures.items():
                counted = key.endswith(("Tokens", "Requests")) and isinstance(value, int)
                merged[key] = merged.get(key, 0) + value if counted else merged.get(key, value)
        kept = {SCRIPTED_NAME: {**merged, "costUSD": 0.0}}
    return kept


def _without_nulls(usage: object) -> dict[str, Any]:
    if not isinstance(usage, dict):
        return {}
    return {k: v for k, v in usage.items() if v is not None}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
