"""kill -9 of the server that received an approval's answer, 0, 0.5 and 1 s after the answer,
on SQLite, PostgreSQL and PostgreSQL+Redis (issue 19: an approval answered just before its
server died deadlocked the session forever).

On PostgreSQL (with and without Redis) two `agentlog serve` processes: the first runs the turn
that asks (and defers after a short grace), the second receives the answer and is killed. On
SQLite, whose run lock is the process's own (one serving process per file), the one process
asks, takes the answer and is killed, and is started again on the same file. Without anyone
asking again, the surviving (or restarted) instance must carry the turn on: the approved tool
runs exactly once, no run is left open, no approval waits, the session takes a new prompt, and
`verify` finds nothing wrong.

A kill after the tool ran but before the turn's last words leaves the turn `abandoned` (not
running, nothing waiting, a new prompt is taken); carrying such a turn to its end is the later
step of issue 19 ("a turn survives its server")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.opening import open_store
from tests.e2e.test_approvals_http import PUBLISH, answer, assert_ran_once, settled, waiting_alone
from tests.e2e.test_runs_http import create_session, get_json, start_run, wait_until
from tests.faults.conftest import database_env, start_server, start_two_servers
from tests.support.server import ServerProcess

LEASE_SECONDS = 3

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("database", ["sqlite", "postgres", "postgres+redis"])
async def test_an_answered_approval_continues_after_kill_9_of_the_server_that_took_the_answer(
    database: str,
    delay: float,
    request: pytest.FixtureRequest,
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    env = {
        "AGENTLOG_APPROVAL_GRACE_SECONDS": "0.3",
        "AGENTLOG_RUN_LOCK_TTL_SECONDS": str(LEASE_SECONDS),
        "AGENTLOG_REDIS_URL": "",
    }
    env |= database_env(database, request, tmp_path)
    asker, answerer = await asyncio.to_thread(start_two_servers, database, servers, tmp_path, env)
    orphans: list[int] = []
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, asyncio.timeout(240):
            sid = await create_session(http, asker.url)
            await start_run(http, asker.url, sid, PUBLISH)
            [asked] = await waiting_alone(http, asker.url, sid)
            status, body = await answer(
                http, answerer.url, sid, asked["approval_id"], approved=True
            )
            # 200: the asking run was still finishing (its CLI exiting past the hand-over);
            # its runner then continues the turn when it ends.
            assert status in (200, 202), body
            await asyncio.sleep(delay)
            answerer.kill()
            if body["run"] is not None:
                orphans += agent_process_ids(body["run"]["run_id"])
            if answerer is asker:
                asker = await asyncio.to_thread(start_server, servers, tmp_path, env)

            events = await settled(http, asker.url, sid)
            assert_ran_once(events, asked["tool_call_id"])
            session = await get_json(http, f"{asker.url}/v1/sessions/{sid}")
            assert session["status"] in ("idle", "abandoned"), session
            assert session["pending_approvals"] == [] and session["active_run"] is None
            # The session takes a new prompt, and its turn ends.
            next_run = await start_run(http, asker.url, sid, "hi")
            await wait_until(lambda: _ended(http, asker.url, sid, next_run), 60, what="hi")
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    async with open_store(env["AGENTLOG_DATABASE_URL"]) as store:
        report = await verify_log(store)
    assert report.problems == []


async def _ended(http: aiohttp.ClientSession, base: str, sid: str, run_id: str) -> bool | None:
    session = await get_json(http, f"{base}/v1/sessions/{sid}")
    return True if session["active_run"] is None and session["status"] == "idle" else None
