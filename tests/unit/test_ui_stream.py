"""The UI message stream of a run: each choice by example, then the proof over random logs that
the message an AI SDK client builds from the stream is the projection's message.

The client is tests/support/ai_sdk_client.py, a Python mirror of the `ai` package's own stream
processing (tests/e2e/test_ai_sdk_client.py holds it against the real package); `as_projected`
there is the one normalisation (a reasoning part's optional `id`, and while a run is open a
streaming call's partial input). Metadata is compared too: the stream carries it.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentlog.domain.events import (
    AgentErrorReported,
    AgentInitialized,
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
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolInputDelta,
)
from agentlog.projections.ui_messages import INTERRUPTED, fold, to_ui_messages
from agentlog.projections.ui_stream import (
    DONE,
    RunStreamEncoder,
    continued_runs,
    encode_sse,
    run_chunks,
)
from tests.strategies import record, session_logs
from tests.support.ai_sdk_client import ChatResult, StreamRejected, as_projected, resume

R = "run1"


def logged(*events: SessionEvent) -> list[RecordedEvent]:
    return record("s", [SessionCreated(), RunStarted(run_id=R, prompt="hi"), *events])


def chunks(*events: SessionEvent, run_active: bool = False) -> list[dict[str, Any]]:
    return run_chunks(logged(*events), R, run_active=run_active)


def types(*events: SessionEvent) -> list[str]:
    return [chunk["type"] for chunk in chunks(*events)]


def projected(events: list[RecordedEvent], run_id: str, *, run_active: bool) -> dict[str, Any]:
    messages = to_ui_messages(fold(events), run_active=run_active)
    return next(m for m in messages if m["id"] == run_id)


def client(*events: SessionEvent) -> ChatResult:
    return resume(chunks(*events))


def assert_client_equals_projection(*events: SessionEvent) -> ChatResult:
    result = client(*events)
    assert as_projected(result.message) == projected(logged(*events), R, run_active=False)
    return result


def started(tool_call_id: str, name: str = "Bash", **fields: Any) -> ToolCallStarted:
    return ToolCallStarted(run_id=R, tool_call_id=tool_call_id, tool_name=name, **fields)


def step(message_id: str = "m1") -> StepStarted:
    return StepStarted(run_id=R, message_id=message_id)


def text_delta(delta: str, index: int = 0, message_id: str = "m1") -> TextDelta:
    return TextDelta(run_id=R, message_id=message_id, block_index=index, delta=delta)


def text_completed(text: str, index: int = 0, message_id: str = "m1") -> TextCompleted:
    return TextCompleted(run_id=R, message_id=message_id, block_index=index, text=text)


FINISHED = RunFinished(run_id=R, result="done", stop_reason="end_turn")


# -- start, steps, text ----------------------------------------------------------------------


def test_the_stream_starts_with_the_run_id_as_message_id_and_the_runs_metadata() -> None:
    first = chunks(AgentInitialized(run_id=R, model="claude-x"))[:2]
    assert first == [
        {
            "type": "start",
            "messageId": R,
            "messageMetadata": {
                "status": "running",
                "agent": "scripted",
                "startedAt": logged()[1].time.isoformat(),
            },
        },
        {"type": "message-metadata", "messageMetadata": {"model": "claude-x"}},
    ]


def test_steps_are_start_step_and_finish_step() -> None:
    events = (step("m1"), StepFinished(run_id=R, message_id="m1"), step("m2"), step("m3"))
    assert types(*events, FINISHED) == [
        "start",
        "start-step",
        "finish-step",
        "start-step",
        "finish-step",  # m2 never reported its end
        "start-step",
        "finish-step",
        "finish",
    ]


def test_text_deltas_open_a_part_and_the_completion_sends_only_the_remainder() -> None:
    events = (step(), text_delta("Hel"), text_delta("lo"), text_completed("Hello world"))
    assert chunks(*events, FINISHED)[2:7] == [
        {"type": "text-start", "id": "m1:0"},
        {"type": "text-delta", "id": "m1:0", "delta": "Hel"},
        {"type": "text-delta", "id": "m1:0", "delta": "lo"},
        {"type": "text-delta", "id": "m1:0", "delta": " world"},
        {"type": "text-end", "id": "m1:0"},
    ]
    assert_client_equals_projection(*events, FINISHED)


def test_a_completion_without_deltas_sends_start_the_whole_text_and_end() -> None:
    events = (step(), ReasoningCompleted(run_id=R, message_id="m1", block_index=0, text="hmm"))
    assert chunks(*events, FINISHED)[2:5] == [
        {"type": "reasoning-start", "id": "m1:0"},
        {"type": "reasoning-delta", "id": "m1:0", "delta": "hmm"},
        {"type": "reasoning-end", "id": "m1:0"},
    ]


def test_a_delta_after_the_completion_is_dropped_as_the_projection_drops_it() -> None:
    events = (step(), text_completed("done"), text_delta(" more"))
    assert types(*events, FINISHED).count("text-delta") == 1
    assert_client_equals_projection(*events, FINISHED)


def test_a_completion_that_rewrites_the_streamed_text_sends_its_step_again() -> None:
    events = (
        step(),
        ReasoningDelta(run_id=R, message_id="m1", block_index=0, delta="think"),
        CustomEventRecorded(run_id=R, name="progress", data={"pct": 50}),
        started("t1", input={"cmd": "ls"}),
        text_delta("Helo", index=1),
        text_completed("Hello", index=1),
    )
    sent = chunks(*events, FINISHED)
    reset = sent.index({"type": "reset-step"})
    assert [c["type"] for c in sent[reset + 1 :]] == [
        "reasoning-start",  # still open: sent again without its end
        "reasoning-delta",
        "data-progress",
        "tool-input-available",
        "text-start",
        "text-delta",
        "text-end",
        "reasoning-end",  # the run's end closes both
        "tool-output-error",
        "finish-step",
        "finish",
    ]
    assert_client_equals_projection(*events, FINISHED)


def test_a_second_completion_that_changes_a_finished_block_sends_its_step_again() -> None:
    events = (step(), text_completed("first"), text_completed("second"))
    assert "reset-step" in types(*events, FINISHED)
    assert_client_equals_projection(*events, FINISHED)


def test_a_rewrite_a_reset_cannot_express_keeps_the_streamed_text() -> None:
    # A block of an earlier step is still open: a reset would orphan it, so the rewritten block
    # only ends (the module docstring's limitation; the Claude CLI never does this).
    events: tuple[SessionEvent, ...] = (step("m1"), text_delta("open"), step("m2"))
    events += (text_delta("Helo", message_id="m2"), text_completed("Hello", message_id="m2"))
    assert "reset-step" not in types(*events, FINISHED)
    message = as_projected(client(*events, FINISHED).message)
    assert [p.get("text") for p in message["parts"]] == [None, "open", None, "Helo"]


# -- tool calls ------------------------------------------------------------------------------


def test_a_streamed_tool_input_starts_then_becomes_available() -> None:
    events = (
        step(),
        ToolInputDelta(
            run_id=R,
            message_id="m1",
            block_index=0,
            tool_call_id="t1",
            tool_name="Bash",
            delta='{"',
        ),
        started("t1", input={"cmd": "ls"}),
        ToolCallSucceeded(run_id=R, tool_call_id="t1", output="a.txt"),
    )
    assert chunks(*events, FINISHED)[2:6] == [
        {"type": "tool-input-start", "toolCallId": "t1", "toolName": "Bash"},
        {"type": "tool-input-delta", "toolCallId": "t1", "inputTextDelta": '{"'},
        {
            "type": "tool-input-available",
            "toolCallId": "t1",
            "toolName": "Bash",
            "input": {"cmd": "ls"},
        },
        {"type": "tool-output-available", "toolCallId": "t1", "output": "a.txt"},
    ]
    assert_client_equals_projection(*events, FINISHED)


def test_mcp_tools_are_dynamic() -> None:
    events = (started("t1", name="mcp__demo__add", input={"a": 1}),)
    assert chunks(*events, FINISHED)[1]["dynamic"] is True
    result = assert_client_equals_projection(*events, FINISHED)
    assert result.message is not None
    assert result.message["parts"][0]["type"] == "dynamic-tool"


def test_a_denied_call_sends_the_approval_chunks_then_output_denied() -> None:
    events = (started("t1"), ToolCallDenied(run_id=R, tool_call_id="t1", reason="not allowed"))
    assert chunks(*events, FINISHED)[2:5] == [
        {"type": "tool-approval-request", "approvalId": "t1", "toolCallId": "t1"},
        {
            "type": "tool-approval-response",
            "approvalId": "t1",
            "approved": False,
            "reason": "not allowed",
        },
        {"type": "tool-output-denied", "toolCallId": "t1"},
    ]
    assert_client_equals_projection(*events, FINISHED)


def test_a_call_that_ends_while_its_input_streams_gets_the_projections_null_input() -> None:
    delta = ToolInputDelta(
        run_id=R, message_id="m1", block_index=0, tool_call_id="t1", tool_name="Read", delta="{"
    )
    failed = ToolCallFailed(run_id=R, tool_call_id="t1", error_text="boom")
    assert types(delta, failed, FINISHED)[3:5] == ["tool-input-available", "tool-output-error"]
    result = assert_client_equals_projection(delta, failed, FINISHED)
    assert result.message is not None
    assert result.message["parts"][0]["input"] is None


def test_a_step_start_first_clears_the_partial_input_of_a_call_its_step_cut_off() -> None:
    # The client updates a call's input only in the current step: this is the last moment.
    events = (
        step("m1"),
        ToolInputDelta(
            run_id=R, message_id="m1", block_index=0, tool_call_id="t1", tool_name="Bash", delta="{"
        ),
        StepFinished(run_id=R, message_id="m1", abandoned=True),
        step("m2"),
    )
    assert types(*events)[4:7] == ["finish-step", "tool-input-start", "start-step"]
    live = resume(chunks(*events, run_active=True)).live
    assert live is not None
    assert "input" not in live["parts"][1]
    assert_client_equals_projection(*events, RunCancelled(run_id=R))


def test_a_result_is_sent_once_and_only_for_a_waiting_call() -> None:
    events = (
        ToolCallSucceeded(run_id=R, tool_call_id="t1", output="early"),
        started("t1"),
        ToolCallSucceeded(run_id=R, tool_call_id="t1", output="first"),
        ToolCallFailed(run_id=R, tool_call_id="t1", error_text="second"),
    )
    assert types(*events, FINISHED) == [
        "start",
        "tool-input-available",
        "tool-output-available",
        "finish",
    ]
    assert_client_equals_projection(*events, FINISHED)


# -- data parts ------------------------------------------------------------------------------


def test_custom_events_and_agent_errors_are_data_parts_never_error_chunks() -> None:
    events = (
        CustomEventRecorded(run_id=R, name="progress", data=None),
        AgentErrorReported(run_id=R, kind="api_error", message="overloaded", status=529),
        CustomEventRecorded(name="note", data=[1, {"a": None}]),  # no run id: the open run
    )
    sent = chunks(*events, FINISHED)
    assert sent[1:4] == [
        {"type": "data-progress", "data": None},
        {
            "type": "data-agent-error",
            "data": {"kind": "api_error", "message": "overloaded", "status": 529},
        },
        {"type": "data-note", "data": [1, {"a": None}]},
    ]
    assert "error" not in [c["type"] for c in sent]
    assert_client_equals_projection(*events, FINISHED)


# -- how a run ends --------------------------------------------------------------------------


def test_a_finished_run_finishes_with_its_reason_and_metadata() -> None:
    finished = RunFinished(
        run_id=R, stop_reason="max_tokens", usage={"input_tokens": 3}, total_cost_usd=0.5
    )
    last = chunks(finished)[-1]
    assert last["type"] == "finish"
    assert last["finishReason"] == "length"
    assert last["messageMetadata"]["usage"] == {"input_tokens": 3}
    assert_client_equals_projection(finished)


def test_a_failed_run_sends_finish_then_the_error_last() -> None:
    for failure in (
        RunFailed(run_id=R, error="CLI crashed", terminal_reason="process_error"),
        RunFinished(run_id=R, is_error=True, result="API Error: 529"),
    ):
        sent = chunks(step(), text_delta("par"), failure)
        assert [c["type"] for c in sent[-4:]] == ["text-end", "finish-step", "finish", "error"]
        assert sent[-2]["finishReason"] == "error"
        result = assert_client_equals_projection(step(), text_delta("par"), failure)
        assert result.status == "error"
        assert result.error == sent[-1]["errorText"]


def test_a_cancelled_run_sends_its_metadata_then_abort() -> None:
    sent = chunks(RunCancelled(run_id=R, reason="user"))
    assert sent[-2]["type"] == "message-metadata"
    assert sent[-2]["messageMetadata"]["status"] == "cancelled"
    assert sent[-1] == {"type": "abort", "reason": "user"}
    assert_client_equals_projection(RunCancelled(run_id=R, reason="user"))


def test_an_abandoned_run_finishes_as_interrupted() -> None:
    last = chunks(RunAbandoned(run_id=R))[-1]
    assert last["finishReason"] == "interrupted"
    assert last["messageMetadata"]["status"] == "abandoned"
    assert_client_equals_projection(RunAbandoned(run_id=R))


def test_a_run_continued_after_its_server_died_goes_on_as_one_message() -> None:
    """A live stream of the dead run R goes on into C, which continues the turn (issue 19):
    one `start` (R's id), the interrupted call's error, C's parts, C's finish."""
    c = "run2"
    events = logged(
        step(),
        text_delta("Appending. "),
        started("t1"),
        ToolCallFailed(run_id=R, tool_call_id="t1", error_text="interrupted by a server restart"),
        RunAbandoned(run_id=R, reason="died", continued_by=c),
        RunStarted(run_id=c, prompt="go on", continues_run_id=R, resumed_after_crash=1),
        StepStarted(run_id=c, message_id="m2"),
        TextCompleted(run_id=c, message_id="m2", block_index=0, text="It was interrupted."),
        StepFinished(run_id=c, message_id="m2", stop_reason="end_turn"),
        RunFinished(run_id=c, result="It was interrupted.", stop_reason="end_turn"),
    )
    encoder = RunStreamEncoder(R)
    live = [chunk for recorded in events for chunk in encoder.chunks_for(recorded)]
    assert encoder.closed
    assert [c_ for c_ in live if c_["type"] == "start"] == [live[0]]
    assert live[0]["messageId"] == R
    assert live[-1] == {**live[-1], "type": "finish", "finishReason": "stop"}
    assert {"type": "tool-output-error", "toolCallId": "t1"}.items() <= next(
        c_ for c_ in live if c_["type"] == "tool-output-error"
    ).items()
    result = resume(live)
    assert as_projected(result.message) == projected(events, R, run_active=False)
    assert result.message is not None and result.message["metadata"]["status"] == "finished"
    # Replayed from the session's start, the continuation's own stream is the same message.
    assert resume(run_chunks(events, c, earlier=[R])).message == result.message


def test_the_close_fails_waiting_calls_and_clears_a_streaming_input() -> None:
    events = (
        step(),
        started("t1", input={"cmd": "sleep 100"}),
        ToolInputDelta(
            run_id=R,
            message_id="m1",
            block_index=1,
            tool_call_id="t2",
            tool_name="Write",
            delta="{",
        ),
        RunCancelled(run_id=R),
    )
    sent = chunks(*events)
    assert sent[5:8] == [
        {"type": "tool-output-error", "toolCallId": "t1", "errorText": INTERRUPTED},
        {"type": "tool-input-start", "toolCallId": "t2", "toolName": "Write"},
        {"type": "tool-output-error", "toolCallId": "t2", "errorText": INTERRUPTED},
    ]
    result = assert_client_equals_projection(*events)
    assert result.message is not None
    assert "input" not in result.message["parts"][2]


def test_a_run_superseded_by_the_next_one_finishes_as_abandoned() -> None:
    events = logged(step(), RunStarted(run_id="run2", prompt="again"))
    sent = run_chunks(events, R)
    assert sent[-1]["messageMetadata"]["status"] == "abandoned"
    assert sent[-1]["messageMetadata"]["error"] == "superseded by run run2 before it ended"
    assert as_projected(resume(sent).message) == projected(events, R, run_active=False)


def test_a_run_whose_log_stops_closes_only_when_it_is_not_active() -> None:
    assert chunks(step(), text_delta("x"), run_active=True)[-1] == {
        "type": "text-delta",
        "id": "m1:0",
        "delta": "x",
    }
    last = chunks(step(), text_delta("x"), run_active=False)[-1]
    assert last == {
        "type": "finish",
        "finishReason": "interrupted",
        "messageMetadata": {"status": "running"},
    }
    assert_client_equals_projection(step(), text_delta("x"))


def test_only_the_first_terminal_event_counts() -> None:
    assert types(RunCancelled(run_id=R), FINISHED)[-1] == "abort"


# -- which events, and live vs replay --------------------------------------------------------


def test_events_of_other_runs_are_skipped_and_unnamed_ones_belong_to_the_open_run() -> None:
    events = record(
        "s",
        [
            SessionCreated(),
            RunStarted(run_id="run0", prompt="before"),
            TextCompleted(run_id="run0", message_id="m0", text="theirs"),
            RunFinished(run_id="run0"),
            RunStarted(run_id=R, prompt="hi"),
            TextCompleted(run_id="run0", message_id="m0", block_index=1, text="late, theirs"),
            TextCompleted(message_id="m1", text="ours"),
            CustomEventRecorded(run_id="run9", name="x", data=1),  # unknown run: the open one
            RunFinished(),
            CustomEventRecorded(name="after", data=2),  # no run open: a standalone message
        ],
    )
    sent = run_chunks(events, R)
    assert [c.get("delta") for c in sent if c["type"] == "text-delta"] == ["ours"]
    assert [c["type"] for c in sent if c["type"].startswith("data-")] == ["data-x"]
    assert as_projected(resume(sent).message) == projected(events, R, run_active=False)


def test_a_live_encoder_closes_at_the_terminal_event_and_then_sends_nothing() -> None:
    encoder = RunStreamEncoder(R)
    events = logged(started("t1"), RunCancelled(run_id=R))
    events += record(
        "s", [ToolCallFailed(run_id=R, tool_call_id="t1", error_text="late")], first_seq=5
    )
    sent = [c for e in events[:-1] for c in encoder.chunks_for(e)]
    assert encoder.closed
    assert sent[-1]["type"] == "abort"
    assert encoder.chunks_for(events[-1]) == []
    assert encoder.finish(run_active=False) == []


def test_a_replay_shows_a_result_written_after_the_terminal_event_before_the_close() -> None:
    events = logged(
        started("t1"),
        RunCancelled(run_id=R),
        ToolCallFailed(run_id=R, tool_call_id="t1", error_text="interrupted: cancelled"),
    )
    sent = run_chunks(events, R)
    assert {
        "type": "tool-output-error",
        "toolCallId": "t1",
        "errorText": "interrupted: cancelled",
    } in sent
    assert INTERRUPTED not in json.dumps(sent)
    assert sent[-1]["type"] == "abort"
    assert as_projected(resume(sent).message) == projected(events, R, run_active=False)


def test_the_stream_of_a_run_that_never_started_is_empty() -> None:
    assert run_chunks(logged(), "other") == []


def test_noise_sends_nothing() -> None:
    assert types(HeartbeatRecorded(run_id=R), FINISHED) == ["start", "finish"]


def test_encode_sse_frames_one_chunk_and_done_ends_the_stream() -> None:
    assert encode_sse({"type": "text-delta", "id": "a", "delta": "é\n"}) == (
        b'data: {"type":"text-delta","id":"a","delta":"\xc3\xa9\\n"}\n\n'
    )
    assert DONE == b"data: [DONE]\n\n"


def test_the_client_mirror_rejects_what_the_real_parser_rejects() -> None:
    streams: list[list[dict[str, Any]]] = [
        [{"type": "start"}, {"type": "heartbeat"}],
        [{"type": "start"}, {"type": "text-delta", "id": "x", "delta": "a"}],
        [{"type": "start"}, {"type": "data-x"}],
        [{"type": "start"}, {"type": "tool-output-available", "toolCallId": "t", "output": 1}],
    ]
    for bad in streams:
        try:
            resume(bad)
        except StreamRejected:
            continue
        raise AssertionError(f"accepted {bad}")


# -- the proof over random logs --------------------------------------------------------------


def run_ids(events: list[RecordedEvent]) -> list[str]:
    return [m["id"] for m in to_ui_messages(fold(events), run_active=False) if "metadata" in m]


@settings(max_examples=300, deadline=None)
@given(session_logs())
def test_the_client_message_equals_the_projection_for_every_run(
    events: list[RecordedEvent],
) -> None:
    for run_id in run_ids(events):
        result = resume(run_chunks(events, run_id))
        assert as_projected(result.message) == projected(events, run_id, run_active=False)
        failed = result.message is not None and result.message["metadata"]["status"] == "failed"
        assert result.status == ("error" if failed else "ready")


@settings(max_examples=300, deadline=None)
@given(session_logs(), st.data())
def test_the_live_client_message_equals_the_projection_while_the_run_is_open(
    events: list[RecordedEvent], data: st.DataObject
) -> None:
    prefix = events[: data.draw(st.integers(1, len(events)), label="cut")]
    open_run = fold(prefix).open_run_id
    if open_run is None:
        return
    # As GET /stream serves it: a run that continues others replays their message too.
    earlier = continued_runs(prefix, open_run)
    encoder = RunStreamEncoder(open_run, earlier=earlier)
    sent = [chunk for recorded in prefix for chunk in encoder.chunks_for(recorded)]
    assert encoder.finish(run_active=True) == []
    live = as_projected(resume(sent).live, live=True)
    assert live == projected(prefix, earlier[0] if earlier else open_run, run_active=True)


@settings(max_examples=300, deadline=None)
@given(session_logs(max_runs=6, rewinds=True))
def test_after_rewinds_every_runs_replay_equals_its_message_on_the_current_branch(
    events: list[RecordedEvent],
) -> None:
    """After regenerates and edits, the replay of each run of the current branch builds the
    message GET /messages shows (GET /stream replays the newest, the active one)."""
    for run_id in run_ids(events):
        result = resume(run_chunks(events, run_id))
        assert as_projected(result.message) == projected(events, run_id, run_active=False)
