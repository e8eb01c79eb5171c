"""Deleting sessions over HTTP, the tombstone's 410, and the retention sweeper.

`DELETE /v1/sessions/{id}` deletes through `agentlog.infra.sessions.deletion.SessionDeleter`
(cancel an
active run, delete the content, leave the tombstone). Afterwards every route of that session
answers `410 session_deleted`, and creating a session with its id does too. With
AGENTLOG_RETENTION_DAYS set, sessions idle longer than that are deleted by the same path.
Every instance also removes its own working directories of sessions deleted anywhere
(agentlog.infra.sessions.workspaces), at startup and every WORKSPACE_SWEEP_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from agentlog.domain.errors import SessionDeleted, UnknownSession
from agentlog.domain.events import utc_now
from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.sessions.tombstone import deleted_at
from agentlog.infra.sessions.workspaces import sweep_deleted
from agentlog.transport.background import start_once_per_deployment
from agentlog.transport.http.metrics import METRICS
from agentlog.transport.keys import AGENT_RUNS, DELETER, PROJECTOR, SETTINGS, STORE

log = logging.getLogger(__name__)

RETENTION_PAGE = 200
# How often each instance looks for its directories of sessions deleted elsewhere.
WORKSPACE_SWEEP_SECONDS = 300.0
DEAD_IMPORT_SWEEP_SECONDS = 60.0


async def delete_session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    deletion = await request.app[DELETER].delete(session_id)
    return web.json_response(
        {
            "id": session_id,
            "deleted": True,
            "tombstone_seq": deletion.tombstone_seq,
            "events_removed": deletion.events_removed,
        }
    )


async def deleted_instead(request: web.Request, unknown: UnknownSession) -> SessionDeleted | None:
    """410 for any route of a deleted session (its tombstone is all that is left): the
    SessionDeleted to raise instead of `unknown`, which a handler raised; None when the
    session never was (404 stands).

    Nothing is read before the handler: the operation itself refuses a deleted session (the
    store refuses every append after the tombstone, in the append's own transaction, and
    every read that would show the session checks the head it reads anyway). Only when a
    handler answers that the session is unknown is one lookup made, to tell a session that
    never was (404) from one that was deleted (410): the hot path pays nothing
    (agentlog.transport.middleware.request_steps calls this)."""
    session_id = request.match_info.get("session_id")
    if session_id is None or unknown.session_id != session_id:
        return None
    when = await deleted_at(request.app[STORE], session_id)
    if when is None:
        return None
    return SessionDeleted(session_id, when.isoformat())


async def deletion_ctx(app: web.Application) -> AsyncIterator[None]:
    """The deleter (after the runner: it cancels runs) and, when configured, the sweeper."""
    runner = app[AGENT_RUNS]
    counter = app[METRICS].sessions_deleted
    app[DELETER] = SessionDeleter(
        app[STORE],
        runner,
        workspace_root=runner.workspace_root,
        on_deleted=lambda reason: counter.inc(reason=reason),
    )
    days = app[SETTINGS].retention_days
    # The workspace sweep is per directory: the processes sharing this host's workspace root
    # run it once; retention once per deployment.
    root = runner.workspace_root
    sweepers = [
        start_once_per_deployment(
            app,
            f"workspace-sweep:{socket.gethostname()}:{root}",
            lambda: _sweep_deleted_workspaces(app, root),
        )
    ]
    # Forks and imports whose process died mid-way leave invisible batches: cleared once per
    # deployment (agentlog.infra.store.import_batches).
    sweepers.append(
        start_once_per_deployment(app, "dead-imports", lambda: _sweep_dead_imports(app))
    )
    if days is not None:
        sweepers.append(
            start_once_per_deployment(app, "retention", lambda: _sweep_idle_sessions(app, days))
        )
    yield
    for sweeper in sweepers:
        sweeper.cancel()
    await asyncio.gather(*sweepers, return_exceptions=True)


async def _sweep_deleted_workspaces(app: web.Application, root: Path) -> None:
    """At startup, then every WORKSPACE_SWEEP_SECONDS: remove this host's directories of
    sessions deleted on any instance (the deleting host removed its own at once)."""
    while True:
        try:
            await sweep_deleted(app[STORE], root)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweeping deleted sessions' directories failed")
        await asyncio.sleep(WORKSPACE_SWEEP_SECONDS)


async def _sweep_dead_imports(app: web.Application) -> None:
    """At startup, then every DEAD_IMPORT_SWEEP_SECONDS: remove what imports and forks whose
    process died left (the same request again would, but nobody may send it)."""
    while True:
        try:
            cleared = await app[STORE].backend.clear_dead_imports()
            if cleared:
                log.warning("removed the partial imports of dead processes: %s", cleared)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweeping dead imports failed")
        await asyncio.sleep(DEAD_IMPORT_SWEEP_SECONDS)


async def _sweep_idle_sessions(app: web.Application, days: float) -> None:
    """At startup, then every hour (or a quarter of the retention, if shorter): delete every
    session whose last activity is older than the retention and that runs nothing."""
    retention = timedelta(days=days)
    interval = max(0.2, min(3600.0, retention.total_seconds() / 4))
    while True:
        try:
            await sweep_idle_sessions(app, retention)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the retention sweep failed")
        await asyncio.sleep(interval)


async def sweep_idle_sessions(app: web.Application, retention: timedelta) -> list[str]:
    """One pass over the sessions list; returns the sessions deleted."""
    cutoff = utc_now() - retention
    deleted: list[str] = []
    after: str | None = None
    while True:
        page = await app[PROJECTOR].list_summaries(after, RETENTION_PAGE)
        for summary in page:
            if summary.status in ("deleted", "running") or summary.last_activity_at >= cutoff:
                continue
            try:
                await app[DELETER].delete(summary.session_id, reason="retention")
            except SessionDeleted:
                continue  # another instance swept it first
            deleted.append(summary.session_id)
        if len(page) < RETENTION_PAGE:
            break
        after = page[-1].session_id
    if deleted:
        log.info("retention deleted %d sessions", len(deleted), extra={"sessions": deleted})
    return deleted


def add_routes(app: web.Application) -> None:
    app.router.add_delete("/v1/sessions/{session_id}", delete_session)
