"""The log's invariants, checked over one session's events: a pure function, no I/O.

`verify_session(events, stored_state=None, ...)` returns every problem it finds, each a line an
operator can act on (`session abc: seq 7 missing (head 9)`):
- seqs: dense from 1 to the head, seq 1 is `session_created` and nothing else is; the head in
  the sessions table (when given) equals the log's last seq;
- runs: a run starts once and ends with at most one terminal event; a run that never ended
  while another started later is reported (its process died and nobody recorded
  `run_abandoned`); only the last run may still be active;
- tool calls: each `tool_call_started` has exactly one terminal event, unless its run is still
  active or its approval was asked (it waits for a person, or for the turn that continues
  after the answer); no terminal event without a start (before it, in seq order);
- approvals: each is answered at most once, and only after it was asked; an answered one is
  acted on (its call ends, or a run is still active to end it): a session is never left neither
  running, nor awaiting an answer, nor idle;
- lifecycle: nothing follows a deleted session's tombstone;
- projections: the UI fold equals itself folded in pieces (the fold must not depend on page
  boundaries), and a stored state or summary equals a fresh fold of the log up to its own
  checkpoint.

Events without a run id belong to the run open at that point, as in
agentlog.projections.ui_messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import cycle

import msgspec

from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    TOOL_TERMINAL_TYPES,
    RecordedEvent,
    RunStarted,
    SessionCreated,
    SessionDeleted,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallStarted,
)
from agentlog.projections import sessions, ui_messages
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.ui_messages import ConversationState

# Piece sizes for the chunked fold: many different page boundaries, a few folds per 100 events.
_PIECES = (1, 2, 3, 5, 8, 13, 21, 34, 55)


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One broken invariant; `str(problem)` is the report line."""

    session_id: str | None  # None for a problem of the whole log (its positions)
    check: str  # "positions", "seqs", "head", "runs", "tool_calls", "projection"
    message: str
    seq: int | None = None

    def __str__(self) -> str:
        where = "log" if self.session_id is None else f"session {self.session_id}"
        return f"{where}: {self.message}"


@dataclass
class _Run:
    start_seq: int
    ends: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Call:
    start_seq: int
    tool_name: str
    run_id: str | None
    ends: list[tuple[int, str]] = field(default_factory=list)


def verify_session(
    events: Sequence[RecordedEvent],
    stored_state: ConversationState | None = None,
    *,
    session_id: str | None = None,
    recorded_head: int | None = None,
    stored_summary: SessionSummary | None = None,
) -> list[Problem]:
    """Every broken invariant of one session's log (`events` as read, in seq order).

    `recorded_head` is the head the sessions table holds (None: not checked); `stored_state`
    and `stored_summary` are the stored projection rows (None: only the fold is checked).
    """
    sid = session_id if session_id is not None else (events[0].session_id if events else "?")
    problems: list[Problem] = []
    tombstone = next((r for r in events if isinstance(r.event, SessionDeleted)), None)
    if tombstone is not None:
        # A deleted session: its tombstone is all there is, by design, and nothing may follow
        # it (deletion is final); what came before it was removed, so no other check applies.
        after = [r.seq for r in events if r.seq > tombstone.seq]
        if after:
            problems.append(
                Problem(
                    session_id=sid,
                    check="lifecycle",
                    seq=after[0],
                    message=f"{len(after)} events after its tombstone at seq {tombstone.seq} "
                    f"({_seq_range(after[0], after[-1])})",
                )
            )
        return problems
    last = _check_seqs(sid, events, recorded_head, problems)
    _check_runs_and_tools(sid, events, problems)
    _check_projections(sid, events, last, stored_state, stored_summary, problems)
    return problems


# -- seqs ----------------------------------------------------------------------------------


def _seq_range(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seqs {first}-{last}"


def _check_seqs(
    sid: str, events: Sequence[RecordedEvent], recorded_head: int | None, problems: list[Problem]
) -> int:
    """Returns the log's last seq."""
    last_in_log = max((r.seq for r in events), default=0)
    head = max(last_in_log, recorded_head or 0)
    expected = 1
    for recorded in events:
        if recorded.seq > expected:
            problems.append(
                Problem(
                    session_id=sid,
                    check="seqs",
                    seq=expected,
                    message=f"{_seq_range(expected, recorded.seq - 1)} missing (head {head})",
                )
            )
        elif recorded.seq < expected:
            problems.append(
                Problem(
                    session_id=sid,
                    check="seqs",
                    seq=recorded.seq,
                    message=f"seq {recorded.seq} read again after seq {expected - 1}",
                )
            )
        expected = max(expected, recorded.seq + 1)
        is_created = isinstance(recorded.event, SessionCreated)
        if recorded.seq == 1 and not is_created:
            problems.append(
                Problem(
                    session_id=sid,
                    check="seqs",
                    seq=1,
                    message=f"seq 1 is {recorded.type}, not session_created",
                )
            )
        elif recorded.seq != 1 and is_created:
            problems.append(
                Problem(
                    session_id=sid,
                    check="seqs",
                    seq=recorded.seq,
                    message=f"seq {recorded.seq} is a second session_created",
                )
            )
    if recorded_head is not None:
        if recorded_head > last_in_log:
            problems.append(
                Problem(
                    session_id=sid,
                    check="seqs",
                    seq=last_in_log + 1,
                    message=f"{_seq_range(last_in_log + 1, recorded_head)} missing (head {head})",
                )
            )
        elif recorded_head < last_in_log:
            problems.append(
                Problem(
                    session_id=sid,
                    check="head",
                    seq=last_in_log,
                    message=(
                        f"the sessions table says head {recorded_head} but the log holds "
                        f"seqs up to {last_in_log}"
                    ),
                )
            )
    return last_in_log


# -- runs and tool calls -------------------------------------------------------------------


def _seqs(ends: list[tuple[int, str]]) -> str:
    return ", ".join(f"{seq} {kind}" for seq, kind in ends)


def _check_runs_and_tools(
    sid: str, events: Sequence[RecordedEvent], problems: list[Problem]
) -> None:
    runs: dict[str, _Run] = {}
    calls: dict[str, _Call] = {}
    asked: dict[str, str] = {}  # approval id -> its tool call
    answered: dict[str, int] = {}  # approval id -> seq of its answer
    open_run: str | None = None

    def report(check: str, seq: int, message: str) -> None:
        problems.append(Problem(session_id=sid, check=check, seq=seq, message=message))

    for recorded in events:
        event = recorded.event
        seq = recorded.seq
        if isinstance(event, RunStarted):
            run_id = event.run_id or f"run:{seq}"
            if run_id in runs:
                report(
                    "runs",
                    seq,
                    f"run {run_id} started twice (seqs {runs[run_id].start_seq}, {seq})",
                )
                continue
            if open_run is not None and not runs[open_run].ends:
                report(
                    "runs",
                    runs[open_run].start_seq,
                    f"run {open_run} (seq {runs[open_run].start_seq}) has no terminal event "
                    f"but run {run_id} started at seq {seq}",
                )
            runs[run_id] = _Run(start_seq=seq)
            open_run = run_id
        elif isinstance(event, RUN_TERMINAL_TYPES):
            ended = event.run_id or open_run
            if ended is None:
                report("runs", seq, f"seq {seq}: {recorded.type} outside any run")
            elif ended not in runs:
                report(
                    "runs", seq, f"seq {seq}: {recorded.type} for run {ended} that never started"
                )
            else:
                runs[ended].ends.append((seq, recorded.type))
                if ended == open_run:
                    open_run = None
        elif isinstance(event, ToolApprovalRequested):
            asked[event.approval_id] = event.tool_call_id
        elif isinstance(event, ToolApprovalResponded):
            if event.approval_id not in asked:
                report(
                    "approvals",
                    seq,
                    f"seq {seq}: answer to approval {event.approval_id} that was never asked",
                )
            elif event.approval_id in answered:
                report(
                    "approvals",
                    seq,
                    f"approval {event.approval_id} answered twice "
                    f"(seqs {answered[event.approval_id]}, {seq})",
                )
            else:
                answered[event.approval_id] = seq
        elif isinstance(event, ToolCallStarted):
            call_id = event.tool_call_id
            if call_id in calls:
                report(
                    "tool_calls",
                    seq,
                    f"tool call {call_id} started twice (seqs {calls[call_id].start_seq}, {seq})",
                )
                continue
            calls[call_id] = _Call(
                start_seq=seq, tool_name=event.tool_name, run_id=event.run_id or open_run
            )
        elif isinstance(event, TOOL_TERMINAL_TYPES):
            call = calls.get(event.tool_call_id)
            if call is None:
                report(
                    "tool_calls",
                    seq,
                    f"seq {seq}: {recorded.type} for tool call {event.tool_call_id} that never "
                    "started",
                )
            else:
                call.ends.append((seq, recorded.type))

    # An answered approval is acted on: its call runs or is refused (it ends), or a run is
    # still open to do it. Otherwise the session is stuck: not running, and nothing to answer.
    active = open_run is not None and not runs[open_run].ends
    for approval_id, answered_seq in answered.items():
        call_id = asked[approval_id]
        call = calls.get(call_id)
        if (call is None or not call.ends) and not active:
            report(
                "approvals",
                answered_seq,
                f"approval {approval_id} was answered at seq {answered_seq} but its tool call "
                f"{call_id} never ended and no run is active to act on it",
            )
    for run_id, run in runs.items():
        if len(run.ends) > 1:
            report(
                "runs",
                run.ends[1][0],
                f"run {run_id} (seq {run.start_seq}) has {len(run.ends)} terminal events "
                f"(seqs {_seqs(run.ends)})",
            )
    for call_id, call in calls.items():
        what = f"tool call {call_id} ({call.tool_name}, seq {call.start_seq})"
        if len(call.ends) > 1:
            report(
                "tool_calls",
                call.ends[1][0],
                f"{what} has {len(call.ends)} terminal events (seqs {_seqs(call.ends)})",
            )
        elif not call.ends:
            owner = runs.get(call.run_id) if call.run_id is not None else None
            if owner is not None and not owner.ends and call.run_id == open_run:
                continue  # its run is still active: the result may be on its way
            if call_id in asked.values():
                continue  # parked on an approval: the next turn runs or refuses it
            if call.run_id is None:
                why = "and belongs to no run"
            elif owner is None:
                why = f"and its run {call.run_id} never started"
            elif owner.ends:
                why = f"and its run {call.run_id} ended at seq {owner.ends[0][0]}"
            else:
                why = f"and its run {call.run_id} was superseded"
            report("tool_calls", call.start_seq, f"{what} has no terminal event {why}")


# -- projections ---------------------------------------------------------------------------


def fold_in_pieces(events: Sequence[RecordedEvent]) -> ConversationState:
    """The UI fold taken one page at a time, pages of varying sizes."""
    state = ui_messages.EMPTY
    start = 0
    for size in cycle(_PIECES):
        if start >= len(events):
            return state
        state = ui_messages.fold(events[start : start + size], state)
        start += size
    raise AssertionError("unreachable")


def describe_difference(expected: ConversationState, actual: ConversationState) -> str:
    """Where two UI states first differ, in words."""
    if expected.last_seq != actual.last_seq:
        return f"checkpoint seq {actual.last_seq}, expected {expected.last_seq}"
    if expected.open_run_id != actual.open_run_id:
        return f"open run {actual.open_run_id!r}, expected {expected.open_run_id!r}"
    for index, (want, got) in enumerate(zip(expected.messages, actual.messages, strict=False)):
        if want == got:
            continue
        if want.id != got.id:
            return f"message {index} is {got.id!r}, expected {want.id!r}"
        if want.run != got.run:
            return f"message {index} ({want.id}) has different run metadata"
        for part_index, (a, b) in enumerate(zip(want.parts, got.parts, strict=False)):
            if a != b:
                return f"message {index} ({want.id}) part {part_index} differs"
        return f"message {index} ({want.id}) has {len(got.parts)} parts, expected {len(want.parts)}"
    return f"{len(actual.messages)} messages, expected {len(expected.messages)}"


def _check_projections(
    sid: str,
    events: Sequence[RecordedEvent],
    last: int,
    stored_state: ConversationState | None,
    stored_summary: SessionSummary | None,
    problems: list[Problem],
) -> None:
    def report(message: str, seq: int | None = None) -> None:
        problems.append(Problem(session_id=sid, check="projection", seq=seq, message=message))

    fresh = ui_messages.fold(events)
    pieces = fold_in_pieces(events)
    if pieces != fresh:
        report(
            "the UI projection folded in pages differs from one fold: "
            + describe_difference(fresh, pieces)
        )
    if stored_state is not None:
        at = stored_state.last_seq
        if at > last:
            report(f"the stored UI projection is at seq {at}, beyond the log's head {last}", at)
        else:
            expected = fresh if at == last else ui_messages.fold([r for r in events if r.seq <= at])
            if stored_state != expected:
                report(
                    f"the stored UI projection (at seq {at}) differs from a fresh fold: "
                    + describe_difference(expected, stored_state),
                    at,
                )
    if stored_summary is not None:
        at = stored_summary.head
        if at > last:
            report(f"the stored session summary is at seq {at}, beyond the log's head {last}", at)
            return
        expected_summary = sessions.fold(r for r in events if r.seq <= at).get(sid)
        if stored_summary != expected_summary:
            changed = _summary_difference(expected_summary, stored_summary)
            report(
                f"the stored session summary (at seq {at}) differs from a fresh fold: {changed}",
                at,
            )


def _summary_difference(expected: SessionSummary | None, stored: SessionSummary) -> str:
    if expected is None:
        return "the log has no events up to it"
    names = [
        name
        for name in stored.__struct_fields__
        if getattr(stored, name) != getattr(expected, name)
    ]
    return ", ".join(
        f"{name} {getattr(stored, name)!r}, expected {getattr(expected, name)!r}" for name in names
    )
