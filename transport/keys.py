"""Everything the app shares, under typed keys (aiohttp: no singletons). Handlers import this,
never the app factory."""

from __future__ import annotations

import asyncio

from aiohttp import web

from domain.ports import EventStore
from infra.agent.runner import AgentRunner
from infra.projector import Projector
from infra.session_deletion import SessionDeleter
from transport.session_feed import SessionFeeds
from transport.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
# Handlers use the store through its port only (domain.ports.EventStore).
STORE = web.AppKey("store", EventStore)
FEEDS = web.AppKey("feeds", SessionFeeds)
AGENT_RUNS = web.AppKey("agent_runs", AgentRunner)
PROJECTOR = web.AppKey("projector", Projector)
DELETER = web.AppKey("deleter", SessionDeleter)
# Set when the server begins to shut down: live streams end cleanly instead of being cut.
SHUTDOWN = web.AppKey("shutdown", asyncio.Event)
