"""Recording a person's answer to a tool approval: exactly one answer per approval, on any
instance, however many times and wherever it is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agentlog.domain.errors import ExpectedSeqMismatch
from agentlog.domain.events import (
    RecordedEvent,
    RunAbandoned,
    RunFinished,
    RunStarted,
    ToolApprovalResponded,
)
from agentlog.domain.ports.event_store import EventStore, RunRecord
from agentlog.domain.rules.approvals import Approvals, answer, approvals

# Appends of a running run (heartbeats, deltas) move the head between our read and our write;
# each retry re-reads and decides again. Far more than a session's write rate needs.
_ATTEMPTS = 50


class ApprovalReads(Protocol):
    """What finding a session's approvals takes of the event store: its run index and its
    events (the EventStore port has it, and so does the runner's RunStore)."""

    async def current_run(self, session_id: str) -> RunRecord | None: ...

    async def run(self, session_id: str, run_id: str) -> RunRecord | None: ...

    async def read(
        self, session_id: str, after: int = 0, limit: int = 1000
    ) -> list[RecordedEvent]: ...

    async def read_session(self, session_id: str, after: int = 0) -> list[RecordedEvent]: ...


@dataclass(frozen=True)
class ApprovalAnswer:
    """A person's answer to an approval, not recorded yet."""

    approval_id: str
    approved: bool
    reason: str | None = None
    responder: str | None = None

    def decide(self, folded: Approvals, session_id: str) -> ToolApprovalResponded | None:
        """The event recording it on the log as folded; None when the same answer is there.
        Raises UnknownApproval, ApprovalAlreadyAnswered."""
        return answer(
            folded,
            session_id,
            self.approval_id,
            approved=self.approved,
            reason=self.reason,
            responder=self.responder,
        )


@dataclass(frozen=True)
class RecordedAnswer:
    """The answer the log holds (the first one), its seq, and whether this call wrote it."""

    response: ToolApprovalResponded
    seq: int
    written_now: bool


async def record_answer(
    store: EventStore,
    session_id: str,
    approval_id: str,
    *,
    approved: bool,
    reason: str | None,
    responder: str | None = None,
) -> RecordedAnswer:
    """Append `tool_approval_responded` unless the same answer is already there.

    The decision is taken on the log as read and written with `expected_seq` = that head, so
    two answers racing on two instances cannot both be recorded: the loser re-reads, finds
    the winner's answer, and gets it back (same answer) or ApprovalAlreadyAnswered (409).
    Raises UnknownSession, UnknownApproval.

    O(run): the log is read from where the approvals that can still matter begin (the latest
    run's start, or the run a continuation continues: `approvals_since`), and each retry reads
    only what was appended since its last read. Only an answer to an approval outside that
    stretch (an old one, answered long ago) reads the whole session, to find its first answer."""
    history = await _answerable_history(store, session_id, approval_id)
    for _ in range(_ATTEMPTS):
        head = history[-1].seq if history else 0
        folded = approvals(history)
        event = answer(
            folded,
            session_id,
            approval_id,
            approved=approved,
            reason=reason,
            responder=responder,
        )
        if event is None:
            first = folded.by_id[approval_id].response
            assert first is not None
            return RecordedAnswer(first, _seq_of(history, first), written_now=False)
        try:
            [seq] = await store.append(session_id, [event], expected_seq=head)
        except ExpectedSeqMismatch:
            history += await store.read_session(session_id, after=head)
            continue
        return RecordedAnswer(event, seq, written_now=True)
    raise ExpectedSeqMismatch(session_id, head, await store.head(session_id))


async def _answerable_history(
    store: EventStore, session_id: str, approval_id: str
) -> list[RecordedEvent]:
    """The session's log from where `approval_id` was asked, as far as that is cheap to know:
    from `approvals_since` when the approval is there, else the whole log."""
    since = await approvals_since(store, session_id)
    if since is not None and since > 1:
        recent = await store.read_session(session_id, after=since - 1)
        if approval_id in approvals(recent).by_id:
            return recent
    return await store.read_session(session_id)


def _seq_of(history: list[RecordedEvent], response: ToolApprovalResponded) -> int:
    return next(r.seq for r in history if r.event is response)


async def latest_approvals(store: ApprovalReads, session_id: str) -> Approvals:
    """The approvals that can still matter: those of the session's latest run (no turn starts
    while one waits, and a continuation continues the latest run). Read in O(1) unless that
    run may have left one: it ended deferring a call, its server died (abandoned), or it has
    no end yet; a run that ended otherwise settled every call it asked about."""
    since = await approvals_since(store, session_id)
    if since is None:
        return Approvals()
    return approvals(await store.read_session(session_id, after=since - 1))


async def approvals_since(store: ApprovalReads, session_id: str) -> int | None:
    """The seq from which the session's log holds every approval that can still matter (see
    `latest_approvals`), or None when none can. A continuation run (its `run_started` names
    the run it continues) takes the approval state with it: the answer it acts on is recorded
    just before its start, and the request in the run that asked, so the scope goes back to
    that run's start. Without this, a continuation whose server died left its answer out of
    sight: nothing continued, and the next turn asked the same approval again."""
    current = await store.current_run(session_id)
    if current is None:
        return None
    if current.ended_seq is not None:
        terminal = await store.read(session_id, after=current.ended_seq - 1, limit=1)
        event = terminal[0].event if terminal else None
        deferred = isinstance(event, RunFinished) and event.deferred_tool_call_id is not None
        if not deferred and not isinstance(event, RunAbandoned):
            return None
    since = current.started_seq
    started = await store.read(session_id, after=since - 1, limit=1)
    continues = started[0].event if started else None
    if isinstance(continues, RunStarted) and continues.continues_run_id is not None:
        asked = await store.run(session_id, continues.continues_run_id)
        if asked is not None:
            since = asked.started_seq
    return since
