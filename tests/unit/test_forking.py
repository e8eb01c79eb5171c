"""Where a session may be forked, and the fields a copy takes: the pure rules of
agentlog.domain.rules.forking."""

from __future__ import annotations

import pytest

from agentlog.domain.errors import ForkApprovalPending, ForkInsideRun, ForkPointOutOfRange
from agentlog.domain.events import (
    ConversationRewound,
    CustomEventRecorded,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionEvent,
    TextCompleted,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.rules.forking import check_fork_point, fork_overrides
from tests.strategies import record


def check(events: list[SessionEvent], at_seq: int) -> None:
    log = record("s", events)
    check_fork_point("s", at_seq, len(log), log[:at_seq])


def test_every_seq_outside_a_run_is_a_fork_point_and_none_inside() -> None:
    events: list[SessionEvent] = [
        SessionCreated(),  # 1
        RunStarted(run_id="r1", prompt="p"),  # 2
        TextCompleted(run_id="r1", message_id="m", text="t"),  # 3
        RunFinished(run_id="r1"),  # 4
        CustomEventRecorded(name="between"),  # 5
    ]
    for at_seq in (1, 4, 5):
        check(events, at_seq)
    for at_seq in (2, 3):
        with pytest.raises(ForkInsideRun) as refused:
            check(events, at_seq)
        assert (refused.value.details["run_id"], refused.value.details["fork_before"]) == ("r1", 1)
    for at_seq in (0, 6):
        with pytest.raises(ForkPointOutOfRange):
            check(events, at_seq)


def test_a_run_superseded_without_an_end_is_closed_by_the_next_run() -> None:
    events: list[SessionEvent] = [
        SessionCreated(),  # 1
        RunStarted(run_id="dead", prompt="p"),  # 2: its process died, nobody recorded the end
        RunStarted(run_id="r2", prompt="q"),  # 3
        RunFinished(run_id="r2"),  # 4
    ]
    with pytest.raises(ForkInsideRun) as refused:
        check(events, 2)
    assert refused.value.details["run_id"] == "dead"
    check(events, 4)


def test_a_call_waiting_on_its_approval_refuses_until_it_ended() -> None:
    events: list[SessionEvent] = [
        SessionCreated(),  # 1
        RunStarted(run_id="r1", prompt="publish"),  # 2
        ToolCallStarted(run_id="r1", tool_call_id="c", tool_name="publish"),  # 3
        ToolApprovalRequested(run_id="r1", approval_id="a", tool_call_id="c", tool_name="p"),
        RunFinished(run_id="r1", deferred_tool_call_id="c"),  # 5
        ToolApprovalResponded(approval_id="a", tool_call_id="c", approved=True),  # 6
        RunStarted(run_id="r2", prompt="", continues_run_id="r1"),  # 7
        ToolCallSucceeded(run_id="r2", tool_call_id="c", output="ok"),  # 8
        RunFinished(run_id="r2"),  # 9
    ]
    for at_seq in (5, 6):
        with pytest.raises(ForkApprovalPending) as refused:
            check(events, at_seq)
        assert refused.value.details["approval_ids"] == ["a"]
        assert refused.value.details["fork_before"] == 1
    with pytest.raises(ForkInsideRun):
        check(events, 8)  # inside the continuation
    check(events, 9)


def test_a_copy_names_the_fork_agent_session_and_a_rewind_is_renumbered() -> None:
    def new_seq_of(seq: int) -> int:
        return {7: 3}[seq]

    assert fork_overrides(
        RunStarted(run_id="r", prompt="p", agent_session="old"),
        agent_session="new",
        new_seq_of=new_seq_of,
    ) == {"agent_session": "new"}
    assert fork_overrides(
        ConversationRewound(to_seq=7, agent_session="old"),
        agent_session="new",
        new_seq_of=new_seq_of,
    ) == {"agent_session": "new", "to_seq": 3}
    assert fork_overrides(SessionCreated(), agent_session="new", new_seq_of=new_seq_of) == {}
