"""The composition root: the one place that builds agentlog from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from agentlog.domain.events import utc_now
from agentlog.infra.agent.agents.catalog import AgentCatalog
from agentlog.infra.agent.recovery.sweep import sweep_once
from agentlog.infra.agent.run.runner import AgentRunner, open_agent_runner
from agentlog.infra.store.byte_bounded import feed_rings_share
from agentlog.infra.store.opening import open_store
from agentlog.infra.store.store import Store
from agentlog.transport.background import start_once_per_deployment
from agentlog.transport.http import admin as admin_api
from agentlog.transport.http import approvals as approvals_api
from agentlog.transport.http import chat as chat_api
from agentlog.transport.http import deletion as deletion_api
from agentlog.transport.http import files as files_api
from agentlog.transport.http import forks as fork_api
from agentlog.transport.http import runs as runs_api
from agentlog.transport.http import sessions as sessions_api
from agentlog.transport.http import tokens as tokens_api
from agentlog.transport.http.health import healthz
from agentlog.transport.http.metrics import METRICS, projector_lag, setup_metrics
from agentlog.transport.http.projections import RunIsActive, lock_says_running, setup_projections
from agentlog.transport.keys import (
    AGENT_RUNS,
    FEEDS,
    LOOP_LEASES,
    PROJECTOR,
    SETTINGS,
    SHUTDOWN,
    STORE,
)
from agentlog.transport.middleware.browser_guard import cors_headers
from agentlog.transport.middleware.limits import LIMITS, count_refusals, setup_limits
from agentlog.transport.middleware.request_steps import (
    ResponseStep,
    request_steps,
    response_steps,
)
from agentlog.transport.middleware.security_headers import forbid_framing
from agentlog.transport.openapi.document import openapi_json
from agentlog.transport.settings import Settings
from agentlog.transport.streaming.session_feed import SessionFeeds
from agentlog.transport.web import page as web_view

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    runner: AgentRunner | None = None,
    run_is_active: RunIsActive | None = None,
    agents: AgentCatalog | None = None,
    worker_of: tuple[int, int] | None = None,
) -> web.Application:
    """Build the app. Tests pass their own store or runner; otherwise each is opened on startup
    (nothing connects at import time) and closed on cleanup, in reverse order. `agents`: the
    agents `agentlog serve` loaded and checked before starting (else loaded on startup).
    `worker_of`: (index, count) when this is one of `agentlog serve --workers` processes."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # The browser guard runs before auth: a preflight carries no token, and a request
        # from a foreign origin or Host is refused whatever it carries. Every step in order:
        # transport/middleware/request_steps.py.
        middlewares=[request_steps],
    )
    # Every answer's headers, in this order (one callback: see response_steps).
    header_steps: list[ResponseStep] = [cors_headers, forbid_framing]
    if worker_of is not None:
        header_steps.append(worker_header(*worker_of))
    header_steps.append(count_refusals)
    app.on_response_prepare.append(response_steps(header_steps))
    app[SETTINGS] = settings
    app[SHUTDOWN] = asyncio.Event()

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        if store is not None:
            app[STORE] = store
            app[LOOP_LEASES] = store.backend.run_lock()
            yield
            await app[LOOP_LEASES].close()
            return
        async with open_store(
            settings.database_url,
            redis_url=settings.redis_url,
            max_event_bytes=settings.max_event_bytes,
            db_timeout=settings.db_timeout_seconds,
            cache_bytes=settings.cache_bytes,
        ) as opened:
            app[STORE] = opened
            app[LOOP_LEASES] = opened.backend.run_lock()
            yield
            await app[LOOP_LEASES].close()

    async def feeds_ctx(app: web.Application) -> AsyncIterator[None]:
        app[FEEDS] = SessionFeeds(
            app[STORE],
            on_delivered=app[METRICS].delivered,
            rings_bytes=feed_rings_share(settings.cache_bytes),
        )
        yield
        await app[FEEDS].close()

    async def runner_ctx(app: web.Application) -> AsyncIterator[None]:
        if runner is not None:
            app[AGENT_RUNS] = runner
            yield
            return
        async with open_agent_runner(app[STORE], config=settings.agent, agents=agents) as opened:
            # The turns it starts by itself (crash continuations) keep to the limit too.
            opened.limit_runs(settings.max_active_runs, lambda: app[LIMITS].starting_runs)
            app[AGENT_RUNS] = opened
            yield

    async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
        if runner is not None:  # a runner passed in is the caller's to look after
            yield
            return
        sweeper = start_once_per_deployment(
            app, "abandoned-run-sweeper", lambda: _sweep_abandoned_runs(app)
        )
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper

    async def pruning_ctx(app: web.Application) -> AsyncIterator[None]:
        pruner = start_once_per_deployment(
            app, "idempotency-key-pruner", lambda: _prune_idempotency_keys(app)
        )
        yield
        pruner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruner

    async def on_shutdown(app: web.Application) -> None:
        app[SHUTDOWN].set()
        if FEEDS in app:
            app[FEEDS].wake_all()

    app.cleanup_ctx.append(store_ctx)
    # The session routes before any other under /v1/sessions (the projections' messages):
    # aiohttp tries them in the order added (transport/http/sessions.py, add_routes).
    sessions_api.add_routes(app)
    setup_metrics(
        app,
        active_runs=lambda: app[AGENT_RUNS].active_count if AGENT_RUNS in app else 0,
        delayed_batches=lambda: app[AGENT_RUNS].delayed_batches if AGENT_RUNS in app else 0,
        continued_after_crash=(
            lambda: app[AGENT_RUNS].continued_after_crash if AGENT_RUNS in app else 0
        ),
        projection_lag=lambda: projector_lag(app[STORE], app[PROJECTOR]),
    )
    setup_limits(app)
    app.cleanup_ctx.append(feeds_ctx)
    app.cleanup_ctx.append(runner_ctx)
    # After the runner: the projector starts after the store and stops before it.
    # Hydration asks whether a run is really active: by default, whether its lock is held.
    setup_projections(app, run_is_active=run_is_active or lock_says_running(app))
    app.cleanup_ctx.append(sweeper_ctx)
    app.cleanup_ctx.append(deletion_api.deletion_ctx)
    app.cleanup_ctx.append(pruning_ctx)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/openapi.json", openapi_json)
    runs_api.add_routes(app)
    chat_api.add_routes(app)
    files_api.add_routes(app)
    approvals_api.add_routes(app)
    admin_api.add_routes(app)
    deletion_api.add_routes(app)
    fork_api.add_routes(app)
    tokens_api.add_routes(app)
    web_view.add_routes(app)
    return app


# Which of `serve --workers` answered: "<index>/<count> <pid>" (to see the spread, and to
# find the process in a log or `ps`).
WORKER_HEADER = "Agentlog-Worker"


def worker_header(index: int, count: int) -> ResponseStep:
    value = f"{index}/{count} {os.getpid()}"

    def name_worker(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[WORKER_HEADER] = value

    return name_worker


async def _prune_idempotency_keys(app: web.Application) -> None:
    """Idempotency keys are kept AGENTLOG_IDEMPOTENCY_TTL_HOURS: pruned at startup, then
    every hour (or half a TTL, if shorter)."""
    ttl = timedelta(hours=app[SETTINGS].idempotency_ttl_hours)
    interval = min(3600.0, ttl.total_seconds() / 2)
    while True:
        try:
            pruned = await app[STORE].prune_idempotency(utc_now() - ttl)
            if pruned:
                log.info("pruned %d idempotency keys", pruned)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pruning idempotency keys failed")
        await asyncio.sleep(interval)


async def _sweep_abandoned_runs(app: web.Application) -> None:
    """A run whose process died is resolved proactively, not only when its session is next
    used, and a look for a next turn that died with its maker is made: at startup, then every
    `sweep_seconds` (a dead owner's lease expires after one TTL), so an idle server notices
    too (`infra/agent/recovery/sweep.py`)."""
    runner = app[AGENT_RUNS]
    interval = runner.config.sweep_seconds
    while True:
        try:
            await sweep_once(app[STORE], runner)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweeping abandoned runs failed")
        await asyncio.sleep(interval)
