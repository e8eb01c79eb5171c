"""Run integrity across real server processes on PostgreSQL without Redis: the run lease
lives in PostgreSQL, a live run is never abandoned by another instance, and a crashed
instance's run is noticed within seconds (by an idle instance too), its CLI gone with it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.opening import open_store
from tests.e2e.test_runs_http import (  # noqa: F401 - fixtures
    RUN_TERMINALS,
    all_events,
    create_session,
    http,
    long_prompt,
    orphans,
    servers,
    start,
    start_run,
    wait_until,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

# The bound, with default lease settings: noticed, recorded, and a new run accepted.
RECOVERY_BOUND_SECONDS = 15.0


async def test_two_postgres_only_instances_keep_one_run_and_recover_a_killed_one_in_seconds(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    postgres_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
    orphans: list[int],  # noqa: F811
) -> None:
    env = {
        "AGENTLOG_DATABASE_URL": postgres_url,
        "AGENTLOG_REDIS_URL": "",
        # The run is recorded abandoned, as with continuation off: a turn that goes on after a
        # crash is tests/faults/test_turn_survives_its_server.py.
        "AGENTLOG_CONTINUE_AFTER_CRASH": "off",
    }
    a = start(servers, tmp_path, env)
    b = start(servers, tmp_path, env)
    async with asyncio.timeout(120):
        sid = await create_session(http, a.url)
        run_id = await start_run(http, a.url, sid, long_prompt(60))

        async def tool_running() -> bool:
            events = await all_events(http, a.url, sid)
            return any(e["type"] == "tool_call_started" for e in events)

        await wait_until(tool_running, 60, what="the long tool to start")
        # B sees A's live run: a prompt waits behind it (no run starts beside it), and B's
        # sweeper (every 2 s), over more than a lease TTL (8 s), never records it abandoned.
        async with http.post(f"{b.url}/v1/sessions/{sid}/runs", json={"prompt": "hi"}) as r:
            assert r.status == 202
            queued = await r.json()
            assert (queued["status"], queued["behind_run_id"]) == ("queued", run_id)
        await asyncio.sleep(10)
        events = await all_events(http, b.url, sid)
        assert not any(e["type"] in RUN_TERMINALS for e in events)
        assert sum(e["type"] == "run_started" for e in events) == 1
        assert agent_process_ids(run_id), "A's agent runs on"

        a.kill()
        killed_at = time.monotonic()
        orphans += agent_process_ids(run_id)  # killed by the test if the watch failed

        async def cli_exited() -> bool:
            return not agent_process_ids(run_id)

        # Its orphan watch ends the dead server's CLI at once, before any recovery.
        await wait_until(cli_exited, RECOVERY_BOUND_SECONDS, interval=0.05, what="the CLI's exit")
        cli_exit = time.monotonic() - killed_at

        async def abandoned() -> bool:
            events = await all_events(http, b.url, sid)
            return any(e["type"] == "run_abandoned" for e in events)

        # Nobody starts anything on B: its sweeper notices by itself, and starts the prompt
        # that waited behind the dead run.
        await wait_until(abandoned, RECOVERY_BOUND_SECONDS, interval=0.1, what="run_abandoned")
        noticed = time.monotonic() - killed_at

        async def queued_turn() -> str | None:
            events = await all_events(http, b.url, sid)
            started = [
                e["run_id"]
                for e in events
                if e["type"] == "run_started" and e.get("queued_seq") == queued["queued_seq"]
            ]
            return started[0] if started else None

        second = await wait_until(queued_turn, RECOVERY_BOUND_SECONDS, what="the queued turn")
        accepted = time.monotonic() - killed_at
        assert accepted < RECOVERY_BOUND_SECONDS

        print(
            f"kill -9 -> run_abandoned {noticed:.1f} s, -> queued turn started {accepted:.1f} s, "
            f"the dead server's CLI exited after {cli_exit:.2f} s"
        )

        events = await all_events(http, b.url, sid)
        ends = [e for e in events if e["run_id"] == run_id and e["type"] in RUN_TERMINALS]
        assert [e["type"] for e in ends] == ["run_abandoned"]
        messages = await (await http.get(f"{b.url}/v1/sessions/{sid}/messages")).json()
        parts = [p for m in messages["messages"] for p in m["parts"] if "toolCallId" in p]
        first_run = [
            p
            for p in parts
            if p["toolCallId"]
            in {e["tool_call_id"] for e in events if e["type"] == "tool_call_started"}
        ]
        assert first_run and all(p["state"] == "output-error" for p in first_run[:1])

        async def second_ended() -> bool:
            events = await all_events(http, b.url, sid)
            return any(e["run_id"] == second and e["type"] in RUN_TERMINALS for e in events)

        await wait_until(second_ended, 60, what="the second run's end")
    async with open_store(postgres_url) as store:
        assert (await verify_log(store, sid)).problems == []
