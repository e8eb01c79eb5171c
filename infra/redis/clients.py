"""Redis clients that can never hang a caller: connect and socket timeouts, health checks.

A Redis that is down fails fast on its own; a *hung* one (a half-open connection after a
failover, a NAT that dropped its state, a paused VM) answers nothing, and a client without a
socket timeout then waits for minutes. Every Redis client agentlog opens comes from here.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

REDIS_TIMEOUT_SECONDS = 2.0

log = logging.getLogger(__name__)


def redis_client(url: str, *, timeout: float = REDIS_TIMEOUT_SECONDS) -> aioredis.Redis:
    """A client whose every command fails within about `timeout` seconds when Redis is silent.

    No retries inside the client: each caller decides (the wake-up publisher coalesces and
    tries again later, the run lock reports the failure), so a bound is the timeout itself.
    """
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        # PING a connection taken from the pool when it has been idle this long, so a
        # connection that died while idle is replaced before a command is lost on it.
        health_check_interval=max(1, int(timeout * 5)),
        retry=Retry(NoBackoff(), 0),
    )


async def close_redis(client: aioredis.Redis, *, timeout: float = REDIS_TIMEOUT_SECONDS) -> None:
    """Close `client` within `timeout`: shutting down must never wait on Redis. (A close was
    seen waiting forever, with no timer pending, after its listener task was cancelled; the
    sockets left open then are closed when the client is collected.)"""
    try:
        async with asyncio.timeout(timeout):
            await client.aclose()
    except TimeoutError:
        log.warning("closing a Redis client took over %g s; left to the garbage collector", timeout)
