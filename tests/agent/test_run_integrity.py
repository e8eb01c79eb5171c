"""Run integrity with the real SDK and CLI: one writer per run, enforced by the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentlog.domain.events import RUN_TERMINAL_TYPES, RunAbandoned, ToolCallStarted
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.run.runner import AgentRunner
from agentlog.infra.local.run_lock import LocalRunLock
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.base import StoreBase

from .test_runner import new_session, until_logged

pytestmark = pytest.mark.slow


async def test_a_run_whose_lease_expired_writes_nothing_after_its_run_abandoned(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    lock = LocalRunLock()
    # Heartbeats every 0.2 s, but the lease is checked only every 10 s: the run keeps
    # trying to write long after another process took its session over.
    config = AgentConfig(
        workspace_root=tmp_path / "workspaces",
        run_home_root=tmp_path / "homes",
        heartbeat_seconds=0.2,
        lock_ttl_seconds=30,
        lease_refresh=10,
    )
    runner = AgentRunner(sqlite_store, lock, config, base_url=scripted_model.base_url)
    other = AgentRunner(sqlite_store, lock, config, base_url=scripted_model.base_url)
    try:
        started = await runner.start(session, "Run the slow operation for 3 seconds.")
        await until_logged(sqlite_store, started, ToolCallStarted)
        del lock._held[session]  # the lease expires (a stalled loop, failing refreshes)
        assert await other.recover_abandoned(session)
        async with asyncio.timeout(60):
            while runner.active_count:
                await asyncio.sleep(0.05)
    finally:
        await runner.close()
        await other.close()

    events = await sqlite_store.read_session(session)
    ends = [i for i, r in enumerate(events) if isinstance(r.event, RunAbandoned)]
    assert len(ends) == 1
    after = [r.type for r in events[ends[0] + 1 :] if r.run_id == started.run_id]
    assert after == []
    terminals = [r for r in events if isinstance(r.event, RUN_TERMINAL_TYPES)]
    assert [r.type for r in terminals] == ["run_abandoned"]
    report = await verify_log(sqlite_store, session)
    assert report.problems == []
