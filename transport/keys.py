"""Everything the app shares, under typed keys (aiohttp: no singletons). Handlers import this,
never the app factory."""

from __future__ import annotations

import asyncio

from aiohttp import web

from infra.agent.runner import AgentRunner
from infra.projector import Projector
from infra.store_base import StoreBase
from transport.session_feed import SessionFeeds
from transport.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", StoreBase)
FEEDS = web.AppKey("feeds", SessionFeeds)
AGENT_RUNS = web.AppKey("agent_runs", AgentRunner)
PROJECTOR = web.AppKey("projector", Projector)
# Set when the server begins to shut down: live streams end cleanly instead of being cut.
SHUTDOWN = web.AppKey("shutdown", asyncio.Event)
