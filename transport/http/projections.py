"""The projections over HTTP: a session's UI messages, and rebuilding the projections.

`setup_projections(app, run_is_active=...)` adds the routes and a cleanup_ctx that opens the
projection store beside app[STORE] and keeps the projector running in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from agentlog.infra.sessions.tombstone import live_head
from agentlog.infra.store.opening import open_projection_store
from agentlog.infra.store.projector import Projector
from agentlog.projections.sessions import AWAITING_APPROVAL, RUNNING
from agentlog.projections.ui_messages import to_ui_messages
from agentlog.projections.ui_messages.paging import UnknownCursor
from agentlog.transport.background import start_once_per_deployment
from agentlog.transport.http.files import file_url
from agentlog.transport.http.request_parsing import parse_int, read_body
from agentlog.transport.keys import AGENT_RUNS, PROJECTOR, SETTINGS, STORE
from agentlog.transport.middleware.errors import ApiError

log = logging.getLogger(__name__)

RunIsActive = Callable[[str], Awaitable[bool]]

RUN_IS_ACTIVE: web.AppKey[RunIsActive] = web.AppKey("run_is_active")

# How long cleanup waits for the projector's page in flight before cancelling it.
_STOP_TIMEOUT = 10.0


class RebuildBody(msgspec.Struct, forbid_unknown_fields=True):
    session_id: str | None = None


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json"
    )


# The most messages one page of GET /messages holds.
MAX_PAGE = 1000


async def messages(request: web.Request) -> web.Response:
    """GET /v1/sessions/{session_id}/messages: the session's UIMessage[], hydrated. With
    `limit` and/or `before` (a message id), one page: the newest `limit` messages older than
    `before`, in chronological order, and `before` for the next older page (or null)."""
    session_id = request.match_info["session_id"]
    paged = "limit" in request.query or "before" in request.query
    limit = parse_int(request, "limit", 100, 1, MAX_PAGE)  # checked before any read
    before = request.query.get("before")
    if before is not None and not before:
        raise ApiError(400, "invalid_before", "before must be a message id")
    # Asked before the state is read: a run that ends in between has written its results
    # and terminal event, which the state then shows. Asked after, a run ending in between
    # would make its tools look interrupted although their results were on the way.
    run_active = await request.app[RUN_IS_ACTIVE](session_id)
    projector = request.app[PROJECTOR]
    body: dict[str, Any] = {"session_id": session_id}
    if paged:
        # Only the page's rows are read (and hydrated), not the whole conversation.
        try:
            state, head, older = await projector.read_page(session_id, limit, before)
        except UnknownCursor as unknown:
            await live_head(request.app[STORE], session_id)  # a deleted session's: 410
            raise ApiError(400, "invalid_before", str(unknown)) from None
        body["before"] = older
    else:
        state, head = await projector.read_messages(session_id)  # 404 if unknown
    if not state.messages:
        # A deleted session folds to no messages: only then is its tombstone looked for.
        await live_head(request.app[STORE], session_id)
    # The lock outlives the run's terminal event by its teardown (the CLI's exit): a run the
    # state shows ended is not reported active, as GET /v1/sessions/{id} does not either.
    run_active = run_active and state.open_run_id is not None
    body.update(
        messages=to_ui_messages(state, run_active=run_active, files_url=file_url(session_id, "")),
        head=head,
        run_active=run_active,
    )
    return _json(body)


async def rebuild(request: web.Request) -> web.Response:
    """POST /v1/admin/projections/rebuild, body `{"session_id"?}`: replay from the log."""
    body = await read_body(request, RebuildBody, allow_empty=True)
    if body.session_id is not None and not body.session_id:
        raise ApiError(400, "invalid_body", "session_id must not be empty")
    result = await request.app[PROJECTOR].rebuild(body.session_id)  # 404 if unknown
    return _json(result.as_json())


def lock_says_running(app: web.Application) -> RunIsActive:
    """A run is active while a process holds its session's run lock (the runner's own
    liveness): when the process driving it dies, its run stops being active as soon as the
    lock expires, before anyone writes `run_abandoned`, so its tools never look stuck."""

    async def run_is_active(session_id: str) -> bool:
        return await app[AGENT_RUNS].active_run(session_id) is not None

    return run_is_active


def summary_says_running(projector: Projector) -> RunIsActive:
    """The default when no `run_is_active` is given: a run is active while the session's
    summary says "running", i.e. a run started and no terminal event followed. A run whose
    process died stays "running" until something writes `run_abandoned` (the runner's sweeper
    does, one lock TTL later), so its waiting tools show as waiting until then."""

    async def run_is_active(session_id: str) -> bool:
        summary = await projector.read_summary(session_id)
        if summary is None:
            return False
        # While a call waits its short approval grace, the run is still active.
        return summary.status == RUNNING or (
            summary.status == AWAITING_APPROVAL and summary.active_run_id is not None
        )

    return run_is_active


def setup_projections(app: web.Application, *, run_is_active: RunIsActive | None = None) -> None:
    """Routes, and the projector running beside app[STORE] (opened by an earlier ctx)."""

    async def projections_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_projection_store(app[STORE]) as projection_store:
            projector = Projector(
                app[STORE], projection_store, cache_bytes=app[SETTINGS].cache_bytes
            )
            app[PROJECTOR] = projector
            app[RUN_IS_ACTIVE] = run_is_active or summary_says_running(projector)
            stop = asyncio.Event()
            # One projector per deployment; the others' reads fold the log past the rows.
            task = start_once_per_deployment(app, "projector", lambda: projector.run(stop), stop)
            try:
                yield
            finally:
                stop.set()
                try:
                    await asyncio.wait_for(task, _STOP_TIMEOUT)
                except TimeoutError:
                    log.warning("projector did not stop within %.0f s; cancelled", _STOP_TIMEOUT)
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.cleanup_ctx.append(projections_ctx)
    app.router.add_get("/v1/sessions/{session_id}/messages", messages)
    app.router.add_post("/v1/admin/projections/rebuild", rebuild)
