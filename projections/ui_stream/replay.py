"""Whole-run replays: `run_chunks` (a resumed stream) and the runs a run continues."""

from __future__ import annotations

from collections.abc import Iterable

from agentlog.domain.events import RecordedEvent, RunStarted
from agentlog.domain.rules.branches import current_branch
from agentlog.projections.ui_stream.chunks import Chunk
from agentlog.projections.ui_stream.encoder import RunStreamEncoder


def run_chunks(
    events: Iterable[RecordedEvent],
    run_id: str,
    *,
    run_active: bool = False,
    earlier: Iterable[str] = (),
) -> list[Chunk]:
    """The whole stream of run `run_id` from its `start`, given its session's events in order.

    Empty when the run never started. The stream is closed unless the run has no terminal event
    and `run_active` says it is still executing. To go on live after the replay, feed one
    `RunStreamEncoder` the log so far and then its tail instead, so its state carries over.
    Only the current branch is replayed: a run that crashed and was closed by a start that a
    rewind later set aside ends as the projection says (closed by the branch's next start).
    """
    encoder = RunStreamEncoder(run_id, hold_close=True, earlier=earlier)
    chunks: list[Chunk] = []
    for recorded in current_branch(events):
        chunks += encoder.chunks_for(recorded)
    chunks += encoder.finish(run_active=run_active)
    return chunks


def continued_runs(events: Iterable[RecordedEvent], run_id: str) -> list[str]:
    """The runs `run_id` continues after approvals, oldest first: the runs whose events
    share its message (empty for a run with a prompt of its own)."""
    continues: dict[str, str] = {}
    for recorded in events:
        event = recorded.event
        if type(event) is RunStarted and event.run_id and event.continues_run_id:
            continues[event.run_id] = event.continues_run_id
    chain: list[str] = []
    while run_id in continues and len(chain) < len(continues):
        run_id = continues[run_id]
        chain.insert(0, run_id)
    return chain
