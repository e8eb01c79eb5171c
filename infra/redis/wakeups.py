"""Wake-ups across processes through Redis pub/sub.

After a commit the store names the sessions; local readers are woken at once, and a publisher
task of its own sends them to every other process. The commit path never waits for Redis: a
hung Redis (connection open, nothing answers) would otherwise hold up every append in the
process. While one publish is on its way, sessions committed meanwhile are coalesced into the
next message, so a slow Redis costs fewer messages, not a growing queue.

Publishing happens after COMMIT, so a crash in between, or a Redis that is down or hung, loses
a wake-up: readers re-check the log periodically, so that only delays them. The listener pings
its own connection and starts a new one when Redis stops answering; on every (re)connect it
wakes everyone, because it cannot know what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence

import redis.asyncio as aioredis

from agentlog.infra.local.wakeups import BridgedWakeups
from agentlog.infra.redis.clients import REDIS_TIMEOUT_SECONDS, close_redis, redis_client

log = logging.getLogger(__name__)

CHANNEL = "agentlog:wakeups"
# A message naming more sessions than this says "every session" instead.
_MAX_MESSAGE_BYTES = 64 * 1024


class RedisWakeups(BridgedWakeups):
    """Local hub plus a Redis channel shared by every agentlog process."""

    def __init__(
        self, url: str, *, channel: str = CHANNEL, timeout: float = REDIS_TIMEOUT_SECONDS
    ) -> None:
        super().__init__(own_token=secrets.token_hex(4))
        self.url = url
        self.channel = channel
        self.timeout = timeout
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._pending: set[str] = set()
        self._has_pending = asyncio.Event()
        self._ready = asyncio.Event()
        self.published = 0
        self.publish_failures = 0
        self.listener_reconnects = 0

    def namespace(self, deployment: str) -> None:
        """Use the channel of this deployment (before `open`): deployments sharing a Redis
        never hear of each other's sessions."""
        self.channel = f"{CHANNEL}:{deployment}"

    async def open(self) -> RedisWakeups:
        self._redis = redis_client(self.url, timeout=self.timeout)
        await self._redis.ping()
        self._listener = asyncio.create_task(self._listen(), name="agentlog-redis-wakeups")
        self._publisher = asyncio.create_task(self._publish_loop(), name="agentlog-redis-publish")
        async with asyncio.timeout(10):
            await self._ready.wait()
        return self

    async def close(self) -> None:
        tasks = [t for t in (self._listener, self._publisher) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a task stuck in the client's own cleanup must not hold up a shutdown.
            await asyncio.wait(tasks, timeout=self.timeout)
        if self._redis is not None:
            await close_redis(self._redis, timeout=self.timeout)

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None, "RedisWakeups is not open"
        return self._redis

    async def publish(self, session_ids: Sequence[str]) -> None:
        """Called on the commit path: wakes local readers and returns without any I/O."""
        self.local.wake(session_ids)
        self._pending.update(session_ids)
        self._has_pending.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._has_pending.wait()
            self._has_pending.clear()
            sessions, self._pending = self._pending, set()
            ids = ",".join(sessions)
            if len(ids) > _MAX_MESSAGE_BYTES:
                ids = "*"
            try:
                await self.redis.publish(self.channel, self.own_token + "|" + ids)
                self.published += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a lost wake-up only delays remote readers
                self.publish_failures += 1
                log.warning("could not publish wake-up to Redis: %s", exc)
                await asyncio.sleep(0.2)  # Redis is in trouble: let commits coalesce

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(self.timeout):
                    await pubsub.subscribe(self.channel)
                self._ready.set()
                self.local.wake_everyone()
                await self._read_until_silent(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep listening through Redis restarts
                log.warning("Redis wake-up listener lost its connection: %s", exc)
            finally:
                await self._drop(pubsub)
            self.listener_reconnects += 1
            await asyncio.sleep(0.5)

    async def _read_until_silent(self, pubsub: aioredis.client.PubSub) -> None:
        """Deliver messages; PING when the channel is quiet, and return (to reconnect) when
        Redis has said nothing, not even PONG, for `timeout` seconds after a PING."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        pinged: float | None = None
        while True:
            message = await pubsub.get_message(timeout=min(1.0, self.timeout / 2))
            now = loop.time()
            if message is not None:
                heard, pinged = now, None
                if message.get("type") == "message":
                    self._on_message(message["data"])
                continue
            if pinged is not None and now - pinged > self.timeout:
                raise ConnectionError(f"Redis did not answer a PING within {self.timeout:g} s")
            if pinged is None and now - heard > self.timeout:
                await pubsub.ping()
                pinged = now

    async def _drop(self, pubsub: aioredis.client.PubSub) -> None:
        # A hung connection must not be waited on: disconnect without a goodbye.
        connection = pubsub.connection
        with contextlib.suppress(Exception):
            if connection is not None:
                await connection.disconnect(nowait=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await pubsub.aclose()

    def _on_message(self, data: bytes | str) -> None:
        self._deliver(data.decode() if isinstance(data, bytes) else data)
