"""Scenario 1 and 2: PostgreSQL restarts under two instances (PostgreSQL + Redis) that are
appending and streaming, and /healthz tells the truth throughout.

`pg_ctl restart -m immediate` is back in ~0.2 s, too short to see an outage from outside, so
each mode is run as `stop -m MODE`, a pause longer than the database timeout, then `start`:
appends sent during the outage must get a 503 JSON error within the timeout, and every
instance must accept appends again within 10 s of the database accepting connections, in the
same processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import aiohttp
import pytest

from tests.faults.conftest import start_server
from tests.faults.scenario import Follower, Probe, Writer, check_log, read_log
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.support.server import ServerProcess

DB_TIMEOUT = 2.0
OUTAGE = 3.0
RECOVERY_BOUND = 10.0

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_appends_resume_without_a_restart_of_agentlog_after_the_database_restarts(
    mode: str,
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    env = {
        "AGENTLOG_DATABASE_URL": private_postgres.url,
        "AGENTLOG_REDIS_URL": private_redis.url,
        "AGENTLOG_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT),
    }
    instances = [await asyncio.to_thread(start_server, servers, tmp_path, env) for _ in range(2)]
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.post(f"{instances[0].url}/v1/sessions", json={"id": "s"}) as response:
            assert response.status == 201
        writers = [Writer(http, i.url, "s", f"w{n}") for n, i in enumerate(instances)]
        followers = [Follower(http, i.url, "s") for i in instances]
        probes = [Probe(http, i.url) for i in instances]
        tasks = [asyncio.create_task(x.run()) for x in [*writers, *followers, *probes]]
        try:
            await asyncio.sleep(1.0)
            down = time.monotonic()
            await asyncio.to_thread(private_postgres.stop, mode)
            await asyncio.sleep(OUTAGE)
            await asyncio.to_thread(private_postgres.start)
            back = time.monotonic()  # pg_ctl start -w returns once it accepts connections
            # Bounded: a writer that never recovers fails the recovery assertion below.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECOVERY_BOUND + 5):
                    while any(w.recovered_after(back) is None for w in writers):
                        await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
        finally:
            for writer in writers:
                writer.stop()
        await asyncio.wait(tasks[: len(writers)], timeout=DB_TIMEOUT + 10)

        recovery = [w.recovered_after(back) for w in writers]
        log = await read_log(http, instances[0].url, "s")
        for follower in followers:
            await follower.wait_for(len(log), timeout=15)
        healthy_again = [await _healthy_after(p, back) for p in probes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    failures = [a for w in writers for a in w.failed()]
    print(
        f"\nrestart -m {mode}: recovery after the database accepted connections "
        f"{[round(r, 2) for r in recovery if r is not None]} s; healthz 200 again after "
        f"{healthy_again} s; attempted {sum(len(w.attempts) for w in writers)}, "
        f"acknowledged {sum(len(w.acknowledged) for w in writers)}, in the log {len(log) - 1}, "
        f"refused {len(failures)} ({sorted({a.code for a in failures if a.code})}), "
        f"slowest refusal {max((a.seconds for a in failures), default=0):.2f} s; SSE "
        f"reconnects {[f.reconnects for f in followers]}"
    )
    # Every instance took appends again, in the same process, within the bound.
    assert all(r is not None and r <= RECOVERY_BOUND for r in recovery), recovery
    assert all(s.proc is not None and s.proc.poll() is None for s in servers)
    # The outage was seen, and every refusal was a prompt 503 JSON error.
    assert failures, "no append failed: the outage was not observed"
    assert {a.status for a in failures} == {503}, [(a.status, a.code) for a in failures]
    assert {a.code for a in failures} <= {"store_unavailable", "append_outcome_unknown"}
    assert max(a.seconds for a in failures) <= DB_TIMEOUT + 3.0
    # Nothing acknowledged was lost, nothing duplicated, nothing refused as not written is there.
    check_log(log, writers)
    for follower in followers:
        assert follower.received == list(range(1, len(log) + 1))
    # /healthz said 503 naming the write path during the outage, and 200 once appends commit.
    for probe in probes:
        during = [failing for t, status, failing in probe.answers if down < t < back]
        assert any("writes" in failing for failing in during), probe.answers
    assert all(h is not None and h <= RECOVERY_BOUND for h in healthy_again), healthy_again


async def _healthy_after(probe: Probe, moment: float) -> float | None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(RECOVERY_BOUND + 5):
            while True:
                for t, status, _ in probe.answers:
                    if t > moment and status == 200:
                        return round(t - moment, 2)
                await asyncio.sleep(0.1)
    return None
