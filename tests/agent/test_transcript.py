"""The session's earlier runs as a CLI transcript (the converter of sessions recorded before
the store kept the CLI's own), and the recovery of an abandoned run: pure functions of the
log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from agentlog.domain.events import (
    AgentErrorReported,
    Event,
    HeartbeatRecorded,
    ReasoningCompleted,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    StepStarted,
    TextCompleted,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.agent.recovery.recovery_events import (
    INTERRUPTED_BY_OWNER_LOSS,
    recovery_events,
    running_run,
)
from agentlog.infra.agent.transcripts.conversion import (
    CANCELLED_MARKER,
    INTERRUPTED_TEXT,
    agent_session_id,
    transcript_lines,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def log(*events: Event) -> list[RecordedEvent]:
    return [
        RecordedEvent(session_id="s", seq=i, position=i, time=T0, event=e)  # type: ignore[arg-type]
        for i, e in enumerate(events, start=1)
    ]


def messages(lines: Sequence[dict[str, object]]) -> list[tuple[str, object]]:
    return [(line["type"], line["message"]["content"]) for line in lines]  # type: ignore[index]


FIRST_RUN: tuple[SessionEvent, ...] = (
    SessionCreated(title="t"),
    RunStarted(run_id="r1", prompt="Add 2 and 3 and run `ls`"),
    StepStarted(run_id="r1", message_id="m1", model="claude-x"),
    ReasoningCompleted(run_id="r1", message_id="m1", text="think", signature="sig"),
    TextCompleted(run_id="r1", message_id="m1", text="On it."),
    ToolCallStarted(
        run_id="r1", tool_call_id="t1", tool_name="mcp__demo__add", input={"a": 2}, message_id="m1"
    ),
    ToolCallStarted(
        run_id="r1", tool_call_id="t2", tool_name="Bash", input={"command": "ls"}, message_id="m1"
    ),
    ToolCallStarted(
        run_id="r1", tool_call_id="t3", tool_name="Read", input={"file_path": "/x"}, message_id="m1"
    ),
    ToolCallSucceeded(run_id="r1", tool_call_id="t1", output="5", source="hook"),
    ToolCallDenied(run_id="r1", tool_call_id="t2", reason="Bash is disabled."),
    ToolCallFailed(run_id="r1", tool_call_id="t3", error_text="File does not exist."),
    HeartbeatRecorded(run_id="r1"),
    StepStarted(run_id="r1", message_id="m2", model="claude-x"),
    TextCompleted(run_id="r1", message_id="m2", text="2 + 3 = 5."),
    TextCompleted(run_id="r1", message_id="sub", text="inside", parent_tool_call_id="t9"),
    RunFinished(run_id="r1", result="2 + 3 = 5."),
)


def test_each_run_becomes_a_prompt_its_responses_and_their_tool_results() -> None:
    lines = transcript_lines(log(*FIRST_RUN), session_id="s", agent_session="agent", cwd="/w")

    assert messages(lines) == [
        ("user", "Add 2 and 3 and run `ls`"),
        (
            "assistant",
            [
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": "t1", "name": "mcp__demo__add", "input": {"a": 2}},
                {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "t3", "name": "Read", "input": {"file_path": "/x"}},
            ],
        ),
        (
            "user",
            [
                {"type": "tool_result", "tool_use_id": "t1", "content": "5"},
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "content": "PreToolUse:Bash hook error: Bash is disabled.",
                    "is_error": True,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "t3",
                    "content": "File does not exist.",
                    "is_error": True,
                },
            ],
        ),
        ("assistant", [{"type": "text", "text": "2 + 3 = 5."}]),
    ]
    assistant = lines[1]["message"]
    assert (assistant["id"], assistant["model"], assistant["stop_reason"]) == (
        "m1",
        "claude-x",
        "tool_use",
    )
    assert lines[3]["message"]["stop_reason"] == "end_turn"


def test_lines_form_one_chain_in_the_cli_format() -> None:
    lines = transcript_lines(log(*FIRST_RUN), session_id="s", agent_session="agent", cwd="/w")

    assert [line["parentUuid"] for line in lines] == [None] + [prev["uuid"] for prev in lines[:-1]]
    assert len({line["uuid"] for line in lines}) == len(lines)
    assert {
        (line["sessionId"], line["cwd"], line["isSidechain"], line["userType"], line["timestamp"])
        for line in lines
    } == {("agent", "/w", False, "external", "2026-01-02T03:04:05.678Z")}
    # Stable: the same log gives the same lines, whichever instance builds them.
    assert lines == transcript_lines(
        log(*FIRST_RUN), session_id="s", agent_session="agent", cwd="/w"
    )


def test_a_call_without_an_end_and_a_cancelled_run_say_they_were_interrupted() -> None:
    events = log(
        RunStarted(run_id="r1", prompt="slow"),
        TextCompleted(run_id="r1", message_id="m1", text="Starting."),
        ToolCallStarted(run_id="r1", tool_call_id="t1", tool_name="slow_op", message_id="m1"),
        RunCancelled(run_id="r1", reason="cancelled"),
        RunStarted(run_id="r2", prompt="Are you still there?"),
        AgentErrorReported(run_id="r2", kind="server_error", message="API Error: 529"),
        RunFinished(run_id="r2", is_error=True),
    )
    lines = transcript_lines(events, session_id="s", agent_session="a", cwd="/w")

    assert messages(lines) == [
        ("user", "slow"),
        (
            "assistant",
            [
                {"type": "text", "text": "Starting."},
                {"type": "tool_use", "id": "t1", "name": "slow_op", "input": {}},
            ],
        ),
        (
            "user",
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": INTERRUPTED_TEXT,
                    "is_error": True,
                }
            ],
        ),
        ("user", CANCELLED_MARKER),
        # A run without an answer leaves its prompt alone; the CLI merges it with the next.
        ("user", "Are you still there?"),
    ]


def test_a_start_recorded_by_a_hook_joins_the_latest_response_and_outputs_keep_blocks() -> None:
    blocks = [{"type": "image", "source": {"type": "base64", "data": "AA"}}]
    events = log(
        RunStarted(run_id="r1", prompt="p"),
        TextCompleted(run_id="r1", message_id="m1", text="Looking."),
        ToolCallStarted(run_id="r1", tool_call_id="t1", tool_name="shot", input={}),
        ToolCallSucceeded(run_id="r1", tool_call_id="t1", output=blocks),
        ToolCallStarted(run_id="r1", tool_call_id="t2", tool_name="Bash", message_id="m1"),
        ToolCallSucceeded(run_id="r1", tool_call_id="t2", output={"stdout": "x"}),
    )
    lines = transcript_lines(events, session_id="s", agent_session="a", cwd="/w")

    assert [b["id"] for b in lines[1]["message"]["content"][1:]] == ["t1", "t2"]
    assert [r["content"] for r in lines[2]["message"]["content"]] == [blocks, '{"stdout": "x"}']


def test_an_empty_log_has_no_transcript() -> None:
    assert transcript_lines(log(SessionCreated()), session_id="s", agent_session="a", cwd="/") == []


def test_the_agent_session_id_is_a_stable_uuid_per_session() -> None:
    assert agent_session_id("s-1") == agent_session_id("s-1") != agent_session_id("s-2")
    assert len(agent_session_id("s-1")) == 36


# -- recovery of an abandoned run -------------------------------------------------------------


def test_an_abandoned_run_gets_its_tool_calls_failed_then_run_abandoned() -> None:
    events = log(
        SessionCreated(),
        RunStarted(run_id="r1", prompt="p"),
        ToolCallStarted(run_id="r1", tool_call_id="t1", tool_name="a"),
        ToolCallStarted(run_id="r1", tool_call_id="t2", tool_name="b"),
        ToolCallSucceeded(run_id="r1", tool_call_id="t1", output="ok"),
        ToolCallStarted(run_id="r1", tool_call_id="t3", tool_name="c"),
    )

    active, dangling = running_run(events)
    closing = recovery_events(events)

    assert active == "r1"
    assert [c.tool_call_id for c in dangling] == ["t2", "t3"]
    assert closing == [
        ToolCallFailed(
            run_id="r1",
            tool_call_id="t2",
            error_text=INTERRUPTED_BY_OWNER_LOSS,
            source="runner",
            interrupted=True,
        ),
        ToolCallFailed(
            run_id="r1",
            tool_call_id="t3",
            error_text=INTERRUPTED_BY_OWNER_LOSS,
            source="runner",
            interrupted=True,
        ),
        RunAbandoned(run_id="r1", reason=closing[-1].reason),  # type: ignore[attr-defined]
    ]


def test_a_session_whose_runs_all_ended_needs_no_recovery() -> None:
    events = log(SessionCreated(), *FIRST_RUN[1:])
    assert running_run(events) == (None, [])
    assert recovery_events(events) == []
    assert recovery_events(log(SessionCreated())) == []
