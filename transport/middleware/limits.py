"""Per-process limits, so one client cannot take the server's memory: active runs (each is a CLI
process of 100-200 MB; 429 with Retry-After beyond AGENTLOG_MAX_ACTIVE_RUNS), open SSE
streams (503 with Retry-After beyond AGENTLOG_MAX_SSE_CONNECTIONS), request bodies (413) and
request lines and headers (431). Each limit and each refusal is in /metrics.

A stream opened with a session token also counts against its token
(AGENTLOG_MAX_STREAMS_PER_TOKEN) and its session's tokens together
(AGENTLOG_MAX_STREAMS_PER_SESSION), 429 beyond either; and session-token streams together take
at most nine tenths of AGENTLOG_MAX_SSE_CONNECTIONS (`operator_reserve`): however many tokens a
browser front end mints, the API and admin tokens still get a stream. A session-token stream
ends when its token expires or is revoked, with a last frame that says why."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable, Iterator

from aiohttp import web

from agentlog.transport.http.metrics import METRICS, Counter, Gauge
from agentlog.transport.keys import SETTINGS, STORE
from agentlog.transport.middleware.auth import session_grant
from agentlog.transport.middleware.errors import ApiError, Handler, error_response
from agentlog.transport.middleware.session_tokens import SessionGrant
from agentlog.transport.streaming.sse import STREAM_TASK, end_stream, ending_of

RUN_RETRY_AFTER_SECONDS = 5
# How often open session-token streams are checked against revocations made elsewhere.
REVOCATION_CHECK_SECONDS = 2.0
log = logging.getLogger(__name__)
STREAM_RETRY_AFTER_SECONDS = 5


def operator_reserve(max_sse_connections: int) -> int:
    """Stream slots only the API and admin tokens (or no token) may take: a tenth, at least one
    (unless the limit is a single stream)."""
    return min(max(1, max_sse_connections // 10), max_sse_connections - 1)


class Limits:
    """This process's counts against the limits, and their metrics."""

    def __init__(
        self,
        *,
        max_active_runs: int,
        max_sse_connections: int,
        max_streams_per_token: int = 4,
        max_streams_per_session: int = 16,
    ) -> None:
        self.max_active_runs = max_active_runs
        self.max_sse_connections = max_sse_connections
        self.max_streams_per_token = max_streams_per_token
        self.max_streams_per_session = max_streams_per_session
        self.starting_runs = 0
        self.open_streams = 0
        # Streams open with session tokens: by token id, and by session.
        self.token_streams: Tally[str] = Tally()
        self.session_streams: Tally[str] = Tally()
        # The requests of those streams (by id: a request is not hashable), so a revoked
        # token's can be ended.
        self.stream_connections: dict[str, dict[int, web.Request]] = {}
        self.refused = Counter(
            "agentlog_requests_refused_total",
            "Requests refused by a limit: active_runs (429), sse_connections (503), "
            "body_too_large (413), header_too_large (431).",
            ["limit"],
        )
        for reason in ("active_runs", "sse_connections", "body_too_large", "header_too_large"):
            self.refused.inc(0, limit=reason)
        self.gauges = []
        for name, help_text in [
            ("agentlog_max_active_runs", "AGENTLOG_MAX_ACTIVE_RUNS: runs this process drives."),
            ("agentlog_max_sse_connections", "AGENTLOG_MAX_SSE_CONNECTIONS: open SSE streams."),
            ("agentlog_max_body_bytes", "AGENTLOG_MAX_BODY_BYTES: the largest request body."),
            ("agentlog_max_header_bytes", "AGENTLOG_MAX_HEADER_BYTES: the largest header line."),
        ]:
            self.gauges.append(Gauge(name, help_text))

    def end_streams_of(self, token_ids: set[str]) -> None:
        """End every stream open with one of these tokens, with a last frame saying why."""
        for token_id in token_ids:
            for request in list(self.stream_connections.get(token_id, {}).values()):
                end_stream(request, "token_revoked", "the session token was revoked")

    @contextlib.contextmanager
    def run_slot(self, active_runs: Callable[[], int]) -> Iterator[None]:
        """Held while a run starts: counts it before the runner does, so two starts at once
        cannot both take the last slot."""
        if active_runs() + self.starting_runs >= self.max_active_runs:
            self.refused.inc(limit="active_runs")
            raise ApiError(
                429,
                "too_many_runs",
                f"this server drives at most {self.max_active_runs} runs at once; retry later",
                retry_after=RUN_RETRY_AFTER_SECONDS,
            )
        self.starting_runs += 1
        try:
            yield
        finally:
            self.starting_runs -= 1


LIMITS = web.AppKey("limits", Limits)


def is_stream_request(request: web.Request) -> bool:
    """A request answered with a stream: a GET of the events as SSE or of a UI stream, a run
    streamed by the POST that starts it, and useChat's send (which always streams)."""
    streamed = "text/event-stream" in request.headers.get("Accept", "")
    if request.method == "GET":
        return streamed or request.path.endswith("/stream")
    return request.method == "POST" and (
        request.path == "/v1/chat" or (streamed and request.path.endswith("/runs"))
    )


@web.middleware
async def limit_streams(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_stream_request(request):
        return await handler(request)
    limits = request.app[LIMITS]
    if limits.open_streams >= limits.max_sse_connections:
        limits.refused.inc(limit="sse_connections")
        response = error_response(
            503,
            "too_many_streams",
            f"this server holds at most {limits.max_sse_connections} open streams; retry later",
        )
        response.headers["Retry-After"] = str(STREAM_RETRY_AFTER_SECONDS)
        return response
    grant = session_grant(request)
    if grant is not None:
        shared = limits.max_sse_connections - operator_reserve(limits.max_sse_connections)
        if limits.session_streams.total() >= shared:
            limits.refused.inc(limit="sse_connections")
            response = error_response(
                503,
                "too_many_streams",
                f"session tokens hold at most {shared} open streams on this server (the rest "
                "are kept for its operator); retry later",
            )
            response.headers["Retry-After"] = str(STREAM_RETRY_AFTER_SECONDS)
            return response
        refusal = _token_stream_refusal(limits, grant)
        if refusal is not None:
            return refusal
    limits.open_streams += 1
    task = asyncio.current_task()
    if task is not None:
        request[STREAM_TASK] = task
    expiry = _end_at_expiry(request, grant) if grant is not None else None
    if grant is not None:
        limits.token_streams[grant.token_id] += 1
        limits.session_streams[grant.session_id] += 1
        limits.stream_connections.setdefault(grant.token_id, {})[id(request)] = request
    try:
        return await handler(request)
    except asyncio.CancelledError:
        if ending_of(request) is None:
            raise
        # A handler that does not end its stream itself: the connection is closed.
        if request.transport is not None:
            request.transport.close()
        raise
    finally:
        request.pop(STREAM_TASK, None)
        limits.open_streams -= 1
        if expiry is not None:
            expiry.cancel()
        if grant is not None:
            limits.token_streams[grant.token_id] -= 1
            limits.session_streams[grant.session_id] -= 1
            connections = limits.stream_connections.get(grant.token_id, {})
            connections.pop(id(request), None)
            if not connections:
                limits.stream_connections.pop(grant.token_id, None)
            # Unary + keeps positive counts only: a token with no stream leaves no entry.
            limits.token_streams = +limits.token_streams
            limits.session_streams = +limits.session_streams


def _token_stream_refusal(limits: Limits, grant: SessionGrant) -> web.Response | None:
    if limits.token_streams[grant.token_id] >= limits.max_streams_per_token:
        message = f"a session token holds at most {limits.max_streams_per_token} open streams"
    elif limits.session_streams[grant.session_id] >= limits.max_streams_per_session:
        message = f"a session's tokens hold at most {limits.max_streams_per_session} open streams"
    else:
        return None
    limits.refused.inc(limit="sse_connections")
    response = error_response(429, "too_many_streams", f"{message}; close one or retry later")
    response.headers["Retry-After"] = str(STREAM_RETRY_AFTER_SECONDS)
    return response


def _end_at_expiry(request: web.Request, grant: SessionGrant) -> asyncio.TimerHandle:
    """End the stream when its token expires, with a last frame saying so: a client that
    reconnects with the token it has gets 401 token_expired."""
    delay = max(0.0, grant.expires_at - time.time())
    return asyncio.get_running_loop().call_later(
        delay, end_stream, request, "token_expired", "the session token expired; mint a new one"
    )


def count_refusals(request: web.Request, response: web.StreamResponse) -> None:
    """A response step (agentlog.transport.middleware.request_steps): a 413 is counted, a 429
    says when to retry."""
    if response.status == 413:
        request.app[LIMITS].refused.inc(limit="body_too_large")
    if response.status == 429 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(RUN_RETRY_AFTER_SECONDS)


def setup_limits(app: web.Application) -> Limits:
    settings = app[SETTINGS]
    limits = Limits(
        max_active_runs=settings.max_active_runs,
        max_sse_connections=settings.max_sse_connections,
        max_streams_per_token=settings.max_streams_per_token,
        max_streams_per_session=settings.max_streams_per_session,
    )
    for gauge, value in zip(
        limits.gauges,
        [
            settings.max_active_runs,
            settings.max_sse_connections,
            settings.max_body_bytes,
            settings.max_header_bytes,
        ],
        strict=True,
    ):
        gauge.set(value)
    app[LIMITS] = limits
    app.cleanup_ctx.append(_revoked_streams_ctx)
    if METRICS in app:
        app[METRICS].extra += [limits.refused, *limits.gauges]
    return limits


async def _revoked_streams_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_end_revoked_streams(app), name="agentlog-revoked-streams")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _end_revoked_streams(app: web.Application) -> None:
    """A token revoked on another instance: its streams here end within a check's interval.
    One read of the revocations per interval, only while session-token streams are open."""
    limits = app[LIMITS]
    while True:
        await asyncio.sleep(REVOCATION_CHECK_SECONDS)
        open_tokens = set(limits.stream_connections)
        if not open_tokens:
            continue
        try:
            revoked = await app[STORE].backend.token_revocations().revoked(open_tokens)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("checking revoked tokens failed; retrying", exc_info=True)
            continue
        limits.end_streams_of(revoked)


def header_refused(app: web.Application) -> Callable[[int], None]:
    """For the HTTP server: count a request its parser refused (431 for an oversized header)."""

    def refused(status: int) -> None:
        if status == 431 and LIMITS in app:
            app[LIMITS].refused.inc(limit="header_too_large")

    return refused
