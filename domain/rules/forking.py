"""Forking a conversation: where a session may be forked, and what the fork's log holds.

A fork at seq N is a new session whose conversation is the source's as it stood at N. Its
log is the source's *current branch as of N* (`agentlog.domain.rules.branches.current_branch` of
the events
up to N: what a rewind had set aside by then is left out), renumbered 1..k, followed by
`session_forked(from_session_id, at_seq=N, agent_session)`. The copies keep their run ids,
tool call ids, approval ids and times, so the fork's messages are the source's at N, id for
id. Two fields are the fork's own (`fork_overrides`):
- every `run_started` and `conversation_rewound` names the fork's agent session, so the
  fork's next run resumes the fork's own transcript, never the source's;
- a copied rewind's `to_seq` is renumbered to the fork's seqs (it still keeps everything
  before it: the branch holds nothing it would set aside).

Refused fork points (`check_fork_point`), each naming what to do instead:
- outside 1..head (ForkPointOutOfRange);
- inside a run: after its `run_started` and before its terminal event (ForkInsideRun). The
  fork would hold a run that no process drives; fork before its start or at its end;
- while a tool call waits on a person's approval (ForkApprovalPending): the answer would have
  to continue a turn that the fork did not run. Fork before the run that asked, or once the
  call has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentlog.domain.errors import ForkApprovalPending, ForkInsideRun, ForkPointOutOfRange
from agentlog.domain.events import (
    ConversationRewound,
    Event,
    RecordedEvent,
    RunStarted,
    ToolApprovalRequested,
)
from agentlog.domain.rules.open_work import OpenWork, open_work


def check_fork_point(
    session_id: str,
    at_seq: int,
    head: int,
    branch: Sequence[RecordedEvent],
    run_ended_seq: Callable[[str], int | None] = lambda run_id: None,
    work: OpenWork | None = None,
) -> None:
    """Raise if the session cannot be forked at `at_seq`. `branch` is the current branch of
    its events up to `at_seq` (`work`: its `open_work`, when the caller has it);
    `run_ended_seq(run_id)` tells where an open run ended later (None while it runs), for the
    error's advice."""
    if not 1 <= at_seq <= head:
        raise ForkPointOutOfRange(session_id, at_seq, head)
    if work is None:
        work = open_work(branch)
    if work.open_run_id is not None:
        assert work.open_run_seq is not None
        raise ForkInsideRun(
            session_id,
            at_seq,
            work.open_run_id,
            started_seq=work.open_run_seq,
            ended_seq=run_ended_seq(work.open_run_id),
        )
    if work.parked:
        asked = {
            r.event.tool_call_id: r.event
            for r in branch
            if isinstance(r.event, ToolApprovalRequested)
        }
        run_starts = {
            r.event.run_id: r.seq
            for r in branch
            if isinstance(r.event, RunStarted) and r.event.run_id is not None
        }
        approvals = [asked[call_id].approval_id for call_id in work.parked if call_id in asked]
        asking_runs = [asked[c].run_id for c in work.parked if c in asked]
        starts = [run_starts[r] for r in asking_runs if r in run_starts]
        raise ForkApprovalPending(
            session_id, at_seq, approvals, before_seq=min(starts) - 1 if starts else None
        )


def fork_overrides(
    event: Event, *, agent_session: str, new_seq_of: Callable[[int], int]
) -> dict[str, Any]:
    """The fields a copied event takes in the fork (none for most events).
    `new_seq_of(seq)`: the fork's seq of the last copied event at or before source seq `seq`."""
    if isinstance(event, RunStarted):
        return {"agent_session": agent_session}
    if isinstance(event, ConversationRewound):
        return {"agent_session": agent_session, "to_seq": new_seq_of(event.to_seq)}
    return {}
