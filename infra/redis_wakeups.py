"""Wake-ups across processes through Redis pub/sub.

After a commit the store publishes the session ids; every process's listener wakes its local
readers. Publishing happens after COMMIT, so a crash in between loses a wake-up: readers
re-check the log periodically, so that only delays them. On reconnect the listener wakes
everyone, because it cannot know what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from infra.wakeups import BridgedWakeups

log = logging.getLogger(__name__)

CHANNEL = "agentlog:wakeups"


class RedisWakeups(BridgedWakeups):
    """Local hub plus a Redis channel shared by every agentlog process."""

    def __init__(self, url: str, *, channel: str = CHANNEL) -> None:
        super().__init__(own_token=secrets.token_hex(4))
        self.url = url
        self.channel = channel
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def open(self) -> RedisWakeups:
        self._redis = aioredis.Redis.from_url(self.url)
        await self._redis.ping()
        self._listener = asyncio.create_task(self._listen(), name="agentlog-redis-wakeups")
        async with asyncio.timeout(10):
            await self._ready.wait()
        return self

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None, "RedisWakeups is not open"
        return self._redis

    async def publish(self, session_ids: Sequence[str]) -> None:
        self.local.wake(session_ids)
        try:
            await self.redis.publish(self.channel, self.own_token + "|" + ",".join(session_ids))
        except Exception as exc:  # noqa: BLE001 - a lost wake-up only delays remote readers
            log.warning("could not publish wake-up to Redis: %s", exc)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._pubsub() as pubsub:
                    self._ready.set()
                    self.local.wake_everyone()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep listening through Redis restarts
                log.warning("Redis wake-up listener lost its connection: %s", exc)
                await asyncio.sleep(0.5)

    @asynccontextmanager
    async def _pubsub(self) -> AsyncIterator[aioredis.client.PubSub]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        try:
            yield pubsub
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _on_message(self, data: bytes | str) -> None:
        self._deliver(data.decode() if isinstance(data, bytes) else data)
