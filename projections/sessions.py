"""The sessions list: one summary row per session, a pure fold over the log.

Each session's row is its own fold, keyed by session id, with the session's `head` seq as its
checkpoint: applying an event at or before `head` changes nothing, so a rebuild or a replayed
batch is harmless. The store keeps the rows and the global position it reached (infra).

Rules:
- `session_created` sets `agent` (the session's agent's name); on sessions created before
  agents had names, the first `run_started` naming one sets it.
- every event: `head` = its seq, `last_activity_at` = its time (heartbeats count: a run alive
  in a long tool is activity). The first event seen sets `created_at`; `session_created` sets
  `title`.
- `run_started`: `runs` + 1, `active_run_id` = its run (`run:<seq>` if it names none, as in
  ui_messages), status "running". A run started while another is active supersedes it (the
  older run's process died without a terminal event).
- a terminal run event for the active run (or naming no run while one is active) clears
  `active_run_id` and sets the status from that last run: `run_failed` and `run_finished` with
  `is_error` -> "failed", `run_abandoned` -> "abandoned", `run_finished` and `run_cancelled` ->
  "idle". A terminal event for any other run (late, duplicate, superseded) changes only `head`
  and the time.
- `tool_call_started`: `tool_calls` + 1 (each start event counts once).
- `session_forked` (the last event a fork starts with): `created_at` = its time (the copies
  before it keep the source's times), and `usage` starts again from nothing: the copied runs
  were paid for by the source, so each run counts once over all sessions.
- `session_deleted` (the tombstone): a row with status "deleted" and nothing else; lists omit
  such rows.
- `tool_approval_requested`: status "awaiting_approval" (also while its run still waits its
  short grace in-process). `tool_approval_responded`: back to "running" when a run is active,
  else "idle" until the continuation run starts. A run that ends while the session awaits an
  approval (`run_finished` without error: the turn deferred the call; `run_abandoned`: its
  server died while waiting) leaves the status "awaiting_approval": the approval outlives it.
- `conversation_rewound(to_seq=T)` (regenerate, edit): `runs` and `tool_calls` count the
  current branch only, so the runs started after T, and the tool calls started since the
  first of them, are taken off (`run_marks` keeps, per run started on the branch, its seq and
  the tool calls counted before it). When it drops runs, the status is "idle" and no run is
  active (the newest run was dropped; the runner records its end before the rewind, and the
  `run_started` after the rewind sets "running"). `usage` is not touched: it is money spent,
  and the discarded branch's runs were paid for.
- `usage`: tokens and cost summed over the runs (every branch's), each counted at its first
  terminal event as the active run (`projections/usage.py`); `active_run_agent` remembers
  the active run's agent until then, so a scripted run's cost is counted as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import msgspec
from msgspec.structs import replace

from agentlog.domain.events import (
    ConversationRewound,
    RecordedEvent,
    RunAbandoned,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionDeleted,
    SessionForked,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallStarted,
)
from agentlog.projections import usage as usage_of

IDLE = "idle"
RUNNING = "running"
FAILED = "failed"
ABANDONED = "abandoned"
DELETED = "deleted"
AWAITING_APPROVAL = "awaiting_approval"


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the sessions list."""

    session_id: str
    title: str | None = None
    agent: str | None = None
    status: str = IDLE
    head: int = 0
    created_at: datetime
    last_activity_at: datetime
    runs: int = 0
    tool_calls: int = 0
    active_run_id: str | None = None
    active_run_agent: str | None = None
    usage: usage_of.Usage = usage_of.NONE
    # (seq of its run_started, tool calls counted before it) per run on the current branch;
    # empty in rows stored before rewinds existed (the projector folds such a row afresh at
    # its session's first rewind).
    run_marks: tuple[tuple[int, int], ...] = ()


def apply(summary: SessionSummary | None, recorded: RecordedEvent) -> SessionSummary:
    """The session's row after one more of its events; None means "not seen yet"."""
    if summary is None:
        summary = SessionSummary(
            session_id=recorded.session_id,
            created_at=recorded.time,
            last_activity_at=recorded.time,
        )
    elif recorded.seq <= summary.head:
        return summary
    event = recorded.event
    kind = type(event)
    if kind is RunStarted:
        assert isinstance(event, RunStarted)
        return replace(
            summary,
            head=recorded.seq,
            last_activity_at=recorded.time,
            status=RUNNING,
            runs=summary.runs + 1,
            active_run_id=event.run_id or f"run:{recorded.seq}",
            active_run_agent=event.agent,
            agent=summary.agent or event.agent_name,
            run_marks=(*summary.run_marks, (recorded.seq, summary.tool_calls)),
        )
    if kind is ConversationRewound:
        assert isinstance(event, ConversationRewound)
        return _rewound(summary, recorded, event.to_seq)
    if kind is ToolCallStarted:
        return replace(
            summary,
            head=recorded.seq,
            last_activity_at=recorded.time,
            tool_calls=summary.tool_calls + 1,
        )
    if kind is ToolApprovalRequested:
        return replace(
            summary, head=recorded.seq, last_activity_at=recorded.time, status=AWAITING_APPROVAL
        )
    active = summary.active_run_id
    if kind is ToolApprovalResponded and summary.status == AWAITING_APPROVAL:
        return replace(
            summary,
            head=recorded.seq,
            last_activity_at=recorded.time,
            status=RUNNING if active is not None else IDLE,
        )
    if kind in _RUN_END_STATUS and active is not None and event.run_id in (None, active):
        status = _RUN_END_STATUS[kind]
        if isinstance(event, RunFinished) and event.is_error:
            status = FAILED
        elif summary.status == AWAITING_APPROVAL and kind in (RunFinished, RunAbandoned):
            status = AWAITING_APPROVAL
        cost = usage_of.run_usage(event, agent=summary.active_run_agent)
        return replace(
            summary,
            head=recorded.seq,
            last_activity_at=recorded.time,
            status=status,
            active_run_id=None,
            active_run_agent=None,
            usage=summary.usage if cost is None else usage_of.add(summary.usage, cost),
        )
    if kind is SessionDeleted:
        # The tombstone: nothing of the session is kept (lists leave it out).
        return SessionSummary(
            session_id=summary.session_id,
            status=DELETED,
            head=recorded.seq,
            created_at=summary.created_at,
            last_activity_at=recorded.time,
        )
    if kind is SessionForked:
        # The fork came to exist now (its copies keep the source's times), and the copied
        # runs were paid for by the source: its usage counts the runs made in the fork only,
        # so a sum over sessions counts every run once.
        return replace(
            summary,
            head=recorded.seq,
            last_activity_at=recorded.time,
            created_at=recorded.time,
            usage=usage_of.NONE,
        )
    if kind is SessionCreated:
        assert isinstance(event, SessionCreated)
        return replace(
            summary,
            head=recorded.seq,
            last_activity_at=recorded.time,
            title=event.title,
            agent=event.agent,
        )
    return replace(summary, head=recorded.seq, last_activity_at=recorded.time)


def _rewound(summary: SessionSummary, recorded: RecordedEvent, to_seq: int) -> SessionSummary:
    marks = summary.run_marks
    kept = len(marks)
    while kept and marks[kept - 1][0] > to_seq:
        kept -= 1
    changes: dict[str, object] = {}
    if kept < len(marks):
        dropped = marks[kept:]
        changes.update(
            run_marks=marks[:kept],
            runs=max(summary.runs - len(dropped), 0),
            tool_calls=dropped[0][1],
        )
        # The newest run is among the dropped: whatever it was doing (running, waiting on
        # an approval) is off the branch. The run_started that follows sets "running".
        changes.update(active_run_id=None, active_run_agent=None, status=IDLE)
    return replace(summary, head=recorded.seq, last_activity_at=recorded.time, **changes)


_RUN_END_STATUS: dict[type, str] = {
    RunFinished: IDLE,
    RunFailed: FAILED,
    RunCancelled: IDLE,
    RunAbandoned: ABANDONED,
}


def fold(
    events: Iterable[RecordedEvent], sessions: Mapping[str, SessionSummary] | None = None
) -> dict[str, SessionSummary]:
    """Apply events of any sessions, each session's in seq order; returns a new mapping.

    Pass only the rows the batch touches when the list is large: the mapping is copied once.
    """
    rows = dict(sessions) if sessions else {}
    for recorded in events:
        rows[recorded.session_id] = apply(rows.get(recorded.session_id), recorded)
    return rows
