"""Recovering abandoned runs: a run the log shows running while nobody holds its session's
lease (its process died and the lease expired) gets `run_abandoned`, its tool calls end as
interrupted, and what it left on this host is removed. The recoverer holds the lease while it
writes, so two processes never both recover one run."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from agentlog.domain.events import Event, RunAbandoned
from agentlog.domain.ports.run_lock import RunLock
from agentlog.infra.agent.recovery.leftovers import remove_leftovers
from agentlog.infra.agent.recovery.recovery_events import recovery_events
from agentlog.infra.agent.run.lease import RECOVERY_PREFIX, release
from agentlog.infra.agent.run.recorder import RunStore
from agentlog.infra.store.run_reads import open_run_events

log = logging.getLogger(__name__)


class AbandonedRuns:
    """Finds and closes runs whose owner died."""

    def __init__(
        self,
        store: RunStore,
        lock: RunLock,
        *,
        ttl_ms: int,
        run_home_root: Path,
        runs_here: Callable[[str], bool],
    ) -> None:
        self.store = store
        self.lock = lock
        self.ttl_ms = ttl_ms
        self.run_home_root = run_home_root
        self._runs_here = runs_here  # a run of this process is never abandoned

    async def recover(self, session_id: str) -> bool:
        """Record the session's abandoned run, if any; True when something was recorded."""
        if self._runs_here(session_id):
            return False
        lease = await self.lock.acquire(session_id, RECOVERY_PREFIX + uuid.uuid4().hex, self.ttl_ms)
        if lease is None:
            return False
        try:
            recovery = recovery_events(await open_run_events(self.store, session_id))
            if recovery:
                await self.store.append(session_id, recovery)
        finally:
            await release(self.lock, lease)
        # Cleaning up after the dead run (killing a leftover CLI, removing its HOME) needs no
        # lease: its record is closed and fenced. Holding the lease through it made a start
        # that saw `run_abandoned` wait out the clean-up, and past the hand-over bound, get 409.
        if recovery:
            await self.clear(recovery)
        return bool(recovery)

    async def sweep(self, session_ids: Sequence[str]) -> list[str]:
        """Recover every candidate session whose run has no live lease; returns those
        recovered."""
        recovered = []
        for session_id in session_ids:
            try:
                if await self.recover(session_id):
                    recovered.append(session_id)
            except Exception as exc:  # noqa: BLE001 - one bad session must not stop the sweep
                log.warning("could not recover session %s: %s", session_id, exc)
        return recovered

    async def clear(self, recovery: Sequence[Event]) -> None:
        """After the log records runs abandoned: remove what they left on this host."""
        for event in recovery:
            if isinstance(event, RunAbandoned) and event.run_id is not None:
                await asyncio.to_thread(remove_leftovers, event.run_id, self.run_home_root)
