"""GET /healthz: ready as soon as the store is open."""

from __future__ import annotations

import time

from aiohttp import web

from transport.keys import STORE


async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    started = time.perf_counter()
    try:
        position = await store.last_position()
    except Exception as exc:  # noqa: BLE001 - health reports the failure instead of raising
        return web.json_response(
            {"status": "unavailable", "database": {"ok": False, "error": str(exc)}}, status=503
        )
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return web.json_response(
        {
            "status": "ok",
            "database": {"ok": True, "latency_ms": latency_ms, "last_position": position},
        }
    )
