"""kill -9 of the server while a prompt is queued behind its run, on SQLite and PostgreSQL:
the queue is in the log, so the server started again (SQLite: on the same file; PostgreSQL:
a second instance beside the dead one) starts the queued prompt's turn, which finishes;
`verify` finds nothing wrong. With crash continuation off the dead run is recorded
`run_abandoned` first; with it on, the dead run's turn is finished first (its slow tool
called again by the scripted model) and the queued turn comes after it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.opening import open_store
from tests.e2e.test_runs_http import all_events, create_session, long_prompt, start_run, wait_until
from tests.faults.conftest import database_env, start_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("database", "continuation"), [("sqlite", "off"), ("postgres", "off"), ("sqlite", "on")]
)
async def test_a_queued_prompt_gets_its_turn_after_kill_9_of_the_server(
    database: str,
    continuation: str,
    request: pytest.FixtureRequest,
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    env = {
        "AGENTLOG_RUN_LOCK_TTL_SECONDS": "3",
        "AGENTLOG_REDIS_URL": "",
        "AGENTLOG_CONTINUE_AFTER_CRASH": continuation,
    }
    # Long enough to be killed in; with continuation on the scripted model calls it again.
    slow = long_prompt(120 if continuation == "off" else 6)
    env |= database_env(database, request, tmp_path)
    server = await asyncio.to_thread(start_server, servers, tmp_path, env)
    orphans: list[int] = []
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, asyncio.timeout(180):
            sid = await create_session(http, server.url)
            run_id = await start_run(http, server.url, sid, slow)

            async def tool_started() -> bool | None:
                events = await all_events(http, server.url, sid)
                return True if any(e["type"] == "tool_call_started" for e in events) else None

            await wait_until(tool_started, 60, what="the slow tool to start")
            async with http.post(
                f"{server.url}/v1/sessions/{sid}/runs", json={"prompt": "Hello after the crash"}
            ) as response:
                assert response.status == 202
                queued = await response.json()
            assert (queued["status"], queued["behind_run_id"]) == ("queued", run_id)
            orphans += agent_process_ids(run_id)
            server.kill()
            server = await asyncio.to_thread(start_server, servers, tmp_path, env)

            async def queued_turn_ended() -> list[dict[str, Any]] | None:
                events = await all_events(http, server.url, sid)
                [queued_run] = [
                    e["run_id"]
                    for e in events
                    if e["type"] == "run_started" and e.get("queued_seq") == queued["queued_seq"]
                ] or [None]
                ended = any(
                    e["type"] == "run_finished" and e["run_id"] == queued_run for e in events
                )
                return events if ended else None

            events = await wait_until(queued_turn_ended, 90, what="the queued turn to end")
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    terminals = [
        (e["type"], e["run_id"])
        for e in events
        if e["type"] in ("run_finished", "run_failed", "run_cancelled", "run_abandoned")
    ]
    assert terminals[0] == ("run_abandoned", run_id)
    runs = [e for e in events if e["type"] == "run_started"]
    if continuation == "off":
        assert [r["prompt"] for r in runs] == [slow, "Hello after the crash"]
    else:
        # The dead run's turn went on in a run of its own, which finished before the queued turn.
        assert [r["prompt"] for r in runs][::2] == [slow, "Hello after the crash"]
        continued = runs[1]
        assert continued["continues_run_id"] == run_id and continued["resumed_after_crash"] == 1
        assert terminals[1] == ("run_finished", continued["run_id"])
    async with open_store(env["AGENTLOG_DATABASE_URL"]) as store:
        report = await verify_log(store)
    assert report.problems == []
