"""The one fold that says which run and which tool calls a session's log leaves open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentlog.domain.events import (
    Event,
    RecordedEvent,
    RunAbandoned,
    RunFinished,
    RunStarted,
    SessionCreated,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.rules.external_events import (
    ToolCallOwnedByRun,
    ToolOutputInput,
    decide_external_events,
)
from agentlog.domain.rules.open_work import open_work

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def log(*events: Event) -> list[RecordedEvent]:
    return [
        RecordedEvent(session_id="s", seq=i, position=i, time=T0, event=e)  # type: ignore[arg-type]
        for i, e in enumerate(events, start=1)
    ]


def started(call: str, run: str = "r1") -> ToolCallStarted:
    return ToolCallStarted(run_id=run, tool_call_id=call, tool_name="Read", input={})


def test_a_run_is_open_from_its_start_until_its_terminal_event() -> None:
    events = log(SessionCreated(), RunStarted(run_id="r1", prompt="p"))
    work = open_work(events)
    assert (work.open_run_id, work.open_run_seq) == ("r1", 2)
    assert work.run_state("r1") == "running"
    assert work.run_state("r2") is None
    work = open_work([*events, *log(RunFinished(run_id="r1"))])
    assert work.open_run_id is None
    assert work.run_state("r1") == "ended"


def test_a_new_run_supersedes_an_open_one_and_calls_wait_until_their_first_end() -> None:
    work = open_work(
        log(
            SessionCreated(),
            RunStarted(run_id="r1", prompt="p"),
            started("a"),
            started("b"),
            ToolCallSucceeded(run_id="r1", tool_call_id="a", output=1),
            started("a"),  # a start after the end opens nothing
            RunStarted(run_id="r2", prompt="q"),
        )
    )
    assert work.open_run_id == "r2"
    assert work.waiting_calls() == {"b": "r1"}
    assert work.run_state("r1") == "running"  # superseded, never ended in the log


def test_a_terminal_event_for_another_run_leaves_the_open_run_open() -> None:
    work = open_work(
        log(RunStarted(run_id="r1", prompt="p"), RunAbandoned(run_id="r0", reason="late"))
    )
    assert work.open_run_id == "r1"
    assert work.run_state("r0") == "ended"


def test_a_tool_output_for_a_call_of_the_live_run_is_the_agents_unless_it_waits_outside() -> None:
    waiting = {"a": "r1", "b": "r0"}
    answer = [ToolOutputInput(tool_call_id="a", output=1)]
    with pytest.raises(ToolCallOwnedByRun):
        decide_external_events(answer, waiting, live_run="r1")
    # A call of a run that is no longer live, or one that waits for an outside answer.
    assert len(decide_external_events(answer, waiting, live_run="r2")) == 1
    assert len(decide_external_events(answer, waiting, live_run="r1", outside_answers={"a"})) == 1
    other = [ToolOutputInput(tool_call_id="b", output=1)]
    assert len(decide_external_events(other, waiting, live_run="r1")) == 1
