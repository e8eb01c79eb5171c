"""Another agentlog server process for the runner tests: its own store and runner on the same
database and Redis.

Usage: python -m tests.agent.run_worker ACTION DATABASE_URL REDIS_URL SESSION PROMPT WORKDIR
- try-start: start a run; print {"started": run_id} or {"refused": holder_run_id}; exit.
- start-and-hold: start a run, print {"started": run_id}, then keep serving it until killed.
Heartbeat 0.3 s, run lock TTL 1.5 s: a killed worker's lock expires quickly.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from agentlog.domain.errors import RunAlreadyActive
from agentlog.infra.agent.run.runner import open_agent_runner
from agentlog.infra.store.opening import open_store


async def main(action: str, url: str, redis_url: str, session: str, prompt: str, work: str) -> None:
    async with (
        open_store(url, redis_url=redis_url) as store,
        open_agent_runner(
            store,
            heartbeat_seconds=0.3,
            lock_ttl_seconds=1.5,
            workspace_root=Path(work) / "workspaces",
            run_home_root=Path(work) / "homes",
        ) as runner,
    ):
        try:
            started = await runner.start(session, prompt)
        except RunAlreadyActive as refused:
            print(json.dumps({"refused": refused.run_id}), flush=True)
            return
        print(json.dumps({"started": started.run_id}), flush=True)
        if action == "start-and-hold":
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
