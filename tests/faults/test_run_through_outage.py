"""A run through a database outage: PostgreSQL stops for 6 seconds in the middle of a tool,
then comes back. The run's recorder keeps its queue and retries while the run holds its lease
(the lease lives in the same PostgreSQL and outlives the outage), so the run's record is
complete: nothing dropped, nothing doubled, one terminal event, and `verify` is clean."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentlog.domain.events import RUN_TERMINAL_TYPES, SessionCreated, ToolCallStarted
from agentlog.infra.agent.run.runner import open_agent_runner
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.opening import open_store
from tests.faults.servers import PrivatePostgres

# Longer than a store append's own retries (db_timeout) and the recorder's first retries.
OUTAGE = 6.0


async def test_a_six_second_database_outage_mid_run_loses_nothing_of_the_run(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    async with (
        open_store(private_postgres.url, db_timeout=0.5) as store,
        open_agent_runner(
            store,
            workspace_root=tmp_path / "workspaces",
            run_home_root=tmp_path / "homes",
            heartbeat_seconds=0.3,
            lock_ttl_seconds=15,  # the lease (in the same database) outlives the outage
        ) as runner,
    ):
        await store.append("s", [SessionCreated()])
        started = await runner.start(
            "s", "[scenario:long-tool] Run the slow operation for 8 seconds"
        )
        async with asyncio.timeout(60), store.subscribe("s") as wakeup:
            while not any(
                isinstance(r.event, ToolCallStarted) for r in await store.read_session("s")
            ):
                await wakeup.wait(0.2)
        await asyncio.to_thread(private_postgres.stop, "immediate")
        await asyncio.sleep(OUTAGE)  # heartbeats and maybe the tool's result queue up
        await asyncio.to_thread(private_postgres.start)
        async with asyncio.timeout(60):
            while runner.active_count:
                await asyncio.sleep(0.1)
        delayed = runner.delayed_batches

        events = await store.read_session("s")
        report = await verify_log(store, "s")

    ours = [r for r in events if r.run_id == started.run_id]
    terminals = [r.type for r in ours if isinstance(r.event, RUN_TERMINAL_TYPES)]
    assert terminals == ["run_finished"]
    assert ours[-1].type == "run_finished"
    ends = [r for r in ours if r.type in ("tool_call_succeeded", "tool_call_failed")]
    assert len(ends) == 1 and ends[0].type == "tool_call_succeeded"
    # Heartbeats every 0.3 s kept coming through the outage: queued, then written in order.
    assert sum(r.type == "heartbeat" for r in ours) >= OUTAGE / 0.3 * 0.5
    assert [r.seq for r in events] == list(range(1, len(events) + 1))
    assert delayed >= 1
    assert report.problems == []
