"""GET /healthz: ready once the store is open; reports the write path, reads, and Redis when
configured, each with its latency; 503 naming the failing component when any of them fails.

The write check runs on the commit writer itself (Store.probe_writes): on PostgreSQL it
takes the log head lock on the writer's connection and commits, as an append does, so the
answer is 503 exactly while appends cannot commit (database down or hung, read-only, a dead
writer), and 200 again as soon as they can.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agentlog.infra.agent.sandbox.bubblewrap import sandbox_problem, sandbox_weaknesses
from agentlog.infra.store.opening import redis_to_check
from agentlog.infra.store.store import Store
from agentlog.transport.keys import SETTINGS, STORE
from agentlog.transport.middleware.auth import is_admin

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: `writes`, `database` (a read) and `redis` when AGENTLOG_REDIS_URL is set,
    each checked at once within 2 s; 503 when any fails, `failing` names which."""
    store = request.app[STORE]
    redis_url = request.app[SETTINGS].redis_url
    checks: dict[str, Awaitable[dict[str, Any]]] = {
        "database": check_database(store),
        "writes": check_writes(store),
    }
    if redis_url:
        checks["redis"] = check_redis(store, redis_url)
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    failing = [name for name, result in results.items() if not result["ok"]]
    for name in failing:
        log.warning("health check failed: %s: %s", name, results[name].get("error"))
    if not is_admin(request):
        # Error text names hosts, users and auth failures: only the operator sees it.
        results = {name: {"ok": result["ok"]} for name, result in results.items()}
    body: dict[str, Any] = {"status": "unavailable" if failing else "ok", **results}
    if failing:
        body["failing"] = failing
    # Checked once per process (a bwrap run, then cached): off the event loop.
    settings = request.app[SETTINGS]
    warnings = await asyncio.to_thread(sandbox_warnings, settings.agent.sandbox)
    # What the sandbox cannot hold back is the operator's to know, not a stranger's (with no
    # token configured, every route is open anyway).
    if warnings and (is_admin(request) or not (settings.api_token or settings.admin_token)):
        body["warnings"] = warnings
    return web.json_response(body, status=503 if failing else 200)


def sandbox_warnings(sandbox_on: bool) -> list[str]:
    """What the sandbox cannot do here (no Landlock, an old ABI, no pids cgroup as root): not
    a failure, since runs start, but what the operator should know (as `serve` says at start)."""
    if not sandbox_on or sandbox_problem() is not None:
        return []
    return list(sandbox_weaknesses())


def _failure(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, TimeoutError):
        return {"ok": False, "error": f"no answer within {HEALTH_TIMEOUT_SECONDS:g} s"}
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


async def _timed(check: Callable[[], Awaitable[Any]]) -> tuple[dict[str, Any], Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            value = await check()
    except Exception as exc:  # noqa: BLE001 - health reports the failure instead of raising
        return _failure(exc), None
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}, value


async def check_database(store: Store) -> dict[str, Any]:
    result, position = await _timed(store.last_position)
    if result["ok"]:
        result["last_position"] = position
    return result


async def check_writes(store: Store) -> dict[str, Any]:
    result, _ = await _timed(store.probe_writes)
    return result


async def check_redis(store: Store, redis_url: str) -> dict[str, Any]:
    """PING through the store's own Redis connection when its wake-ups use Redis (the path
    that matters), else through a short-lived one."""
    async with redis_to_check(store, redis_url, timeout=HEALTH_TIMEOUT_SECONDS) as client:
        result, _ = await _timed(client.ping)
    return result
