"""A session's conversation as Vercel AI SDK `UIMessage`s: a pure fold over its log.

`fold(events)` / `apply(state, recorded)` build a `ConversationState` (msgspec Structs, JSON
serialisable, stored per session with its checkpoint `last_seq`); `to_ui_messages(state,
run_active=...)` reads it as `[{"id", "role", "parts", "metadata"?}]`.

Mapping rules (R is the event's run id; an event with no run id belongs to the open run):
- `session_created`, `step_finished`, `heartbeat`, `agent_status`: nothing visible.
- `session_deleted` (the tombstone): no messages.
- `conversation_rewound(to_seq=T)` (regenerate, edit, `from_message_id`): only the current
  branch is shown (`agentlog.domain.rules.branches.current_branch`): every message created after T
  (each
  message keeps the seq of the event that created it: its run's `run_started`, or the
  `custom`) is dropped, and a run that a dropped run's start had closed as "abandoned" is open
  again, as it was (the branch no longer holds that start). The runner only rewinds to just
  before a `run_started` and after every earlier run ended, so no event after T touches a
  kept message, and this equals folding the current branch alone (property-tested).
- `run_started(R, prompt, user_message_id?)`: a user message `{id: user_message_id (the
  client's own id for it) or "R:user", parts: [text prompt]}`, then the run's
  one assistant message `{id: R, parts: []}` with metadata `{status: "running", agent,
  startedAt}`. A second `run_started` for a known R changes nothing. If another run was still
  open (its process died without a terminal event), that run is closed as "abandoned".
- `agent_initialized`: sets the run's metadata `model`.
- `step_started`: appends `{"type": "step-start"}`.
- `text_delta` / `reasoning_delta`: append to the part for (message_id, block_index), creating
  it with state "streaming"; a delta for a part already "done" is ignored.
  `text_completed` / `reasoning_completed`: set that part's whole text, state "done" (creating
  it when no delta came).
- Tool parts are typed `tool-<name>`, except MCP tools (names starting with `mcp__`), which
  are `dynamic-tool` with `toolName`: MCP tools are discovered at run time, which is what the
  AI SDK's dynamic tool parts are for; built-in tools are a fixed, typeable set.
- `tool_input_delta`: a tool part in "input-streaming"; the raw JSON text is kept in the state
  (`ToolPart.input_text`) but the UI part has no `input` (undefined) while it streams, since
  the AI SDK expects a partial *object* there, not text.
  `tool_call_started`: the part becomes (or is created) "input-available" with `input`; a
  second start for the same id changes nothing.
- `tool_call_succeeded` -> "output-available" + `output`; `tool_call_failed` -> "output-error"
  + `errorText`; `tool_call_denied` -> "output-denied" + `approval: {id: toolCallId, approved:
  false, reason}` (the AI SDK's shape for a refused call). Only a waiting part (input-streaming
  or input-available) moves: a terminal event for an unknown id, or a second one, changes
  nothing. A terminal event finds its call in any run, so a late safety-net result lands.
- approvals: `tool_approval_requested` moves a waiting part to "approval-requested" with
  `approval: {id}`; `tool_approval_responded` moves it to "approval-responded" with `approval:
  {id, approved, reason?}`. The call's end then moves it on as above, keeping `approval`; a
  refusal (`tool_call_denied`) of an answered call is "output-denied" with the person's
  `approval`. These are the AI SDK 7 shapes `addToolApprovalResponse` and its stream build.
- `run_started` with `continues_run_id` (the turn that goes on after an approval) adds no
  message: its events land in the continued run's assistant message, whose metadata status
  goes back to "running", as the AI SDK client continues that same message. A run that ends
  deferring a call (`run_finished` with `deferred_tool_call_id`) is "awaiting_approval".
- Subagents (the `Agent`/Task tool): events with `parent_tool_call_id` P are the subagent's
  that call P started. Their text, reasoning and tool parts go in the run's message like any
  other, each carrying P as AI SDK provider metadata, `providerMetadata` on text and reasoning
  parts and `callProviderMetadata` on tool parts: `{"agentlog": {"parentToolCallId": P}}`
  (the shape the AI SDK client itself builds from the stream's chunks). A subagent's steps add
  no `step-start`: they are not steps of the turn. A UI nests them under P's part; the
  subagent's final report is P's output. A cancelled or crashed subagent is resolved like any
  tool: P and the subagent's own waiting calls end as interrupted (the safety net, hydration).
- `agent_error`: a `{"type": "data-agent-error", "data": {kind, message, status?}}` part where
  it happened. Not a text part: the AI SDK would send text back to the model as if the
  assistant had said it, while data parts are for the UI only.
- `custom(name, data)`: a `{"type": "data-<name>", "data": data}` part on the run named by its
  run id, else on the open run; with neither, a standalone assistant message `custom:<seq>`.
  `agent_error` outside any run is shown the same way.
- `run_finished` / `run_failed` / `run_cancelled` / `run_abandoned`: the run's metadata
  `status` becomes "finished" / "failed" / "cancelled" / "abandoned" (a finished run with
  `is_error` is "failed"), with `endedAt`, `usage`, `totalCostUsd`, `durationMs`, `numTurns`,
  `stopReason`, `error` when known, and `cost` (tokens summed over the models the run used,
  subagents included, and dollars; `scripted: true` and 0 for the scripted model, see
  projections/usage.py). Only the first terminal event of a run counts.
- Any other event that names no known run (and arrives with no run open) changes only
  `last_seq`.

Hydration (`to_ui_messages` only; the state is never touched): a run that is not the open run,
or the open run when `run_active` is False, cannot deliver anything more. Its tool parts still
waiting are shown as "output-error" with `errorText` INTERRUPTED, and its "streaming" text and
reasoning parts as "done". A part waiting on an approval ("approval-requested", or
"approval-responded" until the next turn acts on it) is not dangling: it is shown as it is,
whether or not any process is alive. output-error, not an empty output-available: it is what
happened, the model is told the same by the safety net, and the AI SDK renders it as finished.

Cost: `apply` never mutates its input. It thaws only what an event touches (the message list
by reference, one message's parts) into private builders and freezes them into a new state,
so one event costs O(messages + parts of one message) pointer copies, and `fold` pays that
once per call, not per event: feed it batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, cast

import msgspec
from agentlog.domain.events import (
    AgentErrorReported,
    AgentInitialized,
    ConversationRewound,
    CustomEventRecorded,
    ReasoningCompleted,
    ReasoningDelta,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionDeleted,
    StepStarted,
    TextCompleted,
    TextDelta,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
)
from agentlog.projections.usage import Usage, cost_metadata, run_usage
from msgspec.structs import replace

INTERRUPTED = "interrupted: the run ended before this tool returned"
WAITING = ("input-streaming", "input-available")
# A call that waits on a person, or on the turn that acts on their answer.
PARKED = ("approval-requested", "approval-responded")


# -- the stored state ------------------------------------------------------------------------


class TextPart(msgspec.Struct, frozen=True, kw_only=True, tag="text"):
    """Assistant text from one content block of one model message."""

    message_id: str
    block_index: int
    text: str = ""
    done: bool = False
    parent_tool_call_id: str | None = None  # a subagent's: the call that started it


class ReasoningPart(msgspec.Struct, frozen=True, kw_only=True, tag="reasoning"):
    """The model's thinking from one content block of one model message."""

    message_id: str
    block_index: int
    text: str = ""
    done: bool = False
    parent_tool_call_id: str | None = None


class StepStartPart(msgspec.Struct, frozen=True, kw_only=True, tag="step-start"):
    """One model response began."""

    message_id: str


class ToolPart(msgspec.Struct, frozen=True, kw_only=True, tag="tool"):
    """A tool call; `state` uses the AI SDK's names."""

    tool_call_id: str
    tool_name: str
    state: str
    input_text: str = ""
    input: Any = None
    output: Any = None
    parent_tool_call_id: str | None = None
    error_text: str | None = None
    # Set once an approval was asked for the call; `approved` / `approval_reason` once answered.
    approval_id: str | None = None
    approved: bool | None = None
    approval_reason: str | None = None


class DataPart(msgspec.Struct, frozen=True, kw_only=True, tag="data"):
    """A `data-<name>` part: custom events and agent errors."""

    name: str
    data: Any = None


Part = TextPart | ReasoningPart | StepStartPart | ToolPart | DataPart


class RunInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the assistant message's metadata says about its run."""

    status: str = "running"
    agent: str | None = None
    model: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    usage: dict[str, Any] | None = None
    total_cost_usd: float | None = None
    cost: Usage | None = None
    duration_ms: int | None = None
    num_turns: int | None = None
    stop_reason: str | None = None
    error: str | None = None
    # Runs that continued this one after an approval: their events land in this message.
    continued_by: tuple[str, ...] = ()
    # Set when a newer run's start closed this open run as abandoned: that start's seq and
    # the run as it was, so a rewind to before that start reopens it as it was.
    superseded_at: int | None = None
    superseded_from: RunInfo | None = None


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One UIMessage; `run` is set on a run's assistant message (whose id is the run id)."""

    id: str
    role: str
    parts: tuple[Part, ...] = ()
    run: RunInfo | None = None
    # The seq of the event that created the message (a run's `run_started`, a standalone
    # `custom`): a rewind to before it drops the message. 0 in states stored before rewinds
    # existed (the projector folds such a state afresh at its session's first rewind).
    seq: int = 0


class ConversationState(msgspec.Struct, frozen=True, kw_only=True):
    """A session's conversation after the events up to `last_seq`."""

    last_seq: int = 0
    messages: tuple[Message, ...] = ()
    open_run_id: str | None = None


EMPTY = ConversationState()


# -- the fold --------------------------------------------------------------------------------


def apply(state: ConversationState, recorded: RecordedEvent) -> ConversationState:
    """The state after one more event; an event at or before `last_seq` changes nothing."""
    if recorded.seq <= state.last_seq:
        return state
    return fold((recorded,), state)


def fold(events: Iterable[RecordedEvent], state: ConversationState = EMPTY) -> ConversationState:
    """Apply events of one session in seq order; events already folded are skipped."""
    builder: _Builder | None = None
    last_seq = state.last_seq
    for recorded in events:
        if recorded.seq <= last_seq:
            continue
        last_seq = recorded.seq
        handler = _HANDLERS.get(type(recorded.event))
        if handler is None:
            continue  # nothing visible: only the checkpoint moves
        if builder is None:
            builder = _Builder(state)
        handler(builder, recorded)
    if builder is None:
        return state if last_seq == state.last_seq else replace(state, last_seq=last_seq)
    return builder.freeze(last_seq)


class _Streamed:
    """A text, reasoning or tool-input part being streamed: deltas are joined once, at freeze."""

    __slots__ = ("chunks", "part")

    def __init__(self, part: TextPart | ReasoningPart | ToolPart, chunks: list[str]) -> None:
        self.part = part
        self.chunks = chunks

    def freeze(self) -> Part:
        joined = "".join(self.chunks)
        if isinstance(self.part, ToolPart):
            return replace(self.part, input_text=joined)
        return replace(self.part, text=joined)


_PartKey = tuple[str, str, int]


def _key(part: Part | _Streamed) -> _PartKey | None:
    if type(part) is _Streamed:
        part = part.part
    if type(part) is TextPart:
        return ("text", part.message_id, part.block_index)
    if type(part) is ReasoningPart:
        return ("reasoning", part.message_id, part.block_index)
    if type(part) is ToolPart:
        return _tool_key(part.tool_call_id)
    return None


def _tool_key(tool_call_id: str) -> _PartKey:
    return ("tool", tool_call_id, 0)


class _MessageBuilder:
    """A message thawed by one fold call, owning its parts list.

    Finding a keyed part looks at the newest part first (deltas almost always extend it) and
    only then builds an index, so a one-event `apply` of a delta never pays for one.
    """

    __slots__ = ("id", "index", "parts", "role", "run", "seq", "streamed")

    def __init__(self, message: Message) -> None:
        self.id = message.id
        self.role = message.role
        self.run = message.run
        self.seq = message.seq
        self.parts: list[Part | _Streamed] = list(message.parts)
        self.index: dict[_PartKey, int] | None = None
        self.streamed: list[int] = []  # positions that may hold a _Streamed

    def find(self, key: _PartKey) -> int | None:
        parts = self.parts
        if self.index is None:
            nearest = max(len(parts) - _SCAN, 0)
            for position in range(len(parts) - 1, nearest - 1, -1):
                if _key(parts[position]) == key:
                    return position
            if nearest == 0:
                return None
            self.index = {}
            for position, part in enumerate(parts):
                part_key = _key(part)
                if part_key is not None:
                    self.index[part_key] = position
        return self.index.get(key)

    def add(self, key: _PartKey, part: Part | _Streamed) -> None:
        if self.index is not None:
            self.index[key] = len(self.parts)
        if type(part) is _Streamed:
            self.streamed.append(len(self.parts))
        self.parts.append(part)

    def extend(self, position: int, delta: str) -> None:
        """One more delta for the part at `position`, while it streams (text or reasoning not
        done, a tool input not complete); a part past streaming keeps what it has."""
        current = self.parts[position]
        if type(current) is _Streamed:
            current.chunks.append(delta)
        elif type(current) is ToolPart:
            if current.state == "input-streaming":
                self._stream(position, _Streamed(current, [current.input_text, delta]))
        elif isinstance(current, TextPart | ReasoningPart) and not current.done:
            self._stream(position, _Streamed(current, [current.text, delta]))

    def _stream(self, position: int, streamed: _Streamed) -> None:
        self.parts[position] = streamed
        self.streamed.append(position)

    def freeze(self) -> Message:
        parts = self.parts
        for position in self.streamed:
            part = parts[position]
            if type(part) is _Streamed:
                parts[position] = part.freeze()
        # Every _Streamed was just frozen, so the list holds Parts only.
        frozen = cast("tuple[Part, ...]", tuple(parts))
        return Message(id=self.id, role=self.role, parts=frozen, run=self.run, seq=self.seq)


_SCAN = 1


class _Builder:
    """The transient side of one fold call. It owns every list and builder it creates."""

    __slots__ = ("messages", "open_message", "open_run_id", "runs", "thawed")

    def __init__(self, state: ConversationState) -> None:
        self.messages: list[Message | _MessageBuilder] = list(state.messages)
        self.thawed: list[int] = []
        self.runs: dict[str, int] | None = None  # run id -> position, built on first need
        self.open_run_id = state.open_run_id
        self.open_message: _MessageBuilder | None = None  # thawed on first use

    def freeze(self, last_seq: int) -> ConversationState:
        messages = self.messages
        for position in self.thawed:
            message = messages[position]
            assert isinstance(message, _MessageBuilder)
            messages[position] = message.freeze()
        return ConversationState(
            last_seq=last_seq,
            # Every builder was just frozen, so the list holds Messages only.
            messages=cast("tuple[Message, ...]", tuple(messages)),
            open_run_id=self.open_run_id,
        )

    def thaw(self, position: int) -> _MessageBuilder:
        message = self.messages[position]
        if isinstance(message, _MessageBuilder):
            return message
        builder = _MessageBuilder(message)
        self.messages[position] = builder
        self.thawed.append(position)
        return builder

    def append(self, message: Message) -> _MessageBuilder:
        self.messages.append(message)
        return self.thaw(len(self.messages) - 1)

    def run_position(self, run_id: str) -> int | None:
        if self.runs is None:
            self.runs = {}
            for i, m in enumerate(self.messages):
                if m.run is not None:
                    self.runs[m.id] = i
                    for continuation in m.run.continued_by:
                        self.runs[continuation] = i
        return self.runs.get(run_id)

    def run_message(self, run_id: str | None) -> _MessageBuilder | None:
        """The assistant message of run `run_id`, or of the open run when it is None."""
        if run_id is None or run_id == self.open_run_id:
            if self.open_message is None and self.open_run_id is not None:
                # While a run is open its message is the last one: until it ends, everything
                # lands inside it. So finding it never needs a scan.
                position: int | None = len(self.messages) - 1
                if self.messages[-1].id != self.open_run_id:
                    position = self.run_position(self.open_run_id)
                self.open_message = None if position is None else self.thaw(position)
            return self.open_message
        position = self.run_position(run_id)
        return None if position is None else self.thaw(position)

    def tool_part(
        self, tool_call_id: str, run_id: str | None
    ) -> tuple[_MessageBuilder, int, ToolPart] | None:
        """The tool call's part (its streamed input joined), its message and its position
        there: looked up in its run's message, then in any, newest first. None: no such call.
        The caller writes the part back only when it moves it."""
        found = self._find_tool(tool_call_id, run_id)
        if found is None:
            return None
        message, position = found
        part = message.parts[position]
        if type(part) is _Streamed:
            part = part.freeze()
        assert isinstance(part, ToolPart)
        return message, position, part

    def _find_tool(
        self, tool_call_id: str, run_id: str | None
    ) -> tuple[_MessageBuilder, int] | None:
        key = _tool_key(tool_call_id)
        message = self.run_message(run_id)
        found = None if message is None else message.find(key)
        if message is not None and found is not None:
            return message, found
        for position in range(len(self.messages) - 1, -1, -1):
            candidate = self.messages[position]
            if isinstance(candidate, _MessageBuilder):
                found = candidate.find(key)
                if found is not None:
                    return candidate, found
            elif any(
                type(p) is ToolPart and p.tool_call_id == tool_call_id for p in candidate.parts
            ):
                thawed = self.thaw(position)
                found = thawed.find(key)
                assert found is not None
                return thawed, found
        return None

    def data_part(self, recorded: RecordedEvent, part: DataPart) -> None:
        run_id = recorded.event.run_id
        message = self.run_message(run_id)
        if message is None and run_id is not None:
            message = self.run_message(None)
        if message is None:
            standalone = Message(
                id=f"custom:{recorded.seq}", role="assistant", parts=(part,), seq=recorded.seq
            )
            self.messages.append(standalone)
        else:
            message.parts.append(part)


# -- one handler per visible event type ------------------------------------------------------


def user_message_id(event: RunStarted, run_id: str) -> str:
    """The id of the user message a run's prompt is: the client's own when it gave one."""
    return event.user_message_id or f"{run_id}:user"


def _run_started(b: _Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, RunStarted)
    run_id = event.run_id or f"run:{recorded.seq}"
    if b.run_position(run_id) is not None:
        return
    continued = event.continues_run_id
    position = b.run_position(continued) if continued is not None else None
    if position is not None and position == len(b.messages) - 1:
        message = b.thaw(position)
        assert message.run is not None
        message.run = replace(
            message.run,
            status="running",
            agent=event.agent,
            started_at=recorded.time,
            continued_by=(*message.run.continued_by, run_id),
        )
        b.open_message, b.open_run_id = message, run_id
        assert b.runs is not None
        b.runs[run_id] = position
        return
    previous = b.run_message(None)
    if previous is not None and previous.run is not None:
        previous.run = replace(
            previous.run,
            status="abandoned",
            ended_at=recorded.time,
            error=f"superseded by run {run_id} before it ended",
            superseded_at=recorded.seq,
            superseded_from=previous.run,
        )
    user_id = user_message_id(event, run_id)
    prompt = TextPart(message_id=user_id, block_index=0, text=event.prompt, done=True)
    b.messages.append(Message(id=user_id, role="user", parts=(prompt,), seq=recorded.seq))
    run = RunInfo(agent=event.agent, started_at=recorded.time)
    b.open_message = b.append(Message(id=run_id, role="assistant", run=run, seq=recorded.seq))
    b.open_run_id = run_id
    assert b.runs is not None
    b.runs[run_id] = len(b.messages) - 1


def _agent_initialized(b: _Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, AgentInitialized)
    message = b.run_message(event.run_id)
    if message is not None and message.run is not None and event.model is not None:
        message.run = replace(message.run, model=event.model)


def _step_started(b: _Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, StepStarted)
    if event.parent_tool_call_id is not None:
        return  # a subagent's step: its parts nest under its call, not in the turn's steps
    message = b.run_message(event.run_id)
    if message is not None:
        message.parts.append(StepStartPart(message_id=event.message_id))


def _text_delta(b: _Builder, recorded: RecordedEvent) -> None:
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
        message.add(key, _Streamed(part, [event.delta]))
    else:
        message.extend(position, event.delta)


def _text_completed(b: _Builder, recorded: RecordedEvent) -> None:
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
        first = current.part if type(current) is _Streamed else current
        if isinstance(first, TextPart | ReasoningPart) and first.parent_tool_call_id is not None:
            part = replace(part, parent_tool_call_id=first.parent_tool_call_id)  # as the client
        message.parts[position] = part


def _tool_input_delta(b: _Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, ToolInputDelta)
    message = b.run_message(event.run_id)
    if message is None:
        return
    key = _tool_key(event.tool_call_id)
    position = message.find(key)
    if position is None:
        part = ToolPart(
            tool_call_id=event.tool_call_id,
            tool_name=event.tool_name,
            state="input-streaming",
            parent_tool_call_id=event.parent_tool_call_id,
        )
        message.add(key, _Streamed(part, [event.delta]))
    else:
        message.extend(position, event.delta)


def _tool_call_started(b: _Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, ToolCallStarted)
    message = b.run_message(event.run_id)
    if message is None:
        return
    key = _tool_key(event.tool_call_id)
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
    if type(current) is _Streamed or (
        isinstance(current, ToolPart) and current.state == "input-streaming"
    ):
        first = current.part if type(current) is _Streamed else current
        if part.parent_tool_call_id is None and isinstance(first, ToolPart):
            part = replace(part, parent_tool_call_id=first.parent_tool_call_id)
        message.parts[position] = part


def _tool_call_ended(b: _Builder, recorded: RecordedEvent) -> None:
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


def _approval_requested(b: _Builder, recorded: RecordedEvent) -> None:
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


def _approval_responded(b: _Builder, recorded: RecordedEvent) -> None:
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


def _agent_error(b: _Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, AgentErrorReported)
    data: dict[str, Any] = {"kind": event.kind, "message": event.message}
    if event.status is not None:
        data["status"] = event.status
    b.data_part(recorded, DataPart(name="agent-error", data=data))


def _custom(b: _Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    assert isinstance(event, CustomEventRecorded)
    b.data_part(recorded, DataPart(name=event.name, data=event.data))


def _run_ended(b: _Builder, recorded: RecordedEvent) -> None:
    event = recorded.event
    message = b.run_message(event.run_id)
    if message is None or message.run is None or message.run.status != "running":
        return
    cost = run_usage(event, agent=message.run.agent)
    run = replace(message.run, ended_at=recorded.time, cost=cost)
    if isinstance(event, RunFinished):
        run = replace(
            run,
            status=(
                "failed"
                if event.is_error
                else "awaiting_approval"
                if event.deferred_tool_call_id
                else "finished"
            ),
            usage=event.usage or None,
            total_cost_usd=None if cost is None else cost.cost_usd,
            duration_ms=event.duration_ms,
            num_turns=event.num_turns,
            stop_reason=event.stop_reason,
            error=(event.result or event.stop_reason or "error") if event.is_error else None,
        )
    elif isinstance(event, RunFailed):
        run = replace(run, status="failed", error=event.error, stop_reason=event.terminal_reason)
    elif isinstance(event, RunCancelled):
        run = replace(run, status="cancelled", error=event.reason)
    elif isinstance(event, RunAbandoned):
        run = replace(run, status="abandoned", error=event.reason)
    if message.run.continued_by:
        # A continued message keeps what this run does not say: the AI SDK client merges
        # each run's metadata into the one message.
        run = _merged(message.run, run)
    message.run = run
    if message is b.open_message:
        b.open_message = None
        b.open_run_id = None


def _session_deleted(b: _Builder, recorded: RecordedEvent) -> None:
    # The tombstone: the conversation is gone.
    b.messages.clear()
    b.thawed.clear()
    b.runs = {}
    b.open_run_id = None
    b.open_message = None


def _rewound(b: _Builder, recorded: RecordedEvent) -> None:
    # The conversation goes back to `to_seq`: the messages created after it are off the
    # current branch. A run whose close came from a dropped run's start is open again, as it
    # was before that start (the branch no longer holds the start that closed it).
    event = recorded.event
    assert isinstance(event, ConversationRewound)
    to_seq = event.to_seq
    kept = 0
    while kept < len(b.messages) and b.messages[kept].seq <= to_seq:
        kept += 1
    del b.messages[kept:]
    b.thawed = [position for position in b.thawed if position < kept]
    b.runs = None
    b.open_message = None
    if b.open_run_id is not None and all(m.id != b.open_run_id for m in b.messages):
        b.open_run_id = None
    for position in range(len(b.messages) - 1, -1, -1):
        run = b.messages[position].run
        if run is not None and run.superseded_at is not None and run.superseded_at > to_seq:
            message = b.thaw(position)
            assert run.superseded_from is not None
            message.run = run.superseded_from
            b.open_run_id = message.id
            break


def _merged(before: RunInfo, after: RunInfo) -> RunInfo:
    changes = {
        name: getattr(before, name)
        for name in before.__struct_fields__
        if getattr(after, name) is None and getattr(before, name) is not None
    }
    return replace(after, **changes) if changes else after


_HANDLERS: dict[type, Callable[[_Builder, RecordedEvent], None]] = {
    SessionDeleted: _session_deleted,
    ConversationRewound: _rewound,
    RunStarted: _run_started,
    AgentInitialized: _agent_initialized,
    StepStarted: _step_started,
    TextDelta: _text_delta,
    ReasoningDelta: _text_delta,
    TextCompleted: _text_completed,
    ReasoningCompleted: _text_completed,
    ToolInputDelta: _tool_input_delta,
    ToolCallStarted: _tool_call_started,
    ToolCallSucceeded: _tool_call_ended,
    ToolCallFailed: _tool_call_ended,
    ToolCallDenied: _tool_call_ended,
    ToolApprovalRequested: _approval_requested,
    ToolApprovalResponded: _approval_responded,
    AgentErrorReported: _agent_error,
    CustomEventRecorded: _custom,
    RunFinished: _run_ended,
    RunFailed: _run_ended,
    RunCancelled: _run_ended,
    RunAbandoned: _run_ended,
}


# -- the read --------------------------------------------------------------------------------


def to_ui_messages(state: ConversationState, *, run_active: bool) -> list[dict[str, Any]]:
    """The conversation as UIMessage dicts, hydrated (see the module docstring).

    `run_active`: the caller knows the open run is still executing (its lock is held).
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
            "parts": [_ui_part(part, live, message.role) for part in message.parts],
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
    assert isinstance(part, DataPart)
    return {"type": f"data-{part.name}", "data": part.data}


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
