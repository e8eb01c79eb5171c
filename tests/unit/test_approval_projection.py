"""Approvals in the UI projection and the UI message stream: the AI SDK 7 part states, and
the client's message equal to the projection's in both ways a client follows a continuation
(useChat's approval POST continuing the message, and a resumed stream rebuilding it)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import example, given, settings

from agentlog.domain.events import (
    RecordedEvent,
    RunAbandoned,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    StepStarted,
    TextCompleted,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallDenied,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.rules.approvals import approvals
from agentlog.domain.rules.open_work import open_work
from agentlog.infra.agent.recovery.recovery_events import recovery_events
from agentlog.projections import sessions
from agentlog.projections.ui_messages import fold, to_ui_messages
from agentlog.projections.ui_stream import continued_runs, run_chunks
from agentlog.projections.verification import verify_session
from tests.strategies import record, session_logs
from tests.support.ai_sdk_client import (
    add_tool_approval_response,
    as_projected,
    continue_message,
    resume,
)

R, C = "run1", "run2"
CALL, APPROVAL = "toolu_1", "approval_toolu_1"
NAME = "mcp__demo__publish"


def first_turn(*, ended: bool = True) -> list[SessionEvent]:
    events: list[SessionEvent] = [
        SessionCreated(),
        RunStarted(run_id=R, prompt="publish it"),
        StepStarted(run_id=R, message_id="m1"),
        TextCompleted(run_id=R, message_id="m1", text="I'll publish that."),
        ToolCallStarted(run_id=R, tool_call_id=CALL, tool_name=NAME, input={"text": "hi"}),
        ToolApprovalRequested(
            run_id=R,
            approval_id=APPROVAL,
            tool_call_id=CALL,
            tool_name=NAME,
            input={"text": "hi"},
            reason="needs approval",
        ),
    ]
    if ended:
        events.append(
            RunFinished(run_id=R, stop_reason="tool_deferred", deferred_tool_call_id=CALL)
        )
    return events


def answered(approved: bool, reason: str | None = None) -> ToolApprovalResponded:
    return ToolApprovalResponded(
        run_id=R, approval_id=APPROVAL, tool_call_id=CALL, approved=approved, reason=reason
    )


def continuation(approved: bool) -> list[SessionEvent]:
    end: SessionEvent = (
        ToolCallSucceeded(run_id=C, tool_call_id=CALL, output="published: hi")
        if approved
        else ToolCallDenied(run_id=C, tool_call_id=CALL, reason="The user denied this tool call.")
    )
    return [
        RunStarted(run_id=C, prompt="", continues_run_id=R),
        end,
        StepStarted(run_id=C, message_id="m2"),
        TextCompleted(run_id=C, message_id="m2", text="Done." if approved else "Not allowed."),
        RunFinished(run_id=C, stop_reason="end_turn"),
    ]


def message_of(events: list[SessionEvent], *, run_active: bool = False) -> dict[str, Any]:
    messages = to_ui_messages(fold(record("s", events)), run_active=run_active)
    return next(m for m in messages if m["id"] == R)


def tool_part(message: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in message["parts"] if p.get("toolCallId") == CALL)


def test_a_pending_approval_is_approval_requested_and_never_hydrated_as_dangling() -> None:
    for events in (first_turn(), [*first_turn(ended=False), RunAbandoned(run_id=R)]):
        part = tool_part(message_of(events))
        assert part == {
            "type": "dynamic-tool",
            "toolName": NAME,
            "toolCallId": CALL,
            "state": "approval-requested",
            "input": {"text": "hi"},
            "approval": {"id": APPROVAL},
        }
    # Not even with no run at all in the log after it (the server died mid-grace, unswept).
    assert tool_part(message_of(first_turn(ended=False)))["state"] == "approval-requested"


def test_the_session_awaits_approval_holding_no_run_and_recovery_leaves_the_call_alone() -> None:
    logged = record("s", first_turn())
    summary = sessions.fold(logged)["s"]
    assert summary.status == "awaiting_approval" and summary.active_run_id is None
    crashed = record("s", first_turn(ended=False))
    # A dead owner's run is abandoned; the call it parked is not failed.
    closing = recovery_events(crashed)
    assert [type(e) for e in closing] == [RunAbandoned]
    assert open_work(crashed).waiting_calls() == {}
    after = sessions.fold(record("s", [*first_turn(ended=False), *closing]))["s"]
    assert after.status == "awaiting_approval"
    assert [a.request.approval_id for a in approvals(crashed).pending()] == [APPROVAL]
    assert verify_session(record("s", first_turn())) == []


@pytest.mark.parametrize("approved", [True, False])
def test_the_part_goes_approval_responded_then_output_available_or_output_denied(
    approved: bool,
) -> None:
    events = [*first_turn(), answered(approved, "ok" if approved else "no")]
    part = tool_part(message_of(events))
    assert part["state"] == "approval-responded"
    assert part["approval"] == {
        "id": APPROVAL,
        "approved": approved,
        "reason": part["approval"]["reason"],
    }
    events += continuation(approved)
    message = message_of(events)
    part = tool_part(message)
    if approved:
        assert part["state"] == "output-available" and part["output"] == "published: hi"
    else:
        assert part["state"] == "output-denied" and "output" not in part
    assert part["approval"]["approved"] is approved
    # One assistant message holds both turns; no user message for the continuation.
    messages = to_ui_messages(fold(record("s", events)), run_active=False)
    assert [m["id"] for m in messages] == [f"{R}:user", R]
    assert message["metadata"]["status"] == "finished"
    assert [p["type"] for p in message["parts"]].count("step-start") == 2
    assert verify_session(record("s", events)) == []
    assert sessions.fold(record("s", events))["s"].status == "idle"


@pytest.mark.parametrize("approved", [True, False])
@pytest.mark.parametrize("crashed", [False, True])
def test_the_client_message_equals_the_projection_on_both_ways_of_following(
    approved: bool, crashed: bool
) -> None:
    turn = first_turn(ended=not crashed)
    if crashed:
        turn.append(RunAbandoned(run_id=R, reason="the server stopped"))
    before = record("s", turn)
    # useChat streamed the first turn, then the person answered in the chat.
    chat = resume(run_chunks(before, R)).message
    assert chat is not None
    assert as_projected(chat) == message_of(turn)
    chat = add_tool_approval_response(chat, APPROVAL, approved, "because")
    events = [*turn, answered(approved, "because"), *continuation(approved)]
    logged = record("s", events)
    assert as_projected(chat) == message_of(events[: len(turn) + 1])
    # The approval POST streams the continuation, continuing the chat's message.
    streamed = continue_message(chat, run_chunks(logged, C))
    assert streamed.status == "ready"
    assert as_projected(streamed.message) == message_of(events)
    # A resumed stream (GET /stream) replays the whole message from empty.
    assert continued_runs(logged, C) == [R]
    replayed = resume(run_chunks(logged, C, earlier=[R]))
    assert as_projected(replayed.message) == message_of(events)


def test_an_answer_within_the_grace_streams_in_the_same_turn() -> None:
    events = [
        *first_turn(ended=False),
        answered(True),
        ToolCallSucceeded(run_id=R, tool_call_id=CALL, output="published: hi"),
        RunFinished(run_id=R, stop_reason="end_turn"),
    ]
    result = resume(run_chunks(record("s", events), R))
    kinds = [c["type"] for c in run_chunks(record("s", events), R)]
    assert "tool-approval-request" in kinds and "tool-approval-response" in kinds
    assert as_projected(result.message) == message_of(events)


# -- random logs with approvals --------------------------------------------------------------


def chains(events: list[RecordedEvent]) -> dict[str, list[str]]:
    """Each message's runs: the run that wrote it first, then the runs that continued it."""
    found: dict[str, list[str]] = {}
    message_of: dict[str, str] = {}
    for recorded in events:
        event = recorded.event
        if isinstance(event, RunStarted) and event.run_id:
            root = message_of.get(event.continues_run_id or "", event.run_id)
            message_of[event.run_id] = root
            found.setdefault(root, []).append(event.run_id)
    return found


@settings(max_examples=300, deadline=None)
@given(session_logs(approvals=True))
def test_for_random_logs_with_approvals_a_replayed_message_equals_the_projection(
    events: list[RecordedEvent],
) -> None:
    projected = {
        m["id"]: m for m in to_ui_messages(fold(events), run_active=False) if "metadata" in m
    }
    for message_id, runs in chains(events).items():
        *earlier, last = runs
        assert continued_runs(events, last) == earlier
        result = resume(run_chunks(events, last, earlier=earlier))
        assert as_projected(result.message) == projected[message_id]


@settings(max_examples=300, deadline=None)
@given(session_logs(approvals=True))
def test_for_random_logs_with_approvals_the_continued_stream_continues_the_chats_message(
    events: list[RecordedEvent],
) -> None:
    """useChat's path: the chat holds the message as the first turn's stream left it, answers
    (addToolApprovalResponse), and the continuation's stream continues that message."""
    for message_id, runs in chains(events).items():
        if len(runs) < 2:
            continue
        first, continuation = runs[0], runs[1]
        upto = next(
            i
            for i, r in enumerate(events)
            if isinstance(r.event, RunStarted) and r.event.run_id == continuation
        )
        started = events[upto].event
        if isinstance(started, RunStarted) and started.resumed_after_crash:
            continue  # continued after its server died, not after an answer: nothing answered
        before = events[:upto]
        answered_at = max(
            i
            for i, r in enumerate(before)
            if isinstance(r.event, ToolApprovalResponded) and r.event.run_id == first
        )
        response = before[answered_at].event
        assert isinstance(response, ToolApprovalResponded)
        chat = resume(run_chunks(before[:answered_at], first)).message
        assert chat is not None
        chat = add_tool_approval_response(
            chat, response.approval_id, response.approved, response.reason
        )
        after = events[
            : upto
            + 1
            + next(
                (i for i, r in enumerate(events[upto + 1 :]) if isinstance(r.event, RunStarted)),
                len(events) - upto - 1,
            )
        ]
        streamed = continue_message(chat, run_chunks(after, continuation))
        expected = next(
            m for m in to_ui_messages(fold(after), run_active=False) if m["id"] == message_id
        )
        assert as_projected(streamed.message) == expected


def names(message: str, tool_call_id: str) -> bool:
    """Whether a problem's message names this call: the whole id, not the start of a longer
    one (`s-toolu3` is not named by a line about `s-toolu30`)."""
    return re.search(rf"{re.escape(tool_call_id)}(?![\w-])", message) is not None


# An approval answered within the grace, then another run that crashed with a call of its own
# open: verify rightly reports `s-toolu30`, whose id begins with the asked call's `s-toolu3`
# (the generator numbers ids per session, so the first approval's call is `s-toolu3`).
ASKED_THEN_A_CRASH = record(
    "s",
    [
        SessionCreated(),
        RunStarted(run_id="s-run1", prompt="publish it"),
        StepStarted(run_id="s-run1", message_id="s-msg2"),
        ToolCallStarted(run_id="s-run1", tool_call_id="s-toolu3", tool_name=NAME, input={}),
        ToolApprovalRequested(
            run_id="s-run1",
            approval_id="approval_s-toolu3",
            tool_call_id="s-toolu3",
            tool_name=NAME,
            input={},
            reason="needs approval",
        ),
        ToolApprovalResponded(
            run_id="s-run1",
            approval_id="approval_s-toolu3",
            tool_call_id="s-toolu3",
            approved=False,
        ),
        ToolCallDenied(run_id="s-run1", tool_call_id="s-toolu3", reason="The user denied this."),
        RunFinished(run_id="s-run1", stop_reason="end_turn"),
        RunStarted(run_id="s-run26", prompt="go on"),
        StepStarted(run_id="s-run26", message_id="s-msg27"),
        ToolCallStarted(run_id="s-run26", tool_call_id="s-toolu30", tool_name="Bash", input={}),
        RunFailed(run_id="s-run26", error="model error"),
    ],
)


@settings(max_examples=300, deadline=None)
@given(session_logs(approvals=True))
@example(ASKED_THEN_A_CRASH)
def test_for_random_logs_with_approvals_the_log_verifies_and_waiting_parts_stay_asked(
    events: list[RecordedEvent],
) -> None:
    folded = approvals(events)
    asked = {a.request.tool_call_id for a in folded.by_id.values()}
    # Random logs hold crashes verify rightly reports; none may concern an approval.
    for problem in verify_session(events):
        assert problem.check != "approvals", problem
        assert not any(names(problem.message, call) for call in asked), problem
    parts = {
        p["toolCallId"]: p
        for m in to_ui_messages(fold(events), run_active=False)
        for p in m["parts"]
        if "toolCallId" in p
    }
    for approval in folded.pending():
        part = parts[approval.request.tool_call_id]
        assert part["state"] == "approval-requested"
        assert part["approval"] == {"id": approval.request.approval_id}
    summary = sessions.fold(events)["s"]
    if folded.pending():
        assert summary.status == "awaiting_approval" and summary.active_run_id is None
    assert not set(open_work(events).waiting_calls()) & asked  # parked, not waiting
