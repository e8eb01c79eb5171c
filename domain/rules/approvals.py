"""Tool approvals as the log holds them: a pure fold, and the one rule for answering.

An approval is asked once per tool call (`tool_approval_requested`) and answered once
(`tool_approval_responded`). Between the two the call waits in the log, not in a process:
whichever instance receives the answer records it, and the next turn of the agent (on any
instance) reads it there. After the answer the call is *decided*: it runs or is refused when
the agent next asks for it, which ends it (`tool_call_*`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agentlog.domain.errors import ApprovalAlreadyAnswered, UnknownApproval
from agentlog.domain.events import (
    TOOL_TERMINAL_TYPES,
    RecordedEvent,
    ToolApprovalRequested,
    ToolApprovalResponded,
)


def approval_id_for(tool_call_id: str) -> str:
    """The approval of a tool call: one per call, so asking again finds the same one."""
    return f"approval_{tool_call_id}"


@dataclass
class Approval:
    """One request, its answer once given, and whether its call has ended."""

    request: ToolApprovalRequested
    requested_seq: int
    response: ToolApprovalResponded | None = None
    call_ended: bool = False

    @property
    def pending(self) -> bool:
        """Asked and not answered: the session waits for a person."""
        return self.response is None and not self.call_ended

    @property
    def decided(self) -> bool:
        """Answered, and the agent has not acted on the answer yet."""
        return self.response is not None and not self.call_ended


@dataclass
class Approvals:
    """A fold over one session's events (apply them in seq order)."""

    by_id: dict[str, Approval] = field(default_factory=dict)
    by_call: dict[str, str] = field(default_factory=dict)
    _ended_calls: set[str] = field(default_factory=set)

    def apply(self, recorded: RecordedEvent) -> None:
        event = recorded.event
        if isinstance(event, ToolApprovalRequested):
            if event.approval_id not in self.by_id:
                self.by_id[event.approval_id] = Approval(
                    event, recorded.seq, call_ended=event.tool_call_id in self._ended_calls
                )
                self.by_call[event.tool_call_id] = event.approval_id
        elif isinstance(event, ToolApprovalResponded):
            approval = self.by_id.get(event.approval_id)
            if approval is not None and approval.response is None:
                approval.response = event
        elif isinstance(event, TOOL_TERMINAL_TYPES):
            self._ended_calls.add(event.tool_call_id)
            approval_id = self.by_call.get(event.tool_call_id)
            if approval_id is not None:
                self.by_id[approval_id].call_ended = True

    def pending(self) -> list[Approval]:
        return [a for a in self.by_id.values() if a.pending]

    def decided(self) -> list[Approval]:
        return [a for a in self.by_id.values() if a.decided]

    def for_call(self, tool_call_id: str) -> Approval | None:
        approval_id = self.by_call.get(tool_call_id)
        return None if approval_id is None else self.by_id[approval_id]

    def parked_calls(self) -> set[str]:
        """Calls that wait on a person or on the next turn, not on a running tool."""
        return {a.request.tool_call_id for a in self.by_id.values() if not a.call_ended}


def approvals(events: Iterable[RecordedEvent]) -> Approvals:
    folded = Approvals()
    for recorded in events:
        folded.apply(recorded)
    return folded


def answer(
    folded: Approvals,
    session_id: str,
    approval_id: str,
    *,
    approved: bool,
    reason: str | None,
    responder: str | None = None,
) -> ToolApprovalResponded | None:
    """The event that records this answer, or None when the same answer was already
    recorded (a retry: the caller answers with the first result). Raises UnknownApproval,
    or ApprovalAlreadyAnswered when a different answer was recorded first."""
    approval = folded.by_id.get(approval_id)
    if approval is None:
        raise UnknownApproval(session_id, approval_id)
    if approval.response is not None:
        if approval.response.approved != approved:
            raise ApprovalAlreadyAnswered(approval_id, approval.response.approved)
        return None
    if approval.call_ended:
        # The run ended the call some other way (cancelled, interrupted): nothing to decide.
        raise ApprovalAlreadyAnswered(
            approval_id,
            None,
            f"approval {approval_id!r} can no longer be answered: its tool call already ended",
        )
    return ToolApprovalResponded(
        run_id=approval.request.run_id,
        approval_id=approval_id,
        tool_call_id=approval.request.tool_call_id,
        approved=approved,
        reason=reason,
        responder=responder,
    )
