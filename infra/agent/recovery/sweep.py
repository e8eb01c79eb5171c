"""One pass of the deployment's sweep: the turns that no live process is looking after.

Two indexes, both written in the append's own transaction, name the candidates, so the sweep
never reads a session that needs nothing:
- the run index's open runs: a run whose server died is continued (or recorded abandoned);
- the turns-due index: a session owed a look for its next turn (an answer written alone, a
  prompt queued behind a run) whose look was lost with its maker, a server that died or shut
  down between the write and the look.

`transport/app.py` runs a pass at startup and then every `sweep_seconds`, on one process of the
deployment."""

from __future__ import annotations

import logging
from datetime import timedelta

from agentlog.domain.events import utc_now
from agentlog.domain.ports.event_store import EventStore, RunRecord
from agentlog.infra.agent.run.runner import AgentRunner

log = logging.getLogger(__name__)

# Rows of either index read at once.
SWEEP_PAGE = 1000


async def sweep_once(store: EventStore, runner: AgentRunner) -> None:
    """Every open run, then every session due a look, each a page at a time."""
    after: RunRecord | None = None
    while page := await store.open_runs(limit=SWEEP_PAGE, after=after):
        recovered = await runner.sweep(sorted({run.session_id for run in page}))
        if recovered:
            log.info("recovered abandoned runs", extra={"sessions": recovered})
        after = page[-1]
    # A mark younger than one lease TTL is still its writer's (or its run's) to settle: the
    # sweep does not race a live writer for the turn it is about to start.
    due_before = utc_now() - timedelta(seconds=runner.config.lock_ttl_seconds)
    cursor = ""
    while due := await store.turns_due(due_before, limit=SWEEP_PAGE, after=cursor):
        looked = await runner.sweep_turns_due(due)
        if looked:
            log.info("looked for lost next turns", extra={"sessions": looked})
        cursor = due[-1].session_id
