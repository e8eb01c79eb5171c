"""Session summaries for the operator CLI, folded straight from the log.

The server reads them from the stored sessions projection (`Projector.list_summaries`, the
same signature as `summaries_page`); the CLI folds instead, so it reads the log exactly as it
is even when no server (and so no projector) is running.
"""

from __future__ import annotations

from typing import Any

from agentlog.domain.events import RecordedEvent
from agentlog.domain.ports.event_store import EventStore
from agentlog.domain.rules.approvals import Approval
from agentlog.infra.sessions.approval_answers import latest_approvals
from agentlog.projections import sessions
from agentlog.projections.sessions import SessionSummary
from agentlog.projections.usage import usage_json

_PAGE = 5000


async def summaries_page(
    store: EventStore, after: str | None = None, limit: int = 100
) -> list[SessionSummary]:
    """Summaries of up to `limit` sessions with ids after `after`, in id order."""
    summaries = []
    for head in await store.sessions(after=after, limit=limit):
        summary = await fold_summary(store, head.session_id)
        if summary is None:
            # A row without events is a broken log (`agentlog verify` says so); list it
            # anyway, so it is seen and paging stays exact.
            summary = SessionSummary(
                session_id=head.session_id,
                head=0,
                created_at=head.created_at,
                last_activity_at=head.updated_at,
            )
        summaries.append(summary)
    return summaries


async def fold_summary(store: EventStore, session_id: str) -> SessionSummary | None:
    """The session's summary folded from its log; None when it has no events."""
    summary: SessionSummary | None = None
    after = 0
    while True:
        page: list[RecordedEvent] = await store.read(session_id, after=after, limit=_PAGE)
        for recorded in page:
            summary = sessions.apply(summary, recorded)
        if len(page) < _PAGE:
            return summary
        after = page[-1].seq


def summary_json(summary: SessionSummary) -> dict[str, Any]:
    """A session as the lists show it (the keys of `GET /v1/sessions/{id}`)."""
    return {
        "id": summary.session_id,
        "title": summary.title,
        "agent": summary.agent,
        "status": summary.status,
        "head": summary.head,
        "active_run": {"run_id": summary.active_run_id} if summary.active_run_id else None,
        "runs": summary.runs,
        "tool_calls": summary.tool_calls,
        "usage": usage_json(summary.usage),
        "created_at": summary.created_at,
        "last_activity_at": summary.last_activity_at,
    }


def pending_json(approval: Approval) -> dict[str, Any]:
    request = approval.request
    return {
        "approval_id": request.approval_id,
        "tool_call_id": request.tool_call_id,
        "tool_name": request.tool_name,
        "input": request.input,
        "reason": request.reason,
        "run_id": request.run_id,
        "requested_seq": approval.requested_seq,
    }


async def pending_approvals(store: EventStore, session_id: str) -> list[dict[str, Any]]:
    """The session's approvals still waiting for an answer, in the order they were asked. Read
    from the latest run's start (O(run)): no turn starts while an approval waits."""
    return [pending_json(a) for a in (await latest_approvals(store, session_id)).pending()]
