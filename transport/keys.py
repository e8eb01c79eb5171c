"""Everything the app shares, under typed keys (aiohttp: no singletons). Handlers import this,
never the app factory."""

from __future__ import annotations

from aiohttp import web

from infra.store_base import StoreBase
from transport.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", StoreBase)
