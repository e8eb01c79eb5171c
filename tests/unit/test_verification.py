"""The log's invariants as a pure function over recorded events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from msgspec.structs import replace

from agentlog.domain.events import (
    CustomEventRecorded,
    HeartbeatRecorded,
    RecordedEvent,
    RunCancelled,
    RunStarted,
    SessionCreated,
    SessionEvent,
    TextDelta,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.projections import sessions, ui_messages
from agentlog.projections.verification import Problem, fold_in_pieces, verify_session
from tests.integration.projection_helpers import a_run

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def recorded(events: Sequence[SessionEvent], session_id: str = "s") -> list[RecordedEvent]:
    return [
        RecordedEvent(
            session_id=session_id,
            seq=i,
            position=i,
            time=T0 + timedelta(seconds=i),
            event=event,
        )
        for i, event in enumerate(events, start=1)
    ]


def lines(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def test_a_finished_run_and_an_active_run_with_a_waiting_tool_call_are_fine() -> None:
    log = recorded(
        [
            SessionCreated(),
            *a_run("r1"),
            RunStarted(run_id="r2", prompt="more"),
            ToolCallStarted(run_id="r2", tool_call_id="w", tool_name="Bash"),
            HeartbeatRecorded(run_id="r2"),
        ]
    )
    assert verify_session(log, recorded_head=len(log)) == []


def test_events_without_a_run_id_belong_to_the_open_run() -> None:
    log = recorded(
        [
            SessionCreated(),
            RunStarted(prompt="go"),
            ToolCallStarted(tool_call_id="t", tool_name="Read"),
            RunCancelled(),
        ]
    )
    assert lines(verify_session(log)) == [
        "session s: tool call t (Read, seq 3) has no terminal event and its run run:2 ended "
        "at seq 4"
    ]


def test_a_tool_call_outside_any_run_must_be_resolved() -> None:
    log = recorded([SessionCreated(), ToolCallStarted(tool_call_id="t", tool_name="Read")])
    assert lines(verify_session(log)) == [
        "session s: tool call t (Read, seq 2) has no terminal event and belongs to no run"
    ]
    resolved = recorded([*(r.event for r in log), ToolCallSucceeded(tool_call_id="t")])
    assert verify_session(resolved) == []


def test_a_run_ending_twice_or_never_started_and_a_run_started_twice() -> None:
    log = recorded(
        [
            SessionCreated(),
            RunStarted(run_id="r", prompt="go"),
            RunCancelled(run_id="r"),
            RunCancelled(run_id="r"),
            RunCancelled(run_id="ghost"),
            RunStarted(run_id="r", prompt="again"),
        ]
    )
    assert lines(verify_session(log)) == [
        "session s: seq 5: run_cancelled for run ghost that never started",
        "session s: run r started twice (seqs 2, 6)",
        "session s: run r (seq 2) has 2 terminal events (seqs 3 run_cancelled, 4 run_cancelled)",
    ]


def test_missing_seqs_are_reported_as_ranges_with_the_head() -> None:
    log = [r for r in recorded([SessionCreated(), *a_run("r1")]) if r.seq not in (4, 5, 9)]
    problems = verify_session(log, recorded_head=13)
    assert lines(problems)[:4] == [
        "session s: seqs 4-5 missing (head 13)",
        "session s: seq 9 missing (head 13)",
        "session s: seqs 12-13 missing (head 13)",
        "session s: tool call r1-t1 (Bash, seq 8) has no terminal event and its run r1 ended "
        "at seq 11",
    ]
    assert {p.check for p in problems} == {"seqs", "tool_calls"}


def test_an_empty_log_with_a_head_is_all_missing() -> None:
    assert lines(verify_session([], session_id="gone", recorded_head=3)) == [
        "session gone: seqs 1-3 missing (head 3)"
    ]


def test_the_fold_in_pieces_equals_the_whole_fold() -> None:
    log = recorded([SessionCreated(), *a_run("r1", tools=5, words=40), *a_run("r2")])
    assert fold_in_pieces(log) == ui_messages.fold(log)


def test_a_stored_projection_behind_the_log_is_compared_at_its_own_seq() -> None:
    log = recorded([SessionCreated(), *a_run("r1"), CustomEventRecorded(name="later")])
    behind = ui_messages.fold(log[:5])
    summary = sessions.fold(log[:5])["s"]
    assert verify_session(log, behind, stored_summary=summary) == []


def test_a_stored_projection_that_differs_or_is_ahead_is_reported() -> None:
    log = recorded([SessionCreated(), *a_run("r1")])
    wrong = ui_messages.fold(
        [
            *log[:3],
            replace(
                log[3], event=TextDelta(run_id="r1", message_id="r1-m", block_index=0, delta="X")
            ),
        ]
    )
    assert lines(verify_session(log, wrong)) == [
        "session s: the stored UI projection (at seq 4) differs from a fresh fold: message 1 "
        "(r1) part 1 differs"
    ]
    ahead = replace(ui_messages.fold(log), last_seq=99)
    summary = replace(sessions.fold(log)["s"], status="running")
    assert lines(verify_session(log, ahead, stored_summary=summary)) == [
        "session s: the stored UI projection is at seq 99, beyond the log's head 11",
        "session s: the stored session summary (at seq 11) differs from a fresh fold: "
        "status 'running', expected 'idle'",
    ]


# -- lifecycle ------------------------------------------------------------------------------


def test_an_event_after_a_tombstone_is_reported() -> None:
    from agentlog.domain.events import SessionDeleted

    alive = [
        RecordedEvent(session_id="s", seq=s, position=s, time=T0, event=e)
        for s, e in [
            (5, SessionDeleted(events_removed=4)),
            (6, CustomEventRecorded(name="undead")),
            (7, RunStarted(run_id="r9", prompt="again")),
        ]
    ]
    problems = verify_session(alive)
    assert [p.check for p in problems] == ["lifecycle"]
    assert lines(problems) == ["session s: 2 events after its tombstone at seq 5 (seqs 6-7)"]
    assert verify_session(alive[:1]) == []


def test_an_answered_approval_that_nothing_acts_on_is_reported() -> None:
    from agentlog.domain.events import (
        RunAbandoned,
        RunFinished,
        ToolApprovalRequested,
        ToolApprovalResponded,
    )

    asked = [
        SessionCreated(),
        RunStarted(run_id="r1", prompt="publish"),
        ToolCallStarted(run_id="r1", tool_call_id="c", tool_name="publish"),
        ToolApprovalRequested(run_id="r1", approval_id="a", tool_call_id="c", tool_name="publish"),
        RunFinished(run_id="r1", stop_reason="tool_deferred", deferred_tool_call_id="c"),
    ]
    answer = ToolApprovalResponded(run_id="r1", approval_id="a", tool_call_id="c", approved=True)
    # Waiting for a person, or answered with its continuation under way: fine.
    assert verify_session(recorded(asked)) == []
    continuing = [*asked, answer, RunStarted(run_id="r2", prompt="", continues_run_id="r1")]
    assert verify_session(recorded(continuing)) == []
    # Answered, and no run acts on it: the session is stuck.
    stuck = recorded([*asked, answer])
    assert lines(verify_session(stuck)) == [
        "session s: approval a was answered at seq 6 but its tool call c never ended "
        "and no run is active to act on it"
    ]
    # Its continuation died and nobody continued again: stuck as well.
    died = recorded([*continuing, RunAbandoned(run_id="r2", reason="gone")])
    assert [p.check for p in verify_session(died)] == ["approvals"]
