"""The composition root: the one place that builds agentlog from its settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from infra.store_base import StoreBase
from infra.stores import open_store
from transport.health import healthz
from transport.keys import SETTINGS, STORE
from transport.settings import Settings


def create_app(settings: Settings, *, store: StoreBase | None = None) -> web.Application:
    """Build the app. Tests pass their own store; otherwise it is opened on startup (nothing
    connects at import time) and closed on cleanup."""
    app = web.Application(client_max_size=settings.max_event_bytes + 64 * 1024)
    app[SETTINGS] = settings

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        if store is not None:
            app[STORE] = store
            yield
            return
        async with open_store(
            settings.database_url,
            redis_url=settings.redis_url,
            max_event_bytes=settings.max_event_bytes,
        ) as opened:
            app[STORE] = opened
            yield

    app.cleanup_ctx.append(store_ctx)
    app.router.add_get("/healthz", healthz)
    return app
