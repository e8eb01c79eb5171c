"""Sessions and their events over HTTP: create, inspect, append, and read or stream from any
offset (JSON pages, or Server-Sent Events that replay and then stay live)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from typing import Any

import msgspec
from aiohttp import HttpVersion11, web

from agentlog.domain.errors import (
    ExpectedSeqMismatch,
    IdempotencyKeyReused,
    SessionAlreadyExists,
    SessionDeleted,
    UnknownSession,
)
from agentlog.domain.events import Event, SessionCreated, encode_recorded
from agentlog.domain.ports.event_store import EventStore, FramedPage
from agentlog.domain.rules.external_events import (
    ExternalInput,
    ToolOutputInput,
    decide_external_events,
)
from agentlog.infra.sessions.status import pending_approvals, summary_json
from agentlog.infra.sessions.tombstone import deleted_at, live_head
from agentlog.infra.store.run_reads import current_open_work
from agentlog.projections.sessions import AWAITING_APPROVAL, DELETED
from agentlog.transport.http.admin import list_sessions_with_status
from agentlog.transport.http.metrics import count_delivered
from agentlog.transport.http.request_parsing import (
    json_bytes,
    parse_bool,
    parse_int,
    parse_offset,
    read_body,
)
from agentlog.transport.keys import AGENT_RUNS, FEEDS, PROJECTOR, SETTINGS, SHUTDOWN, STORE
from agentlog.transport.middleware.errors import ApiError
from agentlog.transport.streaming.session_feed import (
    PAGE,
    SSE_FRAME,
    LiveSink,
    SessionTail,
)
from agentlog.transport.streaming.sse import (
    KEEPALIVE,
    ClientGone,
    ending_of,
    finish_ended,
    open_sse,
    send,
)

# \A and \Z: `$` also matches before a trailing newline, and an id with one broke every
# response that named it.
SESSION_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")
APPEND_RETRIES = 20


class CreateSessionBody(msgspec.Struct, forbid_unknown_fields=True):
    id: str | None = None
    title: str | None = None
    metadata: dict[str, Any] = {}
    # A name of the server's agents (AGENTLOG_AGENTS); None: its default agent.
    agent: str | None = None


class AppendBody(msgspec.Struct, forbid_unknown_fields=True):
    events: list[ExternalInput]
    expected_offset: int | None = None


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json_bytes(body), status=status, content_type="application/json", headers=headers
    )


async def session_view(request: web.Request, session_id: str) -> dict[str, Any]:
    """The session as `GET /v1/sessions/{id}` shows it; raises UnknownSession."""
    summary = await request.app[PROJECTOR].read_summary(session_id)
    if summary is None:
        raise UnknownSession(session_id)
    if summary.status == DELETED:  # the summary folded the tombstone: no second read
        raise SessionDeleted(session_id, summary.last_activity_at.isoformat())
    view = summary_json(summary)
    # Only a session that awaits an answer has any (the read folds its log).
    view["pending_approvals"] = (
        await pending_approvals(request.app[STORE], session_id)
        if summary.status == AWAITING_APPROVAL
        else []
    )
    return view


def new_session_id(given: str | None) -> str:
    """The id a new session gets: the one asked for (400 unless valid), else a random one."""
    session_id = given if given is not None else uuid.uuid4().hex
    if not SESSION_ID.fullmatch(session_id):
        raise ApiError(
            400,
            "invalid_session_id",
            "a session id is 1 to 128 characters of letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit",
        )
    return session_id


async def create_session(request: web.Request) -> web.Response:
    body = await read_body(request, CreateSessionBody, allow_empty=True)
    session_id = new_session_id(body.id)
    store = request.app[STORE]
    # The agent is named for good: a later change of the server's default leaves it alone.
    agent = request.app[AGENT_RUNS].agents.get(body.agent)  # UnknownAgent: 422, nothing written
    created = SessionCreated(title=body.title, metadata=body.metadata, agent=agent.name)
    try:
        await store.append(session_id, [created], 0)
    except SessionAlreadyExists:
        when = await deleted_at(store, session_id)
        if when is not None:  # a deleted session's id is never given out again
            raise SessionDeleted(session_id, when.isoformat()) from None
        raise
    view = await session_view(request, session_id)
    return json_response(view, 201, headers={"Location": f"/v1/sessions/{session_id}"})


async def get_session(request: web.Request) -> web.Response:
    return json_response(await session_view(request, request.match_info["session_id"]))


async def append_events(request: web.Request) -> web.Response:
    """External writers append custom events and tool outputs. A tool output is accepted only
    for a call still waiting that the live agent does not execute itself; the check and the
    append are one optimistic step (append with the head the check saw), retried on a
    concurrent append, so two writers never both answer one call.

    `Idempotency-Key` is the client's: stored apart from the runner's own keys (under
    `client:`), and bound to a hash of the request, so a retry returns the first result (even
    when the call it answered no longer waits) and the same key with another body is 422."""
    session_id = request.match_info["session_id"]
    store = request.app[STORE]
    body = await read_body(request, AppendBody)
    if not body.events:
        raise ApiError(400, "invalid_body", "events must hold at least one event")
    key, request_hash = _client_key(request, body)
    if key is not None:
        earlier = await store.keyed_append(session_id, key)
        if earlier is not None:
            if earlier.request_hash not in (None, request_hash):
                raise IdempotencyKeyReused(key.removeprefix(CLIENT_KEY_PREFIX))
            return json_response({"seqs": earlier.seqs, "head": await store.head(session_id)})
    keyed = {"idempotency_key": key, "request_hash": request_hash}
    answers_tools = any(isinstance(e, ToolOutputInput) for e in body.events)
    if not answers_tools:
        # Nothing to check against the log: append at the next free seqs (or at the caller's
        # expected offset), so concurrent writers never collide.
        events = decide_external_events(body.events, {})
        if key is None:  # no key to check or rename: one coroutine less per append
            seqs = await store.append(session_id, events, body.expected_offset)
        else:
            seqs = await _append_keyed(store, session_id, events, body.expected_offset, keyed)
        # The head as of this commit, not a second read: a read that failed after a committed
        # append would answer 503 for events that are in the log.
        return json_response({"seqs": seqs, "head": seqs[-1]})
    runs = request.app[AGENT_RUNS]
    for _ in range(APPEND_RETRIES):
        head = await live_head(store, session_id)
        expected = body.expected_offset if body.expected_offset is not None else head
        # Only the latest run can leave a call waiting: read from its start, not the session.
        waiting = (await current_open_work(store, session_id)).waiting_calls()
        live_run = await runs.active_run(session_id) if waiting else None
        events = decide_external_events(body.events, waiting, live_run=live_run)
        try:
            seqs = await _append_keyed(store, session_id, events, expected, keyed)
        except ExpectedSeqMismatch:
            if body.expected_offset is not None:
                raise
            continue  # someone appended between our check and our append: check again
        return json_response({"seqs": seqs, "head": seqs[-1]})
    raise ApiError(503, "busy", "the session is changing too fast to append; retry")


CLIENT_KEY_PREFIX = "client:"
MAX_CLIENT_KEY = 150


def _client_key(request: web.Request, body: AppendBody) -> tuple[str | None, str | None]:
    """The stored form of the request's Idempotency-Key and the hash of its body."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None, None
    # Visible ASCII (spaces inside): what a header value can carry intact, as documented.
    if not key or len(key) > MAX_CLIENT_KEY or not (key.isascii() and key.isprintable()):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"an Idempotency-Key is 1 to {MAX_CLIENT_KEY} printable ASCII characters",
        )
    digest = hashlib.sha256(msgspec.json.encode(body)).hexdigest()
    return CLIENT_KEY_PREFIX + key, digest


async def _append_keyed(
    store: EventStore,
    session_id: str,
    events: list[Event],
    expected: int | None,
    keyed: dict[str, str | None],
) -> list[int]:
    try:
        return await store.append(session_id, events, expected, **keyed)  # type: ignore[arg-type]
    except IdempotencyKeyReused:
        key = keyed["idempotency_key"] or ""
        raise IdempotencyKeyReused(key.removeprefix(CLIENT_KEY_PREFIX)) from None


def wants_sse(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


async def get_events(request: web.Request) -> web.StreamResponse:
    session_id = request.match_info["session_id"]
    store = request.app[STORE]
    head = await live_head(store, session_id)
    # Both are checked when both are sent (a bad one is a 400); the query wins.
    resumed = None
    if "Last-Event-ID" in request.headers:
        resumed = parse_offset(request.headers["Last-Event-ID"], "Last-Event-ID", head)
    if "offset" in request.query:
        after = parse_offset(request.query["offset"], "offset", head)
    else:
        after = resumed or 0
    live = parse_bool(request, "live", True)  # checked for pages too: a bad value is a 400
    limit = parse_int(request, "limit", 100, 1, 5000)
    if wants_sse(request):
        return await stream_events(request, session_id, after, live)
    page = await store.read(session_id, after=after, limit=limit)
    next_offset = page[-1].seq if page else after
    body = b'{"events":[%s],"next_offset":%d,"head":%d}' % (
        b",".join(encode_recorded(e) for e in page),
        next_offset,
        max(head, next_offset),
    )
    return web.Response(body=body, content_type="application/json")


async def stream_events(
    request: web.Request, session_id: str, after: int, live: bool
) -> web.StreamResponse:
    """Replay everything after `after`, then stay live. The tail is followed (subscribed)
    before the replay starts, and every step sends exactly the frames after the last seq sent,
    so there is no gap and no duplicate at the seam between replay and live."""
    app = request.app
    settings = app[SETTINGS]
    shutdown = app[SHUTDOWN]
    response = await open_sse(request)
    # Push mode writes HTTP/1.1 chunks itself; anything else stays on the pull path.
    can_push = live and request.version >= HttpVersion11 and request.transport is not None
    try:
        async with app[FEEDS].follow(session_id) as (tail, waiter):
            last = after
            pending = b"retry: %d\n\n" % settings.sse_retry_ms
            while True:
                last, pending = await _send_pending_frames(request, response, tail, last, pending)
                if not live or shutdown.is_set() or tail.failed is not None:
                    break
                if tail.deleted_seq is not None and last >= tail.deleted_seq:
                    break  # the session was deleted: its tombstone was the last frame
                sink = tail.attach(request.transport, last, waiter) if can_push else None
                if sink is not None:
                    tail.followers.discard(waiter)
                    try:
                        await _hold_live(tail, sink, settings.sse_keepalive_seconds, shutdown)
                    finally:
                        tail.detach(sink)
                        tail.followers.add(waiter)
                    last = sink.last
                    if (
                        shutdown.is_set()
                        or request.transport is None
                        or request.transport.is_closing()
                    ):
                        break
                    continue  # detached because the client is slow: back to timed writes
                if not await waiter.wait(settings.sse_keepalive_seconds) and not shutdown.is_set():
                    await send(request, response, KEEPALIVE, settings.sse_write_timeout_seconds)
    except ClientGone:
        return response
    except asyncio.CancelledError:
        ending = ending_of(request)
        if ending is None:
            raise
        error = msgspec.json.encode({"error": {"code": ending.code, "message": ending.message}})
        frame = b"event: error\ndata: " + error + b"\n\n"
        return await finish_ended(request, response, frame, settings.sse_write_timeout_seconds)
    if request.transport is None or request.transport.is_closing():
        return response  # the client is gone: there is no end of the body to write
    await response.write_eof()
    return response


async def _send_pending_frames(
    request: web.Request,
    response: web.StreamResponse,
    tail: SessionTail,
    last: int,
    pending: bytes,
) -> tuple[int, bytes]:
    """Pull path: send every frame after `last` (from the ring, or from the log when the ring
    no longer holds it) until caught up with the tail; each write has a timeout."""
    store = request.app[STORE]
    timeout = request.app[SETTINGS].sse_write_timeout_seconds
    # While one page of the log is written to the client, the next is read on a reader
    # thread: a replay then waits for the slower of the two, not for both in turn. A page
    # comes as its frames, joined, built where it was read (`read_framed`).
    next_page: asyncio.Future[FramedPage] | None = None
    try:
        while True:
            got = tail.frames_after(last) if last >= tail.head - PAGE else None
            if got is None:
                if next_page is None:
                    next_page = asyncio.ensure_future(
                        store.read_framed(tail.session_id, after=last, limit=PAGE, frame=SSE_FRAME)
                    )
                page = await next_page
                next_page = None
                if page.events:
                    last = page.last_seq
                    # The head only grows, so a page read now is the one the next turn of
                    # the loop asks the log for.
                    if page.events == PAGE and last < tail.head - PAGE:
                        next_page = asyncio.ensure_future(
                            store.read_framed(
                                tail.session_id, after=last, limit=PAGE, frame=SSE_FRAME
                            )
                        )
                    await send(request, response, pending + page.frames, timeout)
                    pending = b""
                    continue
                got = ([], last)
            frames_held, newest = got
            if not frames_held:
                if pending:
                    await send(request, response, pending, timeout)
                return last, b""
            await send(request, response, pending + b"".join(frames_held), timeout)
            count_delivered(request, len(frames_held))
            pending = b""
            last = newest
    finally:
        if next_page is not None:  # the client left mid-replay: nobody takes that page
            # Not awaited (that could swallow this task's own cancellation); its outcome is
            # taken so that a failed read is not logged as never retrieved.
            next_page.add_done_callback(lambda done: done.cancelled() or done.exception())
            next_page.cancel()


async def _hold_live(
    tail: SessionTail, sink: LiveSink, keepalive: float, shutdown: asyncio.Event
) -> None:
    """Push mode: the tail writes new frames; this only keeps the line busy and notices the end."""
    loop = asyncio.get_running_loop()
    while not sink.detached:
        woke = await sink.waiter.wait(keepalive)
        if shutdown.is_set() or tail.failed is not None or sink.transport.is_closing():
            return
        if tail.deleted_seq is not None and sink.last >= tail.deleted_seq:
            return  # the tombstone was pushed: the stream ends
        if not woke and loop.time() - sink.last_write >= keepalive * 0.9:
            sink.write(KEEPALIVE)


def add_routes(app: web.Application) -> None:
    # The events first: aiohttp tries every route under /v1/sessions in the order added, each
    # a coroutine, and an append is the request this server answers most. No two of these
    # paths match one URL, so the order changes nothing else.
    app.router.add_post("/v1/sessions/{session_id}/events", append_events)
    app.router.add_get("/v1/sessions/{session_id}/events", get_events)
    app.router.add_post("/v1/sessions", create_session)
    app.router.add_get("/v1/sessions", list_sessions_with_status)
    app.router.add_get("/v1/sessions/{session_id}", get_session)
