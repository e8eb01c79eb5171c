"""The one rule for answering an approval (pure): once, the same answer again is a no-op, a
different one is refused, an unknown one is unknown, and an ended call cannot be answered."""

from __future__ import annotations

import pytest

from agentlog.domain.errors import ApprovalAlreadyAnswered, UnknownApproval
from agentlog.domain.events import (
    RunStarted,
    SessionCreated,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallFailed,
    ToolCallStarted,
)
from agentlog.domain.rules.approvals import answer, approval_id_for, approvals
from tests.strategies import record

APPROVAL = approval_id_for("toolu_1")
ASKED = [
    SessionCreated(),
    RunStarted(run_id="r", prompt="p"),
    ToolCallStarted(run_id="r", tool_call_id="toolu_1", tool_name="Bash"),
    ToolApprovalRequested(
        run_id="r", approval_id=APPROVAL, tool_call_id="toolu_1", tool_name="Bash"
    ),
]


def test_the_first_answer_is_recorded_and_names_the_call_and_its_run() -> None:
    event = answer(approvals(record("s", ASKED)), "s", APPROVAL, approved=True, reason="ok")
    assert event == ToolApprovalResponded(
        run_id="r", approval_id=APPROVAL, tool_call_id="toolu_1", approved=True, reason="ok"
    )


def test_the_same_answer_again_records_nothing_and_a_different_one_is_refused() -> None:
    first = answer(approvals(record("s", ASKED)), "s", APPROVAL, approved=False, reason=None)
    assert first is not None
    folded = approvals(record("s", [*ASKED, first]))
    assert answer(folded, "s", APPROVAL, approved=False, reason="again") is None
    with pytest.raises(ApprovalAlreadyAnswered, match="already denied"):
        answer(folded, "s", APPROVAL, approved=True, reason=None)
    assert folded.pending() == [] and [a.request.approval_id for a in folded.decided()] == [
        APPROVAL
    ]


def test_an_unknown_approval_and_an_ended_call_cannot_be_answered() -> None:
    with pytest.raises(UnknownApproval):
        answer(approvals(record("s", ASKED)), "s", "approval_x", approved=True, reason=None)
    ended = ToolCallFailed(run_id="r", tool_call_id="toolu_1", error_text="interrupted")
    folded = approvals(record("s", [*ASKED, ended]))
    assert folded.pending() == [] and folded.decided() == []
    with pytest.raises(ApprovalAlreadyAnswered, match="already ended"):
        answer(folded, "s", APPROVAL, approved=True, reason=None)
