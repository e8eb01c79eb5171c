"""The composition root: the one place that builds agentlog from its settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from infra.store_base import StoreBase
from infra.stores import open_store
from transport import sessions_api
from transport.auth import bearer_auth
from transport.errors import json_errors
from transport.health import healthz
from transport.keys import FEEDS, SETTINGS, SHUTDOWN, STORE
from transport.openapi import openapi_json
from transport.session_feed import SessionFeeds
from transport.settings import Settings


def create_app(settings: Settings, *, store: StoreBase | None = None) -> web.Application:
    """Build the app. Tests pass their own store; otherwise it is opened on startup (nothing
    connects at import time) and closed on cleanup."""
    app = web.Application(
        client_max_size=settings.max_body_bytes, middlewares=[json_errors, bearer_auth]
    )
    app[SETTINGS] = settings
    app[SHUTDOWN] = asyncio.Event()

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

    async def feeds_ctx(app: web.Application) -> AsyncIterator[None]:
        app[FEEDS] = SessionFeeds(app[STORE])
        yield
        await app[FEEDS].close()

    async def on_shutdown(app: web.Application) -> None:
        app[SHUTDOWN].set()
        if FEEDS in app:
            app[FEEDS].wake_all()

    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(feeds_ctx)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/openapi.json", openapi_json)
    sessions_api.add_routes(app)
    return app
