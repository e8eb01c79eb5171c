"""GET /healthz: ready once the store is open; reports the database, and Redis when configured,
each with its latency; 503 when either is unreachable."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from infra.redis_wakeups import RedisWakeups
from infra.store_base import StoreBase
from transport.auth import is_admin
from transport.keys import SETTINGS, STORE

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the database, and Redis when AGENTLOG_REDIS_URL is set, each with its
    latency; 503 when either is unreachable (checked at once, each within 2 s)."""
    store = request.app[STORE]
    redis_url = request.app[SETTINGS].redis_url
    if redis_url:
        database, redis = await asyncio.gather(check_database(store), check_redis(store, redis_url))
    else:
        database, redis = await check_database(store), None
    healthy = database["ok"] and (redis is None or redis["ok"])
    components = {"database": database} if redis is None else {"database": database, "redis": redis}
    for name, check in components.items():
        if not check["ok"]:
            log.warning("health check failed: %s: %s", name, check["error"])
    if not is_admin(request):
        # Error text names hosts, users and auth failures: only the operator sees it.
        components = {name: {"ok": check["ok"]} for name, check in components.items()}
    body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", **components}
    return web.json_response(body, status=200 if healthy else 503)


def _failure(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, TimeoutError):
        return {"ok": False, "error": f"no answer within {HEALTH_TIMEOUT_SECONDS:g} s"}
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


async def check_database(store: StoreBase) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            position = await store.last_position()
    except Exception as exc:  # noqa: BLE001 - health reports the failure instead of raising
        return _failure(exc)
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return {"ok": True, "latency_ms": latency_ms, "last_position": position}


async def check_redis(store: StoreBase, redis_url: str) -> dict[str, Any]:
    """PING through the store's own Redis connection when its wake-ups use Redis (the path
    that matters), else through a short-lived one."""
    wakeups = store.wakeups
    own = wakeups.redis if isinstance(wakeups, RedisWakeups) else None
    client = own or aioredis.Redis.from_url(
        redis_url,
        socket_connect_timeout=HEALTH_TIMEOUT_SECONDS,
        socket_timeout=HEALTH_TIMEOUT_SECONDS,
    )
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await client.ping()
    except Exception as exc:  # noqa: BLE001 - health reports the failure instead of raising
        return _failure(exc)
    finally:
        if own is None:
            await client.aclose()
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
