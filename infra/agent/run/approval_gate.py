"""The approval gate of one run: where a PreToolUse hook asks for, and waits on, a person's yes.

The answer lives in the log only. The hook records `tool_approval_requested`, then watches the
session's log for `tool_approval_responded` for a short grace (an answer given at once, on
any instance, lets the call run in this same turn). When the grace passes it answers the CLI
`defer`: the turn ends, the process exits and the lock is released; the session waits in the
log alone. The answer, whenever and wherever it comes, starts a continuation run that resumes
the agent session; the CLI asks this hook again for the deferred call and the gate then finds
the answer in the run's history.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from agentlog.domain.events import RecordedEvent, ToolApprovalResponded
from agentlog.domain.rules.approvals import Approvals, approval_id_for, approvals
from agentlog.infra.agent.run.recorder import RunRecorder, RunStore


class ApprovalGate:
    """Approvals of one session as one run sees them: its history, then the live log."""

    def __init__(
        self,
        store: RunStore,
        session_id: str,
        history: Sequence[RecordedEvent],
        *,
        grace_seconds: float,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.grace_seconds = grace_seconds
        self.folded: Approvals = approvals(history)
        self._seen = history[-1].seq if history else 0

    def approval_id(self, tool_call_id: str) -> tuple[str, bool]:
        """The call's approval id, and whether it was already requested."""
        existing = self.folded.for_call(tool_call_id)
        if existing is not None:
            return existing.request.approval_id, True
        return approval_id_for(tool_call_id), False

    async def answer(self, approval_id: str, recorder: RunRecorder) -> ToolApprovalResponded | None:
        """The answer, if one is recorded or arrives within the grace; else None."""
        known = self._response(approval_id)
        if known is not None or self.grace_seconds <= 0:
            return known
        # The request must be in the log before anyone can answer it.
        await recorder.flush()
        deadline = time.monotonic() + self.grace_seconds
        async with self.store.subscribe(self.session_id) as wakeup:
            while True:
                for recorded in await self.store.read_session(self.session_id, after=self._seen):
                    self.folded.apply(recorded)
                    self._seen = recorded.seq
                known = self._response(approval_id)
                remaining = deadline - time.monotonic()
                if known is not None or remaining <= 0:
                    return known
                # Wake-ups may be lost; the bounded wait re-reads the log anyway.
                await wakeup.wait(min(remaining, 0.5))

    def _response(self, approval_id: str) -> ToolApprovalResponded | None:
        approval = self.folded.by_id.get(approval_id)
        return None if approval is None else approval.response
