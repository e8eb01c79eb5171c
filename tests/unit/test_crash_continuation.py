"""The rule that decides whether a turn whose server died goes on (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime

from agentlog.domain.events import (
    Event,
    RecordedEvent,
    RunAbandoned,
    RunStarted,
    ToolApprovalRequested,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.rules.crash_continuation import (
    INTERRUPTED_BY_RESTART,
    crash_continuation,
)
from agentlog.infra.agent.run.policy import ToolPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def log(*events: Event) -> list[RecordedEvent]:
    return [
        RecordedEvent(session_id="s", seq=i, position=i, time=T0, event=e)  # type: ignore[arg-type]
        for i, e in enumerate(events, start=10)
    ]


def call(call_id: str, tool: str) -> ToolCallStarted:
    return ToolCallStarted(run_id="r1", tool_call_id=call_id, tool_name=tool, input={})


def dead_run(*events: Event, resumed: int = 0) -> list[RecordedEvent]:
    start = RunStarted(run_id="r1", prompt="go", agent_session="a1", resumed_after_crash=resumed)
    return log(start, *events)


def test_a_dead_run_goes_on_with_its_finished_call_kept_and_its_call_in_flight_interrupted() -> (
    None
):
    decision = crash_continuation(
        dead_run(
            call("done", "Bash"),
            ToolCallSucceeded(run_id="r1", tool_call_id="done", output="ok"),
            call("slow", "mcp__demo__slow_op"),
        ),
        max_continuations=2,
    )
    assert decision is not None
    assert decision.continues_run_id == "r1" and decision.resumed_after_crash == 1
    assert decision.agent_session == "a1"
    assert [c.tool_call_id for c in decision.interrupted] == ["slow"]
    closing = decision.closing("r2")
    assert [type(e) for e in closing] == [ToolCallFailed, RunAbandoned]
    failed = closing[0]
    assert isinstance(failed, ToolCallFailed)
    assert failed.tool_call_id == "slow" and failed.interrupted
    assert failed.error_text == INTERRUPTED_BY_RESTART
    assert closing[1].run_id == "r1" and "r2" in closing[1].reason  # type: ignore[attr-defined]


def test_a_turn_is_continued_at_most_max_continuations_times_in_a_row() -> None:
    assert crash_continuation(dead_run(resumed=1), max_continuations=2) is not None
    assert crash_continuation(dead_run(resumed=2), max_continuations=2) is None
    assert crash_continuation(dead_run(), max_continuations=0) is None


def test_nothing_is_continued_when_no_run_is_open_or_a_call_waits_on_a_person() -> None:
    assert crash_continuation([], max_continuations=2) is None
    ended = dead_run(RunAbandoned(run_id="r1", reason="x"))
    assert crash_continuation(ended, max_continuations=2) is None
    asking = dead_run(
        call("pub", "mcp__demo__publish"),
        ToolApprovalRequested(
            run_id="r1", approval_id="a", tool_call_id="pub", tool_name="p", input={}, reason="r"
        ),
    )
    assert crash_continuation(asking, max_continuations=2) is None


def test_a_tool_marked_not_to_be_retried_is_told_apart_and_refused_in_the_continuation() -> None:
    decision = crash_continuation(
        dead_run(call("pay", "mcp__shop__charge"), call("read", "Read")),
        max_continuations=2,
        no_retry_tools={"mcp__shop__charge"},
    )
    assert decision is not None and decision.not_again == {"mcp__shop__charge"}
    texts = {
        e.tool_call_id: e.error_text
        for e in decision.closing("r2")
        if isinstance(e, ToolCallFailed)
    }
    assert "may or may not have run" in texts["pay"] and "not to be retried" in texts["pay"]
    assert texts["read"] == INTERRUPTED_BY_RESTART
    policy = ToolPolicy().refusing_again(decision.not_again)
    assert policy.decide("mcp__shop__charge", {}) is not None
    assert policy.decide("Read", {}) is None
