"""`RunStreamEncoder`: one run's stream, chunk by chunk, as the session's events come."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

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
    SteeringDelivered,
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
from agentlog.projections.ui_messages import INTERRUPTED, PARKED, WAITING
from agentlog.projections.ui_messages.data_parts import steering_id
from agentlog.projections.ui_stream.chunks import (
    Chunk,
    approval_request,
    approval_response,
    block_start,
    part_chunks,
    tool_input_available,
    tool_input_delta,
    tool_input_start,
    tool_output_error,
    tool_result,
)
from agentlog.projections.ui_stream.endings import ending_of
from agentlog.projections.ui_stream.parts import (
    Block,
    Call,
    Data,
    Part,
    Steering,
    is_open,
    joined,
)

_BY_CALL = (*TOOL_TERMINAL_TYPES, ToolApprovalRequested, ToolApprovalResponded)


class RunStreamEncoder:
    """The UI message stream of one run, chunk by chunk (see the package docstring).

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
        # Runs that continue this one after its server died: the stream goes on with them.
        self._later: set[str] = set()
        # Calls of other runs still parked on an approval: a continuation settles them.
        self._parked_elsewhere: dict[str, Call] = {}
        self._message_of: dict[str, str] = {}  # run id -> the id of the message it writes
        self._known_runs: set[str] = set()
        self._started = False
        self._open = False  # this run is the session's open run
        # The last chunks, by how the run ended: set once it ended, sent by the close.
        self._ending: list[Chunk] | None = None
        self._agent: str | None = None
        self._closed = False
        self._parts: list[Part] = []
        self._blocks: dict[tuple[str, str, int], Block] = {}
        self._calls: dict[str, Call] = {}
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
        """The closing chunks when the caller stops following the log (package docstring)."""
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

    def _mine(self, run_id: str | None) -> bool:
        """The run writes this stream's message: this run, one it continues, or one that
        continues it after a crash."""
        return run_id == self.run_id or run_id in self._earlier or run_id in self._later

    def _owns(self, event: Event) -> bool:
        if isinstance(event, _BY_CALL):
            return event.tool_call_id in self._calls
        run_id = event.run_id
        if run_id is None:
            return self._open
        if self._mine(run_id):
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
                call = Call(event.tool_call_id, event.tool_name, 0, "input-available")
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
        if self._mine(run_id) and self._started:
            # The next run of a replayed message: the client keeps the message it has.
            self._open = True
            self._agent = event.agent
            return [{"type": "message-metadata", "messageMetadata": metadata}]
        if self._mine(run_id):
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
            if type(part) is Block and part.open:
                part.open = False
                chunks.append({"type": f"{part.kind}-end", "id": part.chunk_id})
            elif type(part) is Call and part.state in WAITING:
                if part.state == "input-streaming" and part.step == self._step:
                    # A second start clears the client's partial input: the fold shows none.
                    chunks.append(tool_input_start(part))
                part.state = "output-error"
                part.error_text = INTERRUPTED
                chunks.append(tool_output_error(part))
        if self._step_open:
            self._step_open = False
            chunks.append({"type": "finish-step"})
        chunks += self._ending
        self._closed = True
        return chunks

    # -- parts -------------------------------------------------------------------------------

    def _add(self, part: Part) -> None:
        self._parts.append(part)

    def _rewrite(self, block: Block, text: str) -> list[Chunk]:
        """`block` now reads `text`, which does not extend what the client has: send its step
        again after `reset-step` when that is exact, else only end it (package docstring)."""
        was_open = block.open
        block.pieces[:], block.open = [text], False
        earlier_open = any(part.step < self._step and is_open(part) for part in self._parts)
        if block.step != self._step or earlier_open:
            return [{"type": f"{block.kind}-end", "id": block.chunk_id}] if was_open else []
        chunks: list[Chunk] = [{"type": "reset-step"}]
        for part in self._current_step_parts():
            chunks += part_chunks(part)
        return chunks

    def _new_block(self, key: tuple[str, str, int], parent: str | None) -> Block:
        """A text or reasoning part, keyed (kind, message id, block index), in the current step."""
        kind, message_id, block_index = key
        block = Block(kind, f"{message_id}:{block_index}", self._step)
        block.parent = parent
        self._blocks[key] = block
        self._add(block)
        return block

    def _current_step_parts(self) -> list[Part]:
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
            tool_input_start(part)
            for part in self._current_step_parts()
            if type(part) is Call and part.state == "input-streaming" and part.input_pieces
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
            block = self._new_block(key, event.parent_tool_call_id)
            chunks.append(block_start(block))
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
            block = self._new_block(key, event.parent_tool_call_id)
            block.pieces[:], block.open = [event.text], False
            return part_chunks(block)
        streamed = joined(block.pieces)
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
            call = Call(event.tool_call_id, event.tool_name, self._step, "input-streaming")
            call.parent = event.parent_tool_call_id
            self._calls[call.tool_call_id] = call
            self._add(call)
            chunks.append(tool_input_start(call))
        elif call.state != "input-streaming":
            return []
        if event.delta:
            call.input_pieces.append(event.delta)
            chunks.append(tool_input_delta(call, event.delta))
        return chunks

    def _tool_call_started(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, ToolCallStarted)
        call = self._calls.get(event.tool_call_id)
        if call is None:
            call = Call(event.tool_call_id, event.tool_name, self._step, "input-available")
            call.input, call.parent = event.input, event.parent_tool_call_id
            self._calls[call.tool_call_id] = call
            self._add(call)
            return [tool_input_available(call)]
        if call.state != "input-streaming":
            return []
        call.state, call.tool_name, call.input = "input-available", event.tool_name, event.input
        call.parent = event.parent_tool_call_id or call.parent
        if call.step != self._step:
            return []  # the client cannot update it in place (package docstring)
        return [tool_input_available(call)]

    def _tool_call_ended(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, ToolCallSucceeded | ToolCallFailed | ToolCallDenied)
        call = self._calls[event.tool_call_id]
        if call.state not in WAITING and call.state not in PARKED:
            return []
        chunks: list[Chunk] = []
        if call.state == "input-streaming" and call.step == self._step:
            chunks.append(tool_input_available(call))  # input None: the fold's input for it
        if type(event) is ToolCallSucceeded:
            call.state, call.output = "output-available", event.output
        elif type(event) is ToolCallFailed:
            call.state, call.error_text = "output-error", event.error_text
        else:
            assert isinstance(event, ToolCallDenied)
            call.state, call.error_text = "output-denied", event.reason
        chunks += tool_result(call)
        return chunks

    def _data(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        if isinstance(event, AgentErrorReported):
            data: dict[str, Any] = {"kind": event.kind, "message": event.message}
            if event.status is not None:
                data["status"] = event.status
            part = Data("data-agent-error", data, self._step)
        else:
            assert isinstance(event, CustomEventRecorded)
            part = Data(f"data-{event.name}", event.data, self._step)
        self._add(part)
        return part_chunks(part)

    def _steering(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, SteeringDelivered)
        part = Steering(steering_id(event), event.prompt, self._step)
        self._add(part)
        return part_chunks(part)

    def _run_ended(self, recorded: RecordedEvent) -> list[Chunk]:
        if self._ending is not None:
            return []  # only the first terminal event counts
        event = recorded.event
        going_on = isinstance(event, RunAbandoned) and event.continued_by is not None
        if going_on and self._mine(event.run_id):
            # Its server died and another run continues the turn (same append, next event):
            # one message that goes on, as GET /messages shows it.
            assert isinstance(event, RunAbandoned) and event.continued_by is not None
            self._later.add(event.continued_by)
        if recorded.event.run_id in self._earlier or going_on:
            # A replayed run that a later one continues: only its metadata, no ending.
            self._open = False
            metadata = next(
                c["messageMetadata"]
                for c in ending_of(recorded, self._agent)
                if "messageMetadata" in c
            )
            return [{"type": "message-metadata", "messageMetadata": metadata}]
        return self._end(ending_of(recorded, self._agent))

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
                chunks.append(tool_input_available(call))
        call.state, call.approval_id = "approval-requested", event.approval_id
        chunks.append(approval_request(call.approval_id, call))
        return chunks

    def _approval_responded(self, recorded: RecordedEvent) -> list[Chunk]:
        event = recorded.event
        assert isinstance(event, ToolApprovalResponded)
        call = self._calls[event.tool_call_id]
        if call.state != "approval-requested" or call.approval_id != event.approval_id:
            return []
        call.state = "approval-responded"
        call.approved, call.approval_reason = event.approved, event.reason
        return [approval_response(call)]


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
    SteeringDelivered: RunStreamEncoder._steering,
    RunFinished: RunStreamEncoder._run_ended,
    RunFailed: RunStreamEncoder._run_ended,
    RunCancelled: RunStreamEncoder._run_ended,
    RunAbandoned: RunStreamEncoder._run_ended,
}
