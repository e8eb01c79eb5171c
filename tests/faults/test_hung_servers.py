"""Scenarios 3 and 4: a hung Redis and a hung PostgreSQL. The fault proxy keeps every
connection open and forwards nothing (a half-open connection: a failover, a NAT that lost its
state); connections that went silent stay silent even after the server answers again, so
agentlog must notice and replace them by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import aiohttp
import pytest

from tests.faults.conftest import start_server
from tests.faults.fault_proxy import FaultProxy
from tests.faults.scenario import Follower, Probe, Writer, check_log, read_log
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

HANG = 6.0
DB_TIMEOUT = 2.0
RECOVERY_BOUND = 10.0


async def test_a_hung_redis_neither_slows_appends_nor_loses_live_events(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    proxies: list[FaultProxy],
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    """Writes on A, a follower on B: while Redis hangs, A's appends commit as fast as before
    and B's follower gets every event through its tail's periodic re-check; once Redis
    answers again, wake-ups flow again."""
    redis_proxy = FaultProxy("127.0.0.1", private_redis.port).start()
    proxies.append(redis_proxy)
    env = {
        "AGENTLOG_DATABASE_URL": private_postgres.url,
        "AGENTLOG_REDIS_URL": f"redis://{redis_proxy.host_port}/0",
    }
    a = await asyncio.to_thread(start_server, servers, tmp_path, env)
    b = await asyncio.to_thread(start_server, servers, tmp_path, env)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.post(f"{a.url}/v1/sessions", json={"id": "s"}) as response:
            assert response.status == 201
        writer = Writer(http, a.url, "s", "w", pause=0.05)
        follower = Follower(http, b.url, "s")
        probe = Probe(http, a.url)
        tasks = [asyncio.create_task(x.run()) for x in (writer, follower, probe)]
        try:
            await asyncio.sleep(1.0)
            hung = time.monotonic()
            redis_proxy.black_hole()
            await asyncio.sleep(HANG)
            redis_proxy.pass_through()
            back = time.monotonic()
            await asyncio.sleep(1.0)
        finally:
            writer.stop()
        await asyncio.wait(tasks[:1], timeout=10)
        log = await read_log(http, a.url, "s")
        await follower.wait_for(len(log), timeout=RECOVERY_BOUND)
        # Once Redis answers again, a new event reaches B by a wake-up, not only a re-check.
        async with http.post(
            f"{a.url}/v1/sessions/s/events",
            json={"events": [{"type": "custom", "name": "after", "data": {"n": 1}}]},
        ) as response:
            assert response.status == 200
            last = (await response.json())["seqs"][0]
        sent = time.monotonic()
        await follower.wait_for(last, timeout=RECOVERY_BOUND)
        delivered_after = time.monotonic() - sent
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    during = [x for x in writer.attempts if hung <= x.started <= back]
    print(
        f"\nhung Redis for {HANG:g} s: {len(during)} appends during the hang, all committed: "
        f"{all(x.seqs for x in during)}, slowest {max(x.seconds for x in during):.3f} s; "
        f"follower on the other instance complete; next event delivered "
        f"{delivered_after:.2f} s after Redis answered again"
    )
    assert during and all(x.status == 200 for x in during)
    assert max(x.seconds for x in during) <= 1.0
    check_log(log[:-1] if log[-1]["name"] == "after" else log, [writer])
    assert follower.received == list(range(1, last + 1))
    assert any("redis" in failing for t, _, failing in probe.answers if hung < t < back)


async def test_a_hung_database_fails_appends_within_the_timeout_and_recovers_by_itself(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    proxies: list[FaultProxy],
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    pg_proxy = FaultProxy("127.0.0.1", private_postgres.port).start()
    proxies.append(pg_proxy)
    env = {
        "AGENTLOG_DATABASE_URL": f"postgresql://postgres@{pg_proxy.host_port}/postgres",
        "AGENTLOG_REDIS_URL": private_redis.url,
        "AGENTLOG_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT),
    }
    instance = await asyncio.to_thread(start_server, servers, tmp_path, env)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.post(f"{instance.url}/v1/sessions", json={"id": "s"}) as response:
            assert response.status == 201
        writer = Writer(http, instance.url, "s", "w", pause=0.05)
        follower = Follower(http, instance.url, "s")
        probe = Probe(http, instance.url)
        tasks = [asyncio.create_task(x.run()) for x in (writer, follower, probe)]
        try:
            await asyncio.sleep(1.0)
            hung = time.monotonic()
            pg_proxy.black_hole()
            await asyncio.sleep(DB_TIMEOUT)
            read_started = time.monotonic()
            async with http.get(f"{instance.url}/v1/sessions/s") as response:
                read_status = response.status
                read_error = (await response.json())["error"]["code"]
            read_seconds = time.monotonic() - read_started
            await asyncio.sleep(max(0.0, hung + HANG - time.monotonic()))
            pg_proxy.pass_through()  # the silent connections stay silent: agentlog must drop them
            back = time.monotonic()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECOVERY_BOUND + 5):
                    while writer.recovered_after(back) is None:
                        await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
        finally:
            writer.stop()
        await asyncio.wait(tasks[:1], timeout=DB_TIMEOUT + 10)
        log = await read_log(http, instance.url, "s")
        await follower.wait_for(len(log), timeout=15)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    recovery = writer.recovered_after(back)
    failures = writer.failed()
    print(
        f"\nhung PostgreSQL for {HANG:g} s: {len(failures)} appends refused "
        f"({sorted({a.code for a in failures if a.code})}), slowest refusal "
        f"{max((a.seconds for a in failures), default=0):.2f} s; appends again "
        f"{recovery and round(recovery, 2)} s after the database answered; "
        f"attempted {len(writer.attempts)}, acknowledged {len(writer.acknowledged)}, "
        f"in the log {len(log) - 1}"
    )
    assert recovery is not None and recovery <= RECOVERY_BOUND
    assert (read_status, read_error) == (503, "store_unavailable")
    assert read_seconds <= DB_TIMEOUT + 3.0
    assert failures and {a.status for a in failures} == {503}
    assert {a.code for a in failures} <= {"store_unavailable", "append_outcome_unknown"}
    assert max(a.seconds for a in failures) <= DB_TIMEOUT + 3.0
    check_log(log, [writer])
    assert follower.received == list(range(1, len(log) + 1))
    during = [failing for t, status, failing in probe.answers if hung + DB_TIMEOUT < t < back]
    assert during and all("writes" in failing for failing in during), probe.answers
