"""A remote cancel of a CLI that takes 12 s to stop (issue 19: the owner stopped refreshing its
lease once it saw the cancel, so with an 8 s lease and a slow CLI the run was recorded
`run_abandoned`, a new run could start beside the old CLI, and the cancel answered "cancelled"
without confirmation).

Two `agentlog serve` processes on a private PostgreSQL. The run, on the first, is in a slow tool
when the test stops its CLI (SIGSTOP) for 12 s: a CLI that does not answer the interrupt; the
cancel goes through the second.
The cancel answers only once the run's terminal event is in the log, and that event is
`run_cancelled`; while the CLI stops, the session's lease stays with the run, so a new run is
refused; nothing is left of the CLI afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from tests.e2e.test_runs_http import all_events, create_session, start_run, wait_until
from tests.faults.conftest import start_server
from tests.faults.servers import PrivatePostgres
from tests.support.server import ServerProcess

STOP_SECONDS = 12
SLOW = "[scenario:long-tool] Run the slow operation for 60 seconds"

pytestmark = pytest.mark.slow


async def test_a_remote_cancel_of_a_slow_cli_is_confirmed_and_the_lease_never_lapses(
    private_postgres: PrivatePostgres, servers: list[ServerProcess], tmp_path: Path
) -> None:
    env = {
        "AGENTLOG_DATABASE_URL": private_postgres.url,
        "AGENTLOG_REDIS_URL": "",
    }
    owner = await asyncio.to_thread(start_server, servers, tmp_path, env)
    other = await asyncio.to_thread(start_server, servers, tmp_path, env)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        sid = await create_session(http, owner.url)
        run_id = await start_run(http, owner.url, sid, SLOW)

        async def tool_started() -> bool | None:
            events = await all_events(http, owner.url, sid)
            return True if any(e["type"] == "tool_call_started" for e in events) else None

        await wait_until(tool_started, 60, what="the slow tool")
        stopped = agent_process_ids(run_id)
        assert stopped
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        resume = asyncio.get_running_loop().call_later(STOP_SECONDS, _resume, stopped)
        cancel = asyncio.create_task(
            http.post(f"{other.url}/v1/sessions/{sid}/runs/{run_id}/cancel", json={})
        )
        # While the CLI stops, past the lease's TTL (8 s), no other run starts: a prompt sent
        # meanwhile waits behind the stopping run.
        refusals = []
        while not cancel.done():
            async with http.post(f"{other.url}/v1/sessions/{sid}/runs", json={"prompt": "hi"}) as r:
                answer = await r.json()
                refusals.append((round(time.monotonic() - started, 1), answer.get("status")))
                if answer.get("status") != "queued":
                    break
            await asyncio.sleep(1.0)
        try:
            async with await cancel as response:
                status, body = response.status, await response.json()
        finally:
            resume.cancel()
            _resume(stopped)
        answered_after = time.monotonic() - started
        events = await all_events(http, owner.url, sid)

        async def gone() -> bool | None:
            return True if agent_process_ids(run_id) == [] else None

        await wait_until(gone, 30, what="the run's processes to end")
    print(
        f"\nslow cancel: answered after {answered_after:.1f} s with {body}; "
        f"new runs meanwhile {refusals}"
    )
    assert (status, body) == (202, {"run_id": run_id, "status": "cancelled"})
    ends = [e["type"] for e in events if e["type"] in ("run_cancelled", "run_abandoned")]
    assert ends == ["run_cancelled"]
    assert all(status == "queued" for _, status in refusals), refusals
    # The prompts queued meanwhile start their turns only after the cancelled run ended.
    [cancelled_at] = [e["seq"] for e in events if e["type"] == "run_cancelled"]
    later = [e for e in events if e["type"] == "run_started" and e["run_id"] != run_id]
    assert all(e["seq"] > cancelled_at for e in later)


def _resume(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
