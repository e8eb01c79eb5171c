"""The head a rewind's batch is appended against (`Rewind.expected_head`).

A rewind is planned from the projection before the runner takes the session's lease; the
runner appends its batch with `expected_seq`, so a conversation that changed meanwhile is
refused instead of rewound from a stale plan. One change is no change to the plan: the
recovery of an abandoned run (its dangling calls failed as interrupted, then
`run_abandoned`), which the sweeper may write between the plan and the start exactly as the
start itself would. Those events close the latest run, which is never before the turn a
rewind goes back to, so they land after `to_seq` and the plan still holds: the batch is
appended after them."""

from __future__ import annotations

from agentlog.domain.events import Event, RunAbandoned, ToolCallFailed
from agentlog.infra.agent.run.recorder import RunStore

# More events than a recovery writes in one go: a change, not a recovery.
_MAX_RECOVERY_EVENTS = 1000


def closes_an_abandoned_run(event: Event) -> bool:
    """An event recovery writes (infra/agent/recovery/recovery_events.py), and nothing else writes
    so."""
    if isinstance(event, RunAbandoned):
        return True
    return isinstance(event, ToolCallFailed) and event.source == "runner" and event.interrupted


async def rewind_expected_seq(store: RunStore, session_id: str, planned_head: int) -> int:
    """`planned_head`, or the session's head when only recovery happened after it. Anything
    else leaves `planned_head`: the append then raises ExpectedSeqMismatch."""
    events = await store.read(session_id, after=planned_head, limit=_MAX_RECOVERY_EVENTS)
    if not events or len(events) == _MAX_RECOVERY_EVENTS:
        return planned_head
    if all(closes_an_abandoned_run(recorded.event) for recorded in events):
        return events[-1].seq
    return planned_head
