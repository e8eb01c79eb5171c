"""Redis beside any database (`redis://`, `rediss://`, `unix://`): the wake-ups every server
process sharing it hears, whatever database holds the log. Who owns a run is always the
database's to say (its run lock), never Redis's: a Redis restarted empty must not hand a live
run to a second owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import redis.exceptions

from agentlog.domain.ports.wakeups import Wakeups
from agentlog.infra.redis.clients import close_redis, redis_client
from agentlog.infra.redis.wakeups import RedisWakeups

SCHEMES = ("redis", "rediss", "unix")
# What the client raises when a command or the connection fails: an operator command reports
# it in one line.
DRIVER_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.RedisError,)
SERVICE = "redis"
# Redis is down or unreachable (a refused or lost connection, a timeout): retrying later helps.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def new_wakeups(url: str) -> RedisWakeups:
    """Wake-ups on Redis, not yet open: `namespace` them, then open them."""
    return RedisWakeups(url)


async def open_wakeups(url: str) -> RedisWakeups:
    return await RedisWakeups(url).open()


@asynccontextmanager
async def client_to_check(
    url: str, *, wakeups: Wakeups, timeout: float
) -> AsyncIterator[aioredis.Redis]:
    """The wake-ups' own Redis connection when they use Redis (the path that matters), else a
    short-lived one, closed on exit."""
    own = wakeups.redis if isinstance(wakeups, RedisWakeups) else None
    client: aioredis.Redis = own or redis_client(url, timeout=timeout)
    try:
        yield client
    finally:
        if own is None:
            await close_redis(client, timeout=timeout)
