"""Everything the app shares, under typed keys (aiohttp: no singletons). Handlers import this,
never the app factory."""

from __future__ import annotations

import asyncio

from aiohttp import web

from agentlog.domain.ports.run_lock import RunLock
from agentlog.infra.agent.run.runner import AgentRunner
from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.store.projector import Projector
from agentlog.infra.store.store import Store
from agentlog.transport.settings import Settings
from agentlog.transport.streaming.session_feed import SessionFeeds

SETTINGS = web.AppKey("settings", Settings)
# Handlers use the store through its port only (agentlog.infra.store.store.Store: the EventStore
# port, its backend and its commit writer), never through StoreBase or a backend's class.
STORE = web.AppKey("store", Store)
FEEDS = web.AppKey("feeds", SessionFeeds)
AGENT_RUNS = web.AppKey("agent_runs", AgentRunner)
PROJECTOR = web.AppKey("projector", Projector)
DELETER = web.AppKey("deleter", SessionDeleter)
# Set when the server begins to shut down: live streams end cleanly instead of being cut.
SHUTDOWN = web.AppKey("shutdown", asyncio.Event)
# The leases of the background loops, one holder per deployment (transport/background.py).
LOOP_LEASES = web.AppKey("loop_leases", RunLock)
