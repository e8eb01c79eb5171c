"""One run's assistant message as a Vercel AI SDK UI message stream (npm `ai` 7.x): pure code.

`RunStreamEncoder(run_id)` is fed a session's events in seq order (`chunks_for`) and returns the
chunks that tell an AI SDK client (`useChat`, `readUIMessageStream`) what changed in the run's
assistant message; `finish(run_active=...)` closes the stream when the caller stops following the
log. `run_chunks(events, run_id)` replays a whole run, as `GET /stream` does on resume. The client
message these chunks build equals the run's message from `agentlog.projections.ui_messages` (parts,
states, inputs, outputs and metadata): tests/unit/test_ui_stream.py proves it over random logs
with a Python mirror of the client, tests/e2e/test_ai_sdk_client.py with the real `ai` package.

Which events are the run's: the ui_messages fold's own rules. An event naming the run (`run_id`),
an event with no run id while the run is the open one, a `custom` / `agent_error` naming a run not
(yet) started while this one is open, and a tool call's result, whatever run it names, when the
call is one of this run's (tool call ids are unique in a session: the model API makes them).
Events before the run's `run_started` only teach the encoder which runs exist, so feeding it the
session from seq 1 is exact, and feeding it from the run's `run_started` is enough unless later
events name earlier runs.

Chunks, per event:
- `run_started` -> `start{messageId: run id, messageMetadata: {status, agent, startedAt}}`;
  `agent_initialized` with a model -> `message-metadata{model}`. The client merges metadata, so
  it ends equal to the projection's.
- `step_started` -> `start-step` (after `finish-step` if the last step was not finished);
  `step_finished` -> `finish-step`. Text and reasoning stay open across steps, as in the fold:
  a block ends at its completion or at the run's end, never at its step's end.
- deltas: `text-start{id}` at a block's first delta, then `text-delta{id, delta}` (reasoning the
  same); the id is `<message_id>:<block_index>`. A delta for a finished block is dropped, as the
  fold drops it. A completion without deltas: start, delta (the whole text), end. A completion
  after deltas: the remainder as one delta when the text extends what was streamed, then end.
  When it does not (the completion rewrote the block, or a second completion changed a finished
  block), the client cannot edit a part in place, so the encoder sends `reset-step` (the client
  drops the current step's parts) and sends the step's parts again as the fold now has them.
  That is exact when the block is in the current step and no part of an earlier step is still
  open (a reset forgets every open part); otherwise the block just ends and the client keeps the
  streamed text (a reload shows the completion). The Claude CLI completes a block within its own
  step, before the next one starts.
- tool calls: `tool_input_delta` -> `tool-input-start{toolCallId, toolName, dynamic?}` then
  `tool-input-delta{toolCallId, inputTextDelta}`; `tool_call_started` -> `tool-input-available
  {toolCallId, toolName, input, dynamic?}`. `dynamic: true` for `mcp__` tools, which the fold
  shows as `dynamic-tool` parts. Results: `tool-output-available{output}`,
  `tool-output-error{errorText}`, and a denial as `tool-approval-request{approvalId}` +
  `tool-approval-response{approved: false, reason}` + `tool-output-denied`: `tool-output-denied`
  alone only moves the state, while the AI SDK's `output-denied` part carries `approval: {id,
  approved: false, reason}` (the fold's shape), which only the approval chunks build; the
  approval id is the tool call id. A call that ends while its input still streams first gets
  `tool-input-available{input: null}`, the fold's input for it. Only a waiting call moves, once.
  The client updates a call's input only within the current step (the parts after the last
  `step-start`). So when a step starts while a call's input still streams (its step was cut
  off), `tool-input-start` is sent again first, which clears the client's partial input to the
  fold's none; and a call whose input completes after the next step began stays streaming on
  the client, and shows no input if it then gets a result (the fold: `null`). The Claude CLI
  completes a tool call's input within its step.
- approvals: `tool_approval_requested` -> `tool-approval-request{approvalId, toolCallId}` (the
  input first, when it still streamed); `tool_approval_responded` -> `tool-approval-response
  {approvalId, approved, reason?}`; a refused answered call then ends with `tool-output-denied`
  alone (the client part keeps its `approval`), an approved one with `tool-output-available`.
- a continuation run (`run_started` with `continues_run_id`): its stream continues the earlier
  run's message, as `useChat` does after `addToolApprovalResponse`: `start{messageId: <the
  continued run>, messageMetadata}`, then only the continuation's chunks; the calls it settles
  were learnt, silently, from the earlier events. `RunStreamEncoder(C, earlier=[R])` replays
  R's whole message first instead (a resumed stream rebuilds the message from empty): R's end
  becomes `message-metadata`, and C's start another.
- subagents: a step with `parent_tool_call_id` sends no `start-step` and its `step_finished` no
  `finish-step`; a subagent's text, reasoning and tool parts carry the parent call in their
  start chunks' `providerMetadata` (`{"agentlog": {"parentToolCallId": P}}`), which the client
  keeps on the part as the fold shows it.
- `custom(name, data)` -> `data-<name>{data}`; `agent_error` -> `data-agent-error{data}`. Never
  an `error` chunk mid-run: useChat stops reading a stream at its first `error`.

Closing (a terminal event, a newer run starting, or `finish(run_active=False)`): every open block
ends; every waiting call fails with `INTERRUPTED`, a call whose input was still streaming after a
`tool-input-start` again (which clears the client's partial input: the fold shows none); an open
step finishes. Then, by how the run ended:
- `run_finished`: `finish{finishReason, messageMetadata}`, the reason from the stop reason
  (end_turn -> stop, max_tokens -> length, tool_use -> tool-calls, refusal -> content-filter).
- failed (`run_failed`, or `run_finished` with `is_error`): `finish{finishReason: "error",
  messageMetadata}` then `error{errorText}`, last: useChat stops at `error` and shows it as
  `chat.error`, so anything after it would be lost.
- `run_cancelled`: `message-metadata` then `abort{reason}`, which is how the AI SDK's own
  server ends a stream it stopped (no `finish`).
- `run_abandoned`, or a newer run starting while this one is open:
  `finish{finishReason: "interrupted", messageMetadata}`; useChat then won't continue the
  message on its own.
- `finish(run_active=False)` with no terminal event (the log stops: the process died):
  `finish{finishReason: "interrupted", messageMetadata: {status: "running"}}`: the fold still
  says running. Every ending carries metadata: a chunk with metadata makes useChat publish
  the message's last state, which a trailing `start-step` alone does not.
  `finish(run_active=True)` returns nothing: the run goes on, and a resumed stream replays it.
After the close the encoder emits nothing more, and `closed` is True: send `DONE` then.

After a rewind (regenerate, edit) nothing changes here: the run that answers from the earlier
point is a new run with its own assistant message (`start{messageId: its run id}`), and a
`conversation_rewound` is not one of any run's events. GET /stream replays the active run, which
is always on the current branch (a rewind's run is the newest); a client still showing the
branch set aside gets it as a new message after those, and reloads GET /messages to drop them
(the stream protocol has no chunk that removes a message).

`run_chunks` replays with the close held back to the end of the log: a result written after the
run's terminal event (a late safety net) is shown before the close, where the fold shows it too.
A live stream closes at the terminal event instead. The SSE framing is `encode_sse(chunk)` per
chunk and `DONE` last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from agentlog.domain.events import (
    TOOL_TERMINAL_TYPES,
    AgentErrorReported,
    AgentInitialized,
    CustomEventRecorded,
    Event,
    ReasoningCompleted,
    ReasoningDelta,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
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
from agentlog.domain.rules.branches import current_branch
from agentlog.projections.ui_messages import INTERRUPTED, PARKED, WAITING, subagent_metadata
from agentlog.projections.usage import cost_metadata, run_usage

_BY_CALL = (*TOOL_TERMINAL_TYPES, ToolApprovalRequested, ToolApprovalResponded)

Chunk = dict[str, Any]

DONE = b"data: [DONE]\n\n"

_encode = msgspec.json.Encoder().encode

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool-calls",
    "refusal": "content-filter",
}


def encode_sse(chunk: Chunk) -> bytes:
    """One chunk as an SSE frame: `data: <json>` and a blank line."""
    return b"data: " + _encode(chunk) + b"\n\n"


def run_chunks(
    events: Iterable[RecordedEvent],
    run_id: str,
    *,
    run_active: bool = False,
    earlier: Iterable[str] = (),
) -> list[Chunk]:
    """The whole stream of run `run_id` from its `start`, given its session's events in order.

    Empty when the run never started. The stream is closed unless the run has no terminal event
    and `run_active` says it is still executing. To go on live after the replay, feed one
    `RunStreamEncoder` the log so far and then its tail instead, so its state carries over.
    Only the current branch is replayed: a run that crashed and was closed by a start that a
    rewind later set aside ends as the projection says (closed by the branch's next start).
    """
    encoder = RunStreamEncoder(run_id, hold_close=True, earlier=earlier)
    chunks: list[Chunk] = []
    for recorded in current_branch(events):
        chunks += encoder.chunks_for(recorded)
    chunks += encoder.finish(run_active=run_active)
    return chunks


def continued_runs(events: Iterable[RecordedEvent], run_id: str) -> list[str]:
    """The runs `run_id` continues after approvals, oldest first: the runs whose events
    share its message (empty for a run with a prompt of its own)."""
    continues: dict[str, str] = {}
    for recorded in events:
        event = recorded.event
        if type(event) is RunStarted and event.run_id and event.continues_run_id:
            continues[event.run_id] = event.continues_run_id
    chain: list[str] = []
    while run_id in continues and len(chain) < len(continues):
        run_id = continues[run_id]
        chain.insert(0, run_id)
    return chain


# -- the encoder's picture of the message ----------------------------------------------------


def _joined(pieces: list[str]) -> str:
    """The text of streamed pieces, kept as a list so that many deltas cost linear time."""
    if len(pieces) > 1:
        pieces[:] = ["".join(pieces)]
    return pieces[0] if pieces else ""


@dataclass(slots=True)
class _Block:
    """A text or reasoning part."""

    kind: str  # "text" | "reasoning"
    chunk_id: str
    step: int
    pieces: list[str] = field(default_factory=list)  # its text: see _joined
    open: bool = True
    parent: str | None = None  # a subagent's: the tool call that started it


@dataclass(slots=True)
class _Call:
    """A tool part; `state` uses the AI SDK's names, as in ui_messages."""

    tool_call_id: str
    tool_name: str
    step: int
    state: str
    input_pieces: list[str] = field(default_factory=list)  # the streamed JSON text
    input: Any = None
    output: Any = None
    error_text: str = ""
    approval_id: str | None = None
    approved: bool | None = None
    approval_reason: str | None = None
    parent: str | None = None


@dataclass(slots=True)
class _Data:
    """A `data-<name>` part."""

    type: str
    data: Any
    step: int


_Part = _Block | _Call | _Data


def _is_open(part: _Part) -> bool:
    """The client holds the part as active: more deltas for it may come."""
    if type(part) is _Block:
        return part.open
    return type(part) is _Call and part.state == "input-streaming"


class RunStreamEncoder:
    """The UI message stream of one run, chunk by chunk (see the module docstring).

    It keeps the run's message as the fold has it (`_parts`), which is what lets it close open
    parts, and send a step again after `reset-step`. `hold_close`: keep the closing chunks until
    `finish`, so events of the run that come after its terminal event still show (replays).
    """

    def __init__(
        self, run_id: str, *, hold_close: bool = False, earlier: Iterable[str] = ()
    ) -> None:
        self.run_id = run_id
        self._hold_close = hold_close
        # Runs this one continues, replayed as part of its message (resumed streams).
        self._earlier = set(earlier)
        # Calls of other runs still parked on an approval: a continuation settles them.
        self._parked_elsewhere: dict[str, _Call] = {}
        self._message_of: dict[str, str] = {}  # run id -> the id of the message it writes
        self._known_runs: set[str] = set()
        self._started = False
        self._open = False  # this run is the session's open run
        # The last chunks, by how the run ended: set once it ended, sent by the close.
        self._ending: list[Chunk] | None = None
        self._agent: str | None = None
        self._closed = False
        self._parts: list[_Part] = []
        self._blocks: dict[tuple[str, str, int], _Block] = {}
        self._calls: dict[str, _Call] = {}
        self._step = 0  # start-step chunks sent; parts record the step they were added in
        self._step_open = False
        self._subagent_steps: set[str] = set()  # message ids of subagents' steps

    @property
    def closed(self) -> bool:
        """The stream's last chunk was sent: nothing more will come."""
        return self._closed

    def chunks_for(self, recorded: RecordedEvent) -> list[Chunk]:
        """The chunks one more event of the session adds to this run's stream (often none)."""
        event = recorded.event
        if type(event) is RunStarted:
            return self._run_started(recorded, event)
        if isinstance(event, (*_BY_CALL, ToolCallStarted)) and not self._owns(event):
            self._learn_parked(event)
        if self._closed or not self._started or not self._owns(event):
            return []
        handler = _HANDLERS.get(type(event))
        return [] if handler is None else handler(self, recorded)

    def finish(self, *, run_active: bool) -> list[Chunk]:
        """The closing chunks when the caller stops following the log (see the module docstring)."""
        if self._closed or not self._started:
            return []
        if self._ending is None:
            if run_active:
                return []
            # The fold still says "running": no terminal event was recorded. Sent anyway, as
            # every ending carries metadata: that makes useChat publish the message's last
            # state (a trailing `start-step` alone does not).
            metadata = {"status": "running"}
            self._ending = [
                {"type": "finish", "finishReason": "interrupted", "messageMetadata": metadata}
            ]
        return self._close()

    # -- which events are the run's ----------------------------------------------------------

    def _owns(self, event: Event) -> bool:
        if isinstance(event, _BY_CALL):
            return event.tool_call_id in self._calls
        run_id = event.run_id
        if run_id is None:
            return self._open
        if run_id == self.run_id or run_id in self._earlier:
            return True
        # The fold shows a data part naming an unknown run on the open run.
        return (
            isinstance(event, CustomEventRecorded | AgentErrorReported)
            and run_id not in self._known_runs
            and self._open
        )

    def _learn_parked(self, event: Event) -> None:
        """Follow other runs' calls that wait on an approval, for a continuation to adopt."""
        if isinstance(event, ToolCallStarted):
            if event.tool_call_id not in self._parked_elsewhere:
                call = _Call(event.tool_call_id, event.tool_name, 0, "input-available")
                call.input = event.input
                self._parked_elsewhere[event.tool_call_id] = call
            return
        assert isinstance(event, _BY_CALL)
        found = self._parked_elsewhere.get(event.tool_call_id)
        if found is None:
            return
        call = found
        if isinstance(event, ToolApprovalRequested):
            call.state, call.approval_id = "approval-requested", event.approval_id
            if call.input is None:
                call.input = event.input
        elif isinstance(event, ToolApprovalResponded):
            call.state = "approval-responded"
            call.approved, call.approval_reason = event.approved, event.reason
        else:
            del self._parked_elsewhere[event.tool_call_id]

    def _run_started(self, recorded: RecordedEvent, event: RunStarted) -> list[Chunk]:
        run_id = event.run_id or f"run:{recorded.seq}"
        if run_id in self._known_runs:
            return []
        self._known_runs.add(run_id)
        continued = event.continues_run_id
        message_id = self._message_of.get(continued, continued) if continued else run_id
        self._message_of[run_id] = message_id
        metadata = {
            "status": "running",
            "agent": event.agent,
            "startedAt": recorded.time.isoformat(),
        }
        if (run_id == self.run_id or run_id in self._earlier) and self._started:
            # The next run of a replayed message: the client keeps the message it has.
            self._open = True
            self._agent = event.agent
            return [{"type": "message-metadata", "messageMetadata": metadata}]
        if run_id == self.run_id or run_id in self._earlier:
            self._started = self._open = True
            self._agent = event.agent
            for call_id, call in list(self._parked_elsewhere.items()):
                if call.state in PARKED:
                    self._calls[call_id] = call  # settled by this run: its end is ours
            return [{"type": "start", "messageId": message_id, "messageMetadata": metadata}]
        if not self._open:
            return []
        # The fold closes a run still open when the next one starts as abandoned.
        metadata = {
            "status": "abandoned",
            "endedAt": recorded.time.isoformat(),
            "error": f"superseded by run {run_id} before it ended",
        }
        return self._end(
            [{"type": "finish", "finishReason": "interrupted", "messageMetadata": metadata}]
        )

    # -- closing -----------------------------------------------------------------------------

    def _end(self, ending: list[Chunk]) -> list[Chunk]:
        self._open = False
        self._ending = ending
        return [] if self._hold_close else self._close()

    def _close(self) -> list[Chunk]:
        assert self._ending is not None
        chunks: list[Chunk] = []
        for part in self._parts:
            if type(part) is _Block and part.open:
                part.open = False
                chunks.append({"type": f"{part.kind}-end", "id": part.chunk_id})
            elif type(part) is _Call and part.state in WAITING:
                if part.state == "input-streaming" and part.step == self._step:
                    # A second start clears the client's partial input: the fold shows none.
                    chunks.append(_tool_input_start(part))
                part.state = "output-error"
                part.error_text = INTERRUPTED
                chunks.append(_tool_output_error(part))
        if self._step_open:
            self._step_open = False
            chunks.append({"type": "finish-step"})
        chunks += self._ending
        self._closed = True
        return chunks

    # -- parts -------------------------------------------------------------------------------

    def _add(self, part: _Part) -> None:
        self._parts.append(part)

    def _rewrite(self, block: _Block, text: str) -> list[Chunk]:
        """`block` now reads `text`, which does not extend what the client has: send its step
        again after `reset-step` when that is exact, else only end it (module docstring)."""
        was_open = block.open
        block.pieces[:], block.open = [text], False
        earlier_open = any(part.step < self._step and _is_open(part) for part in self._parts)
        if block.step != self._step or earlier_open:
            return [{"type": f"{block.kind}-end", "id": block.chunk_id}] if was_open else []
        chunks: list[Chunk] = [{"type": "reset-step"}]
        for part in self._current_step_parts():
            chunks += _part_chunks(part)
        return chunks

    def _current_step_parts(self) -> list[_Part]:
        # Steps only grow along the list, so the current step's parts are its tail.
        first = len(self._parts)
        while first > 0 and self._parts[first - 1].step == self._step:
            first -= 1
        return self._parts[first:]

    # -- handlers, one per event type --------------------------------------------------------

    def _agent_initialized(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, AgentInitialized)
        if event.model is None:
            return []
        return [{"type": "message-metadata", "messageMetadata": {"model": event.model}}]

    def _step_started(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, StepStarted)
        if event.parent_tool_call_id is not None:
            self._subagent_steps.add(event.message_id)  # not a step of the turn (the fold's)
            return []
        # A call whose input still streams (its step was cut off) is out of the client's reach
        # once the next step starts: clear its partial input now, to the fold's "no input".
        chunks: list[Chunk] = [
            _tool_input_start(part)
            for part in self._current_step_parts()
            if type(part) is _Call and part.state == "input-streaming" and part.input_pieces
        ]
        if self._step_open:
            chunks.append({"type": "finish-step"})
        self._step += 1
        self._step_open = True
        chunks.append({"type": "start-step"})
        return chunks

    def _step_finished(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, StepFinished)
        if not self._step_open or event.message_id in self._subagent_steps:
            return []
        self._step_open = False
        return [{"type": "finish-step"}]

    def _text_delta(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, TextDelta | ReasoningDelta)
        kind = "text" if type(event) is TextDelta else "reasoning"
        key = (kind, event.message_id, event.block_index)
        block = self._blocks.get(key)
        chunks: list[Chunk] = []
        if block is None:
            block = _Block(kind, f"{event.message_id}:{event.block_index}", self._step)
            block.parent = event.parent_tool_call_id
            self._blocks[key] = block
            self._add(block)
            chunks.append(_block_start(block))
        elif not block.open:
            return []
        if event.delta:
            block.pieces.append(event.delta)
            chunks.append({"type": f"{kind}-delta", "id": block.chunk_id, "delta": event.delta})
        return chunks

    def _text_completed(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, TextCompleted | ReasoningCompleted)
        kind = "text" if type(event) is TextCompleted else "reasoning"
        key = (kind, event.message_id, event.block_index)
        block = self._blocks.get(key)
        if block is None:
            block = _Block(kind, f"{event.message_id}:{event.block_index}", self._step)
            block.parent = event.parent_tool_call_id
            block.pieces[:], block.open = [event.text], False
            self._blocks[key] = block
            self._add(block)
            return _part_chunks(block)
        streamed = _joined(block.pieces)
        if streamed == event.text and not block.open:
            return []
        if block.open and event.text.startswith(streamed):
            rest = event.text[len(streamed) :]
            block.pieces[:], block.open = [event.text], False
            chunks: list[Chunk] = []
            if rest:
                chunks.append({"type": f"{kind}-delta", "id": block.chunk_id, "delta": rest})
            chunks.append({"type": f"{kind}-end", "id": block.chunk_id})
            return chunks
        return self._rewrite(block, event.text)

    def _tool_input_delta(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, ToolInputDelta)
        call = self._calls.get(event.tool_call_id)
        chunks: list[Chunk] = []
        if call is None:
            call = _Call(event.tool_call_id, event.tool_name, self._step, "input-streaming")
            call.parent = event.parent_tool_call_id
            self._calls[call.tool_call_id] = call
            self._add(call)
            chunks.append(_tool_input_start(call))
        elif call.state != "input-streaming":
            return []
        if event.delta:
            call.input_pieces.append(event.delta)
            chunks.append(_tool_input_delta(call, event.delta))
        return chunks

    def _tool_call_started(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, ToolCallStarted)
        call = self._calls.get(event.tool_call_id)
        if call is None:
            call = _Call(event.tool_call_id, event.tool_name, self._step, "input-available")
            call.input, call.parent = event.input, event.parent_tool_call_id
            self._calls[call.tool_call_id] = call
            self._add(call)
            return [_tool_input_available(call)]
        if call.state != "input-streaming":
            return []
        call.state, call.tool_name, call.input = "input-available", event.tool_name, event.input
        call.parent = event.parent_tool_call_id or call.parent
        if call.step != self._step:
            return []  # the client cannot update it in place (module docstring)
        return [_tool_input_available(call)]

    def _tool_call_ended(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, ToolCallSucceeded | ToolCallFailed | ToolCallDenied)
        call = self._calls[event.tool_call_id]
        if call.state not in WAITING and call.state not in PARKED:
            return []
        chunks: list[Chunk] = []
        if call.state == "input-streaming" and call.step == self._step:
            chunks.append(_tool_input_available(call))  # input None: the fold's input for it
        if type(event) is ToolCallSucceeded:
            call.state, call.output = "output-available", event.output
        elif type(event) is ToolCallFailed:
            call.state, call.error_text = "output-error", event.error_text
        else:
            assert isinstance(event, ToolCallDenied)
            call.state, call.error_text = "output-denied", event.reason
        chunks += _tool_result(call)
        return chunks

    def _data(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        if isinstance(event, AgentErrorReported):
            data: dict[str, Any] = {"kind": event.kind, "message": event.message}
            if event.status is not None:
                data["status"] = event.status
            part = _Data("data-agent-error", data, self._step)
        else:
            assert isinstance(event, CustomEventRecorded)
            part = _Data(f"data-{event.name}", event.data, self._step)
        self._add(part)
        return _part_chunks(part)

    def _run_ended(self, recorded: RecordedEvent) -> list[Chunk]:
        if self._ending is not None:
            return []  # only the first terminal event counts
        if recorded.event.run_id in self._earlier:
            # A replayed run that a later one continues: only its metadata, no ending.
            self._open = False
            metadata = next(
                c["messageMetadata"]
                for c in _ending_of(recorded, self._agent)
                if "messageMetadata" in c
            )
            return [{"type": "message-metadata", "messageMetadata": metadata}]
        return self._end(_ending_of(recorded, self._agent))

    def _approval_requested(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, ToolApprovalRequested)
        call = self._calls[event.tool_call_id]
        if call.state not in WAITING:
            return []
        chunks: list[Chunk] = []
        if call.state == "input-streaming":
            call.input = event.input
            if call.step == self._step:
                chunks.append(_tool_input_available(call))
        call.state, call.approval_id = "approval-requested", event.approval_id
        chunks.append(_approval_request(call.approval_id, call))
        return chunks

    def _approval_responded(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, ToolApprovalResponded)
        call = self._calls[event.tool_call_id]
        if call.state != "approval-requested" or call.approval_id != event.approval_id:
            return []
        call.state = "approval-responded"
        call.approved, call.approval_reason = event.approved, event.reason
        return [_approval_response(call)]


def _ending_of(recorded: RecordedEvent, agent: str | None) -> list[Chunk]:
    """The last chunks for a run's terminal event, with the metadata the fold gives it."""
    event = recorded.event
    metadata: dict[str, Any] = {"endedAt": recorded.time.isoformat()}
    cost = run_usage(event, agent=agent)
    if cost is not None:
        metadata["cost"] = cost_metadata(cost)
    if isinstance(event, RunFinished):
        failed = event.is_error
        metadata |= {
            "status": "failed"
            if failed
            else "awaiting_approval"
            if event.deferred_tool_call_id
            else "finished",
            "usage": event.usage or None,
            "totalCostUsd": None if cost is None else cost.cost_usd,
            "durationMs": event.duration_ms,
            "numTurns": event.num_turns,
            "stopReason": event.stop_reason,
        }
        if failed:
            error = event.result or event.stop_reason or "error"
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


# -- chunks for a part -----------------------------------------------------------------------


def _tool_ids(call: _Call) -> Chunk:
    chunk: Chunk = {"toolCallId": call.tool_call_id, "toolName": call.tool_name}
    if call.tool_name.startswith("mcp__"):
        chunk["dynamic"] = True
    if call.parent is not None:  # the client keeps it as the part's callProviderMetadata
        chunk["providerMetadata"] = subagent_metadata(call.parent)
    return chunk


def _block_start(block: _Block) -> Chunk:
    chunk: Chunk = {"type": f"{block.kind}-start", "id": block.chunk_id}
    if block.parent is not None:  # the client keeps it as the part's providerMetadata
        chunk["providerMetadata"] = subagent_metadata(block.parent)
    return chunk


def _tool_input_start(call: _Call) -> Chunk:
    return {"type": "tool-input-start", **_tool_ids(call)}


def _tool_input_available(call: _Call) -> Chunk:
    return {"type": "tool-input-available", **_tool_ids(call), "input": call.input}


def _tool_output_error(call: _Call) -> Chunk:
    return {
        "type": "tool-output-error",
        "toolCallId": call.tool_call_id,
        "errorText": call.error_text,
    }


def _tool_result(call: _Call) -> list[Chunk]:
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
        return [_tool_output_error(call)]
    assert call.state == "output-denied"
    if call.approval_id is not None:
        # The client's part already carries the person's answer.
        return [{"type": "tool-output-denied", "toolCallId": call.tool_call_id}]
    approval = call.tool_call_id
    return [
        _approval_request(approval, call),
        {
            "type": "tool-approval-response",
            "approvalId": approval,
            "approved": False,
            "reason": call.error_text,
        },
        {"type": "tool-output-denied", "toolCallId": call.tool_call_id},
    ]


def _tool_input_delta(call: _Call, delta: str) -> Chunk:
    return {"type": "tool-input-delta", "toolCallId": call.tool_call_id, "inputTextDelta": delta}


def _approval_request(approval_id: str, call: _Call) -> Chunk:
    return {
        "type": "tool-approval-request",
        "approvalId": approval_id,
        "toolCallId": call.tool_call_id,
    }


def _approval_response(call: _Call) -> Chunk:
    chunk: Chunk = {
        "type": "tool-approval-response",
        "approvalId": call.approval_id,
        "approved": call.approved,
    }
    if call.approval_reason is not None:
        chunk["reason"] = call.approval_reason
    return chunk


def _part_chunks(part: _Part) -> list[Chunk]:
    """The chunks that build `part` as it is now on a client that does not have it yet."""
    if type(part) is _Data:
        return [{"type": part.type, "data": part.data}]
    if type(part) is _Block:
        chunks: list[Chunk] = [_block_start(part)]
        text = _joined(part.pieces)
        if text:
            chunks.append({"type": f"{part.kind}-delta", "id": part.chunk_id, "delta": text})
        if not part.open:
            chunks.append({"type": f"{part.kind}-end", "id": part.chunk_id})
        return chunks
    assert type(part) is _Call
    if part.state == "input-streaming":
        chunks = [_tool_input_start(part)]
        if part.input_pieces:
            chunks.append(_tool_input_delta(part, _joined(part.input_pieces)))
        return chunks
    chunks = [_tool_input_available(part)]
    if part.approval_id is not None:
        chunks.append(_approval_request(part.approval_id, part))
        if part.approved is not None:
            chunks.append(_approval_response(part))
    if part.state not in ("input-available", *PARKED):
        chunks += _tool_result(part)
    return chunks


_HANDLERS: dict[type, Callable[[RunStreamEncoder, RecordedEvent], list[Chunk]]] = {
    AgentInitialized: RunStreamEncoder._agent_initialized,
    StepStarted: RunStreamEncoder._step_started,
    StepFinished: RunStreamEncoder._step_finished,
    TextDelta: RunStreamEncoder._text_delta,
    ReasoningDelta: RunStreamEncoder._text_delta,
    TextCompleted: RunStreamEncoder._text_completed,
    ReasoningCompleted: RunStreamEncoder._text_completed,
    ToolInputDelta: RunStreamEncoder._tool_input_delta,
    ToolCallStarted: RunStreamEncoder._tool_call_started,
    ToolCallSucceeded: RunStreamEncoder._tool_call_ended,
    ToolCallFailed: RunStreamEncoder._tool_call_ended,
    ToolCallDenied: RunStreamEncoder._tool_call_ended,
    ToolApprovalRequested: RunStreamEncoder._approval_requested,
    ToolApprovalResponded: RunStreamEncoder._approval_responded,
    AgentErrorReported: RunStreamEncoder._data,
    CustomEventRecorded: RunStreamEncoder._data,
    RunFinished: RunStreamEncoder._run_ended,
    RunFailed: RunStreamEncoder._run_ended,
    RunCancelled: RunStreamEncoder._run_ended,
    RunAbandoned: RunStreamEncoder._run_ended,
}
