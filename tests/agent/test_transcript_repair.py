"""Repairing a mirrored transcript from the log: pure functions. The shapes are the CLI's own
(a tool_result line per call, the `hook_deferred_tool` attachment); that the real CLI resumes
from them is shown end to end in tests/agent/test_agent_resume.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agentlog.domain.events import (
    Event,
    RecordedEvent,
    RunAbandoned,
    RunStarted,
    StepStarted,
    ToolApprovalRequested,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.agent.recovery.recovery_events import INTERRUPTED_BY_OWNER_LOSS
from agentlog.infra.agent.transcripts.conversion import INTERRUPTED_TEXT
from agentlog.infra.agent.transcripts.repair import missing_lines, transcript_calls, unexplained

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def log(*events: Event) -> list[RecordedEvent]:
    return [
        RecordedEvent(session_id="s", seq=i, position=i, time=T0, event=e)  # type: ignore[arg-type]
        for i, e in enumerate(events, start=1)
    ]


def line(kind: str, uid: str, parent: str | None, **body: Any) -> dict[str, Any]:
    return {"type": kind, "uuid": uid, "parentUuid": parent, "isSidechain": False, **body}


def use(call_id: str, name: str, **input_: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": input_}


def result(call_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": "ok"}


# Two parallel calls as the CLI writes them (one assistant line per block), one result so far.
MIRRORED = [
    {"type": "queue-operation", "operation": "enqueue"},  # bookkeeping, no uuid
    line("user", "u1", None, message={"role": "user", "content": "go"}),
    line("assistant", "a1", "u1", message={"role": "assistant", "content": [use("t1", "Read")]}),
    line("assistant", "a2", "a1", message={"role": "assistant", "content": [use("t2", "Bash")]}),
    line("user", "u2", "a2", message={"role": "user", "content": [result("t1")]}),
    {"type": "last-prompt", "lastPrompt": "go"},
]


def test_the_transcripts_open_calls_are_those_without_a_result_or_a_deferral() -> None:
    calls = transcript_calls(MIRRORED)
    assert list(calls.uses) == ["t1", "t2"]
    assert calls.open == ["t2"]
    assert calls.last_uuid == "u2"


def test_a_call_the_log_ended_gets_its_result_chained_after_the_last_line() -> None:
    recent = log(
        RunStarted(run_id="r1", prompt="go"),
        ToolCallStarted(run_id="r1", tool_call_id="t2", tool_name="Bash"),
        ToolCallFailed(
            run_id="r1", tool_call_id="t2", error_text=INTERRUPTED_BY_OWNER_LOSS, interrupted=True
        ),
        RunAbandoned(run_id="r1", reason="gone"),
    )

    [added] = missing_lines(MIRRORED, recent, agent_session="agent", cwd="/w")

    assert added["type"] == "user"
    assert added["parentUuid"] == "u2"
    assert added["sessionId"] == "agent"
    assert added["message"] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "t2",
                "content": INTERRUPTED_BY_OWNER_LOSS,
                "is_error": True,
            }
        ],
    }
    # Derived from the agent session and the call: a repair appended twice lands once.
    again = missing_lines(MIRRORED, recent, agent_session="agent", cwd="/w")
    assert again[0]["uuid"] == added["uuid"]
    assert missing_lines([*MIRRORED, added], recent, agent_session="agent", cwd="/w") == []


def test_a_call_waiting_on_an_approval_gets_the_clis_deferral_attachment() -> None:
    recent = log(
        RunStarted(run_id="r1", prompt="go"),
        ToolCallStarted(run_id="r1", tool_call_id="t2", tool_name="Bash", input={"c": 1}),
        ToolApprovalRequested(run_id="r1", approval_id="ap", tool_call_id="t2", tool_name="Bash"),
        RunAbandoned(run_id="r1", reason="gone"),
    )

    [added] = missing_lines(MIRRORED, recent, agent_session="agent", cwd="/w")

    assert added["type"] == "attachment"
    assert added["attachment"] == {
        "type": "hook_deferred_tool",
        "toolUseID": "t2",
        "toolName": "Bash",
        "toolInput": {},
    }
    deferred = [*MIRRORED, added]
    assert transcript_calls(deferred).open == []


def test_a_call_the_recent_log_says_nothing_of_needs_the_whole_log() -> None:
    quiet = log(RunStarted(run_id="r2", prompt="next"))
    assert unexplained(MIRRORED, quiet) == ["t2"]
    assert missing_lines(MIRRORED, quiet, agent_session="a", cwd="/w") == []

    whole = log(
        RunStarted(run_id="r1", prompt="go"),
        ToolCallStarted(run_id="r1", tool_call_id="t2", tool_name="Bash"),
        ToolCallSucceeded(run_id="r1", tool_call_id="t2", output="listing"),
        RunStarted(run_id="r2", prompt="next"),
    )
    [ended] = missing_lines(MIRRORED, whole, agent_session="a", cwd="/w", whole_log=True)
    assert ended["message"]["content"][0]["content"] == "listing"
    # A call the log never recorded at all: it never ran, as far as the log knows.
    [never] = missing_lines(MIRRORED, quiet, agent_session="a", cwd="/w", whole_log=True)
    assert never["message"]["content"][0]["content"] == INTERRUPTED_TEXT


def test_a_transcript_in_step_with_the_log_needs_nothing() -> None:
    complete = [
        *MIRRORED,
        line("user", "u3", "u2", message={"role": "user", "content": [result("t2")]}),
    ]
    recent = log(RunStarted(run_id="r1", prompt="go"))
    assert unexplained(complete, recent) == []
    assert missing_lines(complete, recent, agent_session="a", cwd="/w") == []


def test_a_call_the_log_started_that_never_reached_the_store_is_added_with_its_deferral() -> None:
    """The server died before the mirror flushed the call's assistant line: the hook had
    already recorded the call and its approval request. Without the line, a resumed CLI asks
    the model again, which asks for a new call; the waiting one would never be settled."""
    complete = [
        *MIRRORED,
        line("user", "u3", "u2", message={"role": "user", "content": [result("t2")]}),
    ]
    recent = log(
        RunStarted(run_id="r1", prompt="go"),
        ToolCallStarted(run_id="r1", tool_call_id="t2", tool_name="Bash"),
        StepStarted(run_id="r1", message_id="m2", model="claude-x"),
        ToolCallStarted(
            run_id="r1", tool_call_id="t3", tool_name="Publish", input={"t": 1}, message_id="m2"
        ),
        ToolApprovalRequested(run_id="r1", approval_id="ap", tool_call_id="t3", tool_name="P"),
        ToolCallStarted(
            run_id="r1", tool_call_id="sub", tool_name="Read", parent_tool_call_id="t9"
        ),
        RunAbandoned(run_id="r1", reason="gone"),
    )

    assistant, deferral = missing_lines(complete, recent, agent_session="a", cwd="/w")

    assert assistant["type"] == "assistant" and assistant["parentUuid"] == "u3"
    assert assistant["message"]["id"] == "m2"
    assert assistant["message"]["model"] == "claude-x"
    assert assistant["message"]["content"] == [use("t3", "Publish", t=1)]
    assert deferral["parentUuid"] == assistant["uuid"]
    assert deferral["attachment"]["toolUseID"] == "t3"
    assert transcript_calls([*complete, assistant, deferral]).open == []


def test_a_deferred_call_that_ran_before_the_transcript_caught_up_gets_its_result() -> None:
    # The continuation ran the approved call and its server died before the CLI's result line
    # was mirrored: the transcript still shows the deferral, the log the call's end. Without
    # the result a resumed CLI would ask for the call again, and it would run twice.
    deferral = line(
        "attachment",
        "d2",
        "u2",
        attachment={"type": "hook_deferred_tool", "toolUseID": "t2", "toolName": "Bash"},
    )
    recent = log(
        RunStarted(run_id="r2", prompt="", continues_run_id="r1"),
        ToolCallSucceeded(run_id="r2", tool_call_id="t2", output="done"),
        RunAbandoned(run_id="r2", reason="gone"),
    )

    [added] = missing_lines([*MIRRORED, deferral], recent, agent_session="agent", cwd="/w")

    assert added["type"] == "user" and added["parentUuid"] == "d2"
    assert added["message"]["content"][0]["tool_use_id"] == "t2"
    assert "is_error" not in added["message"]["content"][0]
    # A deferred call the log has not ended still waits: nothing to add.
    waiting = log(RunStarted(run_id="r2", prompt="", continues_run_id="r1"))
    assert missing_lines([*MIRRORED, deferral], waiting, agent_session="agent", cwd="/w") == []
