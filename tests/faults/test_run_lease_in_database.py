"""On PostgreSQL the run lease lives in the database, whatever Redis does (issue 22): an
instance started without AGENTLOG_REDIS_URL and one with it keep one run per session, and a
Redis restarted empty hands no run to a second owner. Redis is a private redis-server."""

from __future__ import annotations

import asyncio
import subprocess

from agentlog.infra.store.opening import open_run_lock, open_store
from tests.faults.servers import PrivateRedis

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
