"""Hypothesis strategies for random *valid* session logs, for projection and rebuild tests.

A generated log is what a correct runner could have written:
- seq 1 is `session_created`; seqs are dense from 1; times grow with the position;
- between runs, custom events with no run id;
- runs with unique ids, each: `run_started`, maybe `agent_initialized` / `agent_status`, then
  steps (`step_started`, text and reasoning blocks as deltas then a completion, or only a
  completion, tool calls with or without streamed input, `step_finished`), the step's tool
  calls resolving in a random (completion) order as succeeded, failed or denied; heartbeats,
  custom events and agent errors anywhere in between;
- a run ends `run_finished`, or is cut at a random point and then ends `run_failed`,
  `run_cancelled` (maybe followed by the safety net failing its dangling calls),
  `run_abandoned`, or nothing at all (a crash: the log simply stops, or the next run starts).

Entry points: `session_events(session_id)` (the unrecorded events), `session_logs(session_id)`
(RecordedEvents of one session) and `interleaved_logs()` (several sessions interleaved, with
global positions), plus `record()` to wrap events by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import strategies as st

from agentlog.domain.events import (
    AgentErrorReported,
    AgentInitialized,
    AgentStatusReported,
    AttachedFile,
    ConversationRewound,
    CustomEventRecorded,
    HeartbeatRecorded,
    ReasoningCompleted,
    ReasoningDelta,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
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
from agentlog.domain.rules.open_work import open_work

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TOOL_NAMES = ("Bash", "Read", "Write", "mcp__demo__add")

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
short_text = st.text(max_size=6)
# Files sent with a prompt, by reference (the bytes are never in the log).
attached_files = st.builds(
    AttachedFile,
    sha256=st.sampled_from(["a" * 64, "b" * 64]),
    media_type=st.sampled_from(["image/png", "application/pdf", "text/plain"]),
    size=st.integers(1, 4096),
    filename=st.none() | short_text,
)


def record(
    session_id: str,
    events: Sequence[SessionEvent],
    *,
    first_seq: int = 1,
    first_position: int | None = None,
    start: datetime = T0,
) -> list[RecordedEvent]:
    """Wrap events as the store would: dense seqs, positions (= seq by default), growing times."""
    position = first_seq if first_position is None else first_position
    return [
        RecordedEvent(
            session_id=session_id,
            seq=first_seq + i,
            position=position + i,
            time=start + timedelta(milliseconds=position + i),
            event=event,
        )
        for i, event in enumerate(events)
    ]


class _Ids:
    """Unique ids within one session's log."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.count = 0

    def next(self, kind: str) -> str:
        self.count += 1
        return f"{self.session_id}-{kind}{self.count}"


def _split(draw: st.DrawFn, text: str) -> list[str]:
    """The text in 1+ consecutive pieces, as a stream would deliver it."""
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=3))))
    bounds = [0, *cuts, len(text)]
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    return pieces or [text]


def _text_block(
    draw: st.DrawFn, run_id: str, message_id: str, index: int, parent: str | None = None
) -> list[SessionEvent]:
    reasoning = draw(st.booleans())
    text = draw(st.text(max_size=12))
    shape = draw(st.sampled_from(["deltas+completed", "completed", "deltas"]))
    delta_cls = ReasoningDelta if reasoning else TextDelta
    events: list[SessionEvent] = []
    if shape != "completed":
        events += [
            delta_cls(
                run_id=run_id,
                message_id=message_id,
                block_index=index,
                delta=piece,
                parent_tool_call_id=parent,
            )
            for piece in _split(draw, text)
        ]
    if shape != "deltas":
        if reasoning:
            events.append(
                ReasoningCompleted(
                    run_id=run_id,
                    message_id=message_id,
                    block_index=index,
                    text=text,
                    parent_tool_call_id=parent,
                )
            )
        else:
            events.append(
                TextCompleted(
                    run_id=run_id,
                    message_id=message_id,
                    block_index=index,
                    text=text,
                    parent_tool_call_id=parent,
                )
            )
    return events


def _tool_call(
    draw: st.DrawFn,
    run_id: str,
    message_id: str,
    index: int,
    tool_call_id: str,
    parent: str | None = None,
) -> list[SessionEvent]:
    name = draw(st.sampled_from(TOOL_NAMES))
    tool_input = draw(st.dictionaries(st.text(max_size=4), json_values, max_size=3))
    events: list[SessionEvent] = []
    if draw(st.booleans()):
        raw = msgspec.json.encode(tool_input).decode()
        events += [
            ToolInputDelta(
                run_id=run_id,
                message_id=message_id,
                block_index=index,
                tool_call_id=tool_call_id,
                tool_name=name,
                delta=piece,
                parent_tool_call_id=parent,
            )
            for piece in _split(draw, raw)
        ]
    events.append(
        ToolCallStarted(
            run_id=run_id,
            tool_call_id=tool_call_id,
            tool_name=name,
            input=tool_input,
            message_id=message_id,
            parent_tool_call_id=parent,
        )
    )
    return events


def _tool_result(draw: st.DrawFn, run_id: str, tool_call_id: str) -> SessionEvent:
    outcome = draw(st.sampled_from(["succeeded", "succeeded", "failed", "denied"]))
    if outcome == "succeeded":
        return ToolCallSucceeded(run_id=run_id, tool_call_id=tool_call_id, output=draw(json_values))
    if outcome == "failed":
        return ToolCallFailed(run_id=run_id, tool_call_id=tool_call_id, error_text="boom")
    return ToolCallDenied(run_id=run_id, tool_call_id=tool_call_id, reason="not allowed")


def _noise(draw: st.DrawFn, run_id: str | None) -> SessionEvent:
    """An event that may come at any moment of a run."""
    kind = draw(st.sampled_from(["heartbeat", "heartbeat", "status", "custom", "error"]))
    if kind == "heartbeat":
        return HeartbeatRecorded(run_id=run_id)
    if kind == "status":
        return AgentStatusReported(run_id=run_id, subtype="status", data={"status": "requesting"})
    if kind == "custom":
        return CustomEventRecorded(run_id=run_id, name="progress", data=draw(json_values))
    return AgentErrorReported(run_id=run_id, kind="api_error", message="overloaded", status=529)


def _run(draw: st.DrawFn, ids: _Ids) -> list[SessionEvent]:
    run_id = ids.next("run")
    body: list[SessionEvent] = []
    if draw(st.booleans()):
        body.append(AgentInitialized(run_id=run_id, model="claude-sonnet-4-5", tools=["Bash"]))
    for _ in range(draw(st.integers(0, 3))):
        message_id = ids.next("msg")
        body.append(StepStarted(run_id=run_id, message_id=message_id))
        started: list[str] = []
        for index in range(draw(st.integers(0, 4))):
            if draw(st.booleans()):
                body += _text_block(draw, run_id, message_id, index)
            else:
                tool_call_id = ids.next("toolu")
                body += _tool_call(draw, run_id, message_id, index, tool_call_id)
                started.append(tool_call_id)
        body.append(StepFinished(run_id=run_id, message_id=message_id, stop_reason="tool_use"))
        if started and draw(st.booleans()):
            body += _subagent(draw, ids, run_id, parent=started[0])
        for tool_call_id in draw(st.permutations(started)):
            body.append(_tool_result(draw, run_id, tool_call_id))
    for _ in range(draw(st.integers(0, 3))):
        body.insert(draw(st.integers(0, len(body))), _noise(draw, run_id))

    prompt = draw(short_text)
    files = draw(st.lists(attached_files, max_size=2))
    events: list[SessionEvent] = [RunStarted(run_id=run_id, prompt=prompt, files=files), *body]
    ending = draw(
        st.sampled_from(["finished", "failed", "cancelled", "abandoned", "crash", "continued"])
    )
    if ending == "finished":
        events.append(RunFinished(run_id=run_id, result="done", num_turns=1, usage={"x": 1}))
        return events
    events = events[: 1 + draw(st.integers(0, len(body)))]
    if ending == "failed":
        events.append(RunFailed(run_id=run_id, error="model error", terminal_reason="api_error"))
    elif ending == "cancelled":
        events.append(RunCancelled(run_id=run_id))
        if draw(st.booleans()):
            events += _safety_net(run_id, events)
    elif ending == "abandoned":
        events.append(RunAbandoned(run_id=run_id))
    elif ending == "continued":
        events += _continued_after_crash(draw, ids, run_id, events)
    return events


def _continued_after_crash(
    draw: st.DrawFn, ids: _Ids, run_id: str, events: list[SessionEvent]
) -> list[SessionEvent]:
    """Its server died: in one append, the calls in flight failed as interrupted, the run
    abandoned naming its continuation, and the continuation (agentlog.domain.rules.
    crash_continuation), which then answers and finishes."""
    continuation = ids.next("run")
    step = ids.next("msg")
    return [
        *_safety_net(run_id, events),
        RunAbandoned(run_id=run_id, continued_by=continuation),
        RunStarted(
            run_id=continuation, prompt="go on", continues_run_id=run_id, resumed_after_crash=1
        ),
        StepStarted(run_id=continuation, message_id=step),
        *_text_block(draw, continuation, step, 0),
        StepFinished(run_id=continuation, message_id=step, stop_reason="end_turn"),
        RunFinished(run_id=continuation, result="done", num_turns=1, usage={"x": 1}),
    ]


def _subagent(draw: st.DrawFn, ids: _Ids, run_id: str, parent: str) -> list[SessionEvent]:
    """The steps of a subagent that the call `parent` started (the Agent tool), before that
    call's own result: their events name `parent`, as the translator records them."""
    body: list[SessionEvent] = []
    for _ in range(draw(st.integers(1, 2))):
        message_id = ids.next("msg")
        body.append(StepStarted(run_id=run_id, message_id=message_id, parent_tool_call_id=parent))
        started: list[str] = []
        for index in range(draw(st.integers(0, 2))):
            if draw(st.booleans()):
                body += _text_block(draw, run_id, message_id, index, parent)
            else:
                tool_call_id = ids.next("toolu")
                body += _tool_call(draw, run_id, message_id, index, tool_call_id, parent)
                started.append(tool_call_id)
        body.append(StepFinished(run_id=run_id, message_id=message_id, stop_reason="tool_use"))
        for tool_call_id in draw(st.permutations(started)):
            body.append(_tool_result(draw, run_id, tool_call_id))
    return body


def _safety_net(run_id: str, events: list[SessionEvent]) -> list[SessionEvent]:
    """What the safety net writes after a cancel: every started, unresolved call failed."""
    resolved = {
        e.tool_call_id
        for e in events
        if isinstance(e, ToolCallSucceeded | ToolCallFailed | ToolCallDenied)
    }
    return [
        ToolCallFailed(
            run_id=run_id,
            tool_call_id=e.tool_call_id,
            error_text="interrupted",
            source="safety-net",
        )
        for e in events
        if isinstance(e, ToolCallStarted) and e.tool_call_id not in resolved
    ]


def _approval_turn(draw: st.DrawFn, ids: _Ids) -> tuple[list[SessionEvent], bool]:
    """A turn whose tool call waits on a person's approval, and whether it still waits.

    The call is answered within the run's grace (the same run ends it), or the run stops to
    wait (`tool_deferred`, or its server died: `run_abandoned`) and, once answered, a
    continuation run ends the call and goes on; or nobody has answered yet."""
    run_id = ids.next("run")
    message_id = ids.next("msg")
    events: list[SessionEvent] = [
        RunStarted(run_id=run_id, prompt=draw(short_text)),
        StepStarted(run_id=run_id, message_id=message_id),
    ]
    if draw(st.booleans()):
        events += _text_block(draw, run_id, message_id, 0)
    call_id = ids.next("toolu")
    events += _tool_call(draw, run_id, message_id, 1, call_id)
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    approval_id = f"approval_{call_id}"
    events.append(
        ToolApprovalRequested(
            run_id=run_id,
            approval_id=approval_id,
            tool_call_id=call_id,
            tool_name=started.tool_name,
            input=started.input,
            reason="needs approval",
        )
    )
    if draw(st.booleans()):
        events.append(HeartbeatRecorded(run_id=run_id))
    approved = draw(st.booleans())
    response = ToolApprovalResponded(
        run_id=run_id,
        approval_id=approval_id,
        tool_call_id=call_id,
        approved=approved,
        reason=draw(st.none() | short_text),
    )
    how = draw(st.sampled_from(["in-grace", "deferred", "abandoned", "waiting"]))

    def ended(by: str) -> SessionEvent:
        if approved:
            return ToolCallSucceeded(run_id=by, tool_call_id=call_id, output=draw(json_values))
        return ToolCallDenied(run_id=by, tool_call_id=call_id, reason="The user denied this.")

    def answer_text(by: str) -> list[SessionEvent]:
        step = ids.next("msg")
        return [
            StepStarted(run_id=by, message_id=step),
            *_text_block(draw, by, step, 0),
            StepFinished(run_id=by, message_id=step, stop_reason="end_turn"),
            RunFinished(run_id=by, result="done", num_turns=1, usage={"x": 1}),
        ]

    if how == "in-grace":
        events += [response, ended(run_id)]
        events.append(StepFinished(run_id=run_id, message_id=message_id, stop_reason="tool_use"))
        return events + answer_text(run_id), False
    events.append(StepFinished(run_id=run_id, message_id=message_id, stop_reason="tool_use"))
    if how == "abandoned":
        events.append(RunAbandoned(run_id=run_id))
    else:
        events.append(
            RunFinished(run_id=run_id, stop_reason="tool_deferred", deferred_tool_call_id=call_id)
        )
    if how == "waiting" or draw(st.integers(0, 3)) == 0:
        return events, True
    continuation = ids.next("run")
    events += [
        response,
        RunStarted(run_id=continuation, prompt="", continues_run_id=run_id),
        ended(continuation),
    ]
    return events + answer_text(continuation), False


def _rewind(draw: st.DrawFn, ids: _Ids, events: list[SessionEvent]) -> list[SessionEvent]:
    """What a regenerate or an edit appends before its run: the recovery of a run left open
    (maybe: older logs have none), then `conversation_rewound` to just before the
    `run_started` of a run on the current branch (seq = index + 1). Empty when the branch
    has no run to go back to."""
    branch = current_branch(record("s", events))
    targets = [
        r.seq
        for r in branch
        if isinstance(r.event, RunStarted) and r.event.continues_run_id is None
    ]
    if not targets:
        return []
    target = draw(st.sampled_from(targets))
    before: list[SessionEvent] = []
    open_run = open_work(record("s", events)).open_run_id
    if open_run is not None and draw(st.booleans()):
        before = [RunAbandoned(run_id=open_run)]
    started = events[target - 1]
    assert isinstance(started, RunStarted)
    rewound = ConversationRewound(
        to_seq=target - 1,
        agent_session=ids.next("branch"),
        trigger=draw(st.sampled_from(["regenerate", "edit", "from_message"])),
        message_id=started.run_id,
    )
    return [*before, rewound]


@st.composite
def session_events(
    draw: st.DrawFn,
    session_id: str = "s",
    max_runs: int = 4,
    approvals: bool = False,
    rewinds: bool = False,
) -> list[SessionEvent]:
    """One session's events, unrecorded: `session_created` first, then runs and custom events.
    With `approvals`, some turns wait on a tool approval (the last one may still wait). With
    `rewinds`, some runs are a regenerate or an edit: a `conversation_rewound` to just before
    an earlier run of the current branch, then the run (as the runner appends them)."""
    ids = _Ids(session_id)
    events: list[SessionEvent] = [SessionCreated(title=draw(st.none() | short_text))]
    for _ in range(draw(st.integers(0, max_runs))):
        if draw(st.integers(0, 4)) == 0:
            events.append(CustomEventRecorded(name="note", data=draw(json_values)))
        if rewinds and draw(st.integers(0, 2)) == 0:
            events += _rewind(draw, ids, events)
        if approvals and draw(st.booleans()):
            turn, waiting = _approval_turn(draw, ids)
            events += turn
            if waiting:
                break  # no new turn starts while an approval waits
        else:
            events += _run(draw, ids)
    return events


@st.composite
def session_logs(
    draw: st.DrawFn,
    session_id: str = "s",
    max_runs: int = 4,
    approvals: bool = False,
    rewinds: bool = False,
) -> list[RecordedEvent]:
    """One session's log as the store holds it: seqs dense from 1, position = seq."""
    return record(session_id, draw(session_events(session_id, max_runs, approvals, rewinds)))


@st.composite
def interleaved_logs(
    draw: st.DrawFn, max_sessions: int = 4, max_runs: int = 3, rewinds: bool = False
) -> list[RecordedEvent]:
    """Several sessions' logs interleaved in one commit order, with global positions from 1."""
    count = draw(st.integers(1, max_sessions))
    logs = [draw(session_events(f"s{i}", max_runs, rewinds=rewinds)) for i in range(count)]
    order = draw(st.permutations([i for i, log in enumerate(logs) for _ in log]))
    next_index = [0] * count
    recorded: list[RecordedEvent] = []
    for position, i in enumerate(order, start=1):
        seq = next_index[i] + 1
        recorded.append(
            RecordedEvent(
                session_id=f"s{i}",
                seq=seq,
                position=position,
                time=T0 + timedelta(milliseconds=position),
                event=logs[i][next_index[i]],
            )
        )
        next_index[i] = seq
    return recorded
