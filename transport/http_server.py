"""Serving the app: aiohttp's runner, with errors the HTTP parser finds answered as JSON.

A request aiohttp cannot parse (a header over AGENTLOG_MAX_HEADER_BYTES, a malformed request
line) never reaches the app's middlewares: aiohttp answers it itself, in plain text. Here its
error handler answers as every other error does, `{"error": {"code", "message"}}`, and an
oversized request line or header is 431, not 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from agentlog.transport.middleware.limits import header_refused

log = logging.getLogger(__name__)


def parser_error(status: int, exc: BaseException | None) -> tuple[int, str, str]:
    """(status, code, message) for an error found before the app saw the request."""
    if isinstance(exc, LineTooLong):
        return 431, "header_too_large", "a request line or header is larger than the limit"
    if status == 500:
        return 500, "internal_error", "the server failed to handle the request"
    if status == 504:
        return 504, "timeout", "the server did not answer in time"
    if 400 <= status < 500:
        message = getattr(exc, "message", None) or HTTPStatus(status).phrase
        return status, "bad_request", f"the request is not valid HTTP: {str(message)[:200]}"
    return status, "http_error", HTTPStatus(status).phrase


class JsonErrorRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a response already began
            raise ConnectionError("response already sent, cannot send the error")
        status, code, text = parser_error(status, exc)
        refused = getattr(self._manager, "on_refused", None)
        if refused is not None:
            refused(status)
        if status >= 500:
            self.log_exception("error handling request from %s", request.remote, exc_info=exc)
        else:
            log.debug("refused a malformed request from %s: %s", request.remote, exc)
        body = msgspec.json.encode({"error": {"code": code, "message": text}})
        response = web.Response(status=status, body=body, content_type="application/json")
        response.force_close()
        return response


class JsonErrorServer(Server):
    on_refused: Callable[[int], None] | None = None

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """aiohttp's AppRunner whose connections answer parser errors as JSON."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # The server aiohttp built, with only its connection factory replaced.
        server.__class__ = JsonErrorServer
        server.on_refused = header_refused(self._app)  # type: ignore[attr-defined]
        return server


def handler_limits(max_header_bytes: int) -> dict[str, Any]:
    return {"max_line_size": max_header_bytes, "max_field_size": max_header_bytes}


# The exit status when shutdown had to leave work unfinished (runs open, pools not closed):
# what was acknowledged is in the log either way; an open run is recovered by another
# instance's sweeper, or this one's after a restart.
UNFINISHED_SHUTDOWN_EXIT = 70


def _exit_now(why: str) -> None:
    log.error("%s; exiting with status %d", why, UNFINISHED_SHUTDOWN_EXIT)
    logging.shutdown()
    os._exit(UNFINISHED_SHUTDOWN_EXIT)


def _exit_from_watchdog(why: str) -> None:
    """The watchdog thread's exit: one line straight to stderr, since the stuck event loop
    may hold the logging handlers' locks."""
    with contextlib.suppress(OSError):
        os.write(2, f"agentlog: {why}; exiting with status {UNFINISHED_SHUTDOWN_EXIT}\n".encode())
    os._exit(UNFINISHED_SHUTDOWN_EXIT)


class ShutdownWatchdog:
    """Ends the process once the shutdown has taken its time: a thread, so neither a blocked
    event loop nor asyncio.run's own teardown (cancelled tasks that do not finish, executor
    threads stuck in a database call) can outlast it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        self._timer = threading.Timer(
            self.seconds,
            _exit_from_watchdog,
            (f"shutdown did not finish within AGENTLOG_SHUTDOWN_SECONDS={self.seconds:g}",),
        )
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


async def serve_forever(
    app: web.Application,
    host: str,
    port: int,
    *,
    max_header_bytes: int,
    access_log_class: type[Any] | None = None,
    shutdown_seconds: float = 30.0,
    watchdog: ShutdownWatchdog | None = None,
    reuse_port: bool = False,
) -> None:
    """Like `web.run_app`: SIGINT and SIGTERM end it gracefully (runs cancelled, streams
    ended, every cleanup_ctx closed in reverse) while the handlers are still running, within
    `shutdown_seconds` whatever the database does: what has not finished by then is left (the
    log stays consistent: see docs/reliability.md) and the process exits with status 70."""
    extra: dict[str, Any] = {}
    if access_log_class is not None:
        extra["access_log_class"] = access_log_class
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = AppRunner(app, **handler_limits(max_header_bytes), **extra)
    await runner.setup()
    try:
        # reuse_port: the workers of `serve --workers` bind one port (SO_REUSEPORT).
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        await stop.wait()
    finally:
        if watchdog is not None:
            watchdog.start()
        # A task, waited on with a timeout rather than cancelled into: a cleanup step that
        # swallows cancellation would otherwise hold the timeout up. Half a second is kept for
        # the loop's own teardown; the watchdog covers that too.
        cleanup = asyncio.ensure_future(runner.cleanup())
        done, _ = await asyncio.wait({cleanup}, timeout=max(0.1, shutdown_seconds - 0.5))
        if not done:
            _exit_now(
                f"shutdown did not finish within AGENTLOG_SHUTDOWN_SECONDS={shutdown_seconds:g}"
            )
        cleanup.result()


# The cyclic garbage collector's first-generation threshold for a serving process. The
# default (700 allocations) ran a collection every few requests: measured under the HTTP append
# bench (wrk, 64 connections, PostgreSQL) the server spent 10-25% less CPU per request and its
# p99 fell with 20,000. Nearly everything a request allocates is freed by reference counting;
# the collector is only for cycles, which then wait a little longer.
GC_FIRST_GENERATION = 20_000


def tune_garbage_collection() -> None:
    """Fewer collections while serving, and none of them walking what start-up loaded (the
    modules, the agent SDK, the settings): frozen objects are never scanned again."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_GENERATION, second, third)


def run(
    app: web.Application,
    host: str,
    port: int,
    *,
    new_loop: Callable[[], asyncio.AbstractEventLoop] | None = None,
    **options: Any,
) -> None:
    """Serve `app` until SIGINT or SIGTERM, on the loop `new_loop` makes (asyncio's by default;
    transport/event_loop.py chooses), with asyncio.run's setup and teardown."""
    tune_garbage_collection()
    watchdog = ShutdownWatchdog(float(options.get("shutdown_seconds", 30.0)))
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(serve_forever(app, host, port, watchdog=watchdog, **options))
    finally:
        watchdog.cancel()
