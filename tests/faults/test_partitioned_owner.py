"""A run's owner cut off from PostgreSQL while it still reaches Redis (issue 19: such an
instance kept every other out of the session for 36 s, against 7 s when Redis played no
part). Run leases now live in the database only, so Redis no longer matters: the owner cannot
refresh its lease, and once it expires the other instance records `run_abandoned` and takes a
new run. Two `agentlog serve` on a private PostgreSQL and a private Redis; the owner reaches
PostgreSQL through the fault proxy, which is black-holed mid-run. The takeover time is
printed, not asserted (the test only waits a generous minute for it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_runs_http import all_events, create_session, start_run, wait_until
from tests.faults.conftest import start_server
from tests.faults.fault_proxy import FaultProxy
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.support.server import ServerProcess

SLOW = "[scenario:long-tool] Run the slow operation for 60 seconds"

pytestmark = pytest.mark.slow


async def test_an_owner_cut_off_from_postgres_but_not_redis_is_taken_over_after_its_lease(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    proxies: list[FaultProxy],
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    proxy = FaultProxy("127.0.0.1", private_postgres.port).start()
    proxies.append(proxy)
    proxied = private_postgres.url.replace(f":{private_postgres.port}/", f":{proxy.port}/")
    # Off: what is timed here is the takeover, seen as `run_abandoned` and a new run accepted;
    # with it on the other instance goes on with the turn instead (test_turn_survives_its_server).
    common = {
        "AGENTLOG_REDIS_URL": private_redis.url,
        "AGENTLOG_DB_TIMEOUT_SECONDS": "2",
        "AGENTLOG_CONTINUE_AFTER_CRASH": "off",
    }
    owner = await asyncio.to_thread(
        start_server, servers, tmp_path, {**common, "AGENTLOG_DATABASE_URL": proxied}
    )
    other = await asyncio.to_thread(
        start_server, servers, tmp_path, {**common, "AGENTLOG_DATABASE_URL": private_postgres.url}
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        sid = await create_session(http, owner.url)
        run_id = await start_run(http, owner.url, sid, SLOW)

        async def tool_started() -> bool | None:
            events = await all_events(http, other.url, sid)
            return True if any(e["type"] == "tool_call_started" for e in events) else None

        await wait_until(tool_started, 60, what="the slow tool")
        proxy.black_hole()
        cut = time.monotonic()

        # A prompt sent meanwhile would be queued behind the live run (not refused): so the
        # takeover is seen in the log, then a new run is started and must start at once.
        async def abandoned() -> bool | None:
            events = await all_events(http, other.url, sid)
            ended = [e for e in events if e["run_id"] == run_id and e["type"] == "run_abandoned"]
            return True if ended else None

        await wait_until(abandoned, 60, interval=0.5, what="the owner's run abandoned")
        taken_over_after = time.monotonic() - cut
        async with http.post(
            f"{other.url}/v1/sessions/{sid}/runs", json={"prompt": "hello"}
        ) as response:
            assert response.status == 202, await response.text()
            started = await response.json()
        assert started["status"] == "started", started
        second = started["run_id"]
        events = await all_events(http, other.url, sid)
        proxy.pass_through()
    print(
        f"\npartitioned owner (Redis reachable): its run abandoned {taken_over_after:.1f} s after"
    )
    ends = [e["type"] for e in events if e["run_id"] == run_id and e["type"].startswith("run_")]
    assert ends[-1] == "run_abandoned", ends
    assert second != run_id
