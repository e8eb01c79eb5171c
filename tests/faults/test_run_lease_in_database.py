"""On PostgreSQL the run lease lives in the database, whatever Redis does (issue 22): an
instance started without AGENTLOG_REDIS_URL and one with it keep one run per session, and a
Redis restarted empty hands no run to a second owner. Redis is a private redis-server."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import aiohttp

from agentlog.infra.store.opening import open_run_lock, open_store
from tests.e2e.test_runs_http import (
    all_events,
    create_session,
    long_prompt,
    run_ended,
    start,
    start_run,
)
from tests.faults.servers import PrivateRedis
from tests.support.server import ServerProcess

TTL_MS = 60_000


async def test_instances_with_and_without_redis_share_one_run_lease(
    postgres_url: str, private_redis: PrivateRedis
) -> None:
    async with (
        open_store(postgres_url, redis_url=private_redis.url) as with_redis,
        open_store(postgres_url) as without_redis,
    ):
        lock_with = await open_run_lock(with_redis)
        lock_without = await open_run_lock(without_redis)
        try:
            lease = await lock_with.acquire("s", "run-1", TTL_MS)
            assert lease is not None
            assert await lock_without.acquire("s", "run-2", TTL_MS) is None
            assert await lock_without.holder("s") == "run-1"

            # Redis restarted empty (no persistence): the lease is still the live run's.
            flushed = await asyncio.to_thread(
                subprocess.run,
                ["redis-cli", "-p", str(private_redis.port), "FLUSHALL"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert flushed.stdout.strip() == "OK"
            again = await open_run_lock(with_redis)
            try:
                assert await again.acquire("s", "run-3", TTL_MS) is None
                assert await again.holder("s") == "run-1"
            finally:
                await again.close()
            assert await lock_with.refresh(lease)
        finally:
            await lock_with.close()
            await lock_without.close()


async def test_a_server_without_redis_never_abandons_the_live_run_of_one_with_it(
    postgres_url: str, private_redis: PrivateRedis, servers: list[ServerProcess], tmp_path: Path
) -> None:
    # Issue 22: each side used a different lock, and they abandoned each other's runs in 0.25 s.
    # postgres_url comes first so its teardown (dropping the schema) runs after the servers stop.
    with_redis = start(servers, tmp_path, {"AGENTLOG_DATABASE_URL": postgres_url,
                                           "AGENTLOG_REDIS_URL": private_redis.url})  # fmt: skip
    without = start(servers, tmp_path, {"AGENTLOG_DATABASE_URL": postgres_url})
    async with aiohttp.ClientSession() as http:
        sid = await create_session(http, with_redis.url)
        run_id = await start_run(http, with_redis.url, sid, long_prompt(4))
        # Both sweepers run every 2 s meanwhile; the one without Redis sees the lease.
        async with http.post(
            f"{without.url}/v1/sessions/{sid}/runs", json={"prompt": "hello"}
        ) as response:
            # Queued behind the live run, not started beside it (nor the run abandoned).
            assert response.status == 202
            assert (await response.json())["behind_run_id"] == run_id
        terminal = await run_ended(http, without.url, sid, run_id, timeout=60)
        assert terminal["type"] == "run_finished", terminal
        types = [e["type"] for e in await all_events(http, without.url, sid)]
        assert "run_abandoned" not in types
