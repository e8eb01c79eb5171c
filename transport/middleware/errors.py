"""Every error leaves as JSON `{"error": {"code", "message", ...}}` with a precise status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agentlog.domain.errors import (
    AgentlogError,
    EventTooLarge,
    ExpectedSeqMismatch,
    InvalidAppend,
    SessionAlreadyExists,
    StoreUnavailable,
    UnknownSession,
)
from agentlog.infra.store.opening import service_outage
from agentlog.transport.keys import SETTINGS, STORE

log = logging.getLogger(__name__)

# Seconds a client is told to wait after a 503 for a service that is down.
RETRY_AFTER_SECONDS = "2"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Raised by handlers for a 4xx the domain does not know about (bad offset, bad body)."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(status: int, code: str, message: str, **details: Any) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, **details}}, status=status
    )


def domain_error_response(exc: AgentlogError) -> web.Response:
    if isinstance(exc, UnknownSession):
        return error_response(404, exc.code, str(exc), session_id=exc.session_id)
    if isinstance(exc, ExpectedSeqMismatch):
        return error_response(409, exc.code, str(exc), head=exc.head, expected=exc.expected)
    if isinstance(exc, SessionAlreadyExists):
        return error_response(409, exc.code, str(exc), session_id=exc.session_id)
    if isinstance(exc, EventTooLarge):
        return error_response(413, exc.code, str(exc), limit=exc.limit)
    if isinstance(exc, InvalidAppend):
        return error_response(400, exc.code, str(exc))
    if isinstance(exc, StoreUnavailable):
        return unavailable(exc.code, str(exc))
    status = getattr(exc, "http_status", 400)
    return error_response(status, exc.code, str(exc), **getattr(exc, "details", {}))


_REASONS = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "method not allowed on this route"),
    413: ("body_too_large", "the request body is larger than the limit"),
}


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse | None:
    """The JSON answer to an exception a handler raised; None when it is not ours to answer
    (a redirect, a bug: the caller re-raises it)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, **exc.details)
    if isinstance(exc, AgentlogError):
        return domain_error_response(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            return None
        code, message = _REASONS.get(exc.status, ("http_error", exc.reason))
        if exc.status == 413:
            message = f"{message} ({request.app[SETTINGS].max_body_bytes} bytes)"
        response = error_response(exc.status, code, message)
        if "Allow" in exc.headers:  # a 405 names the methods the route takes (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    service = service_outage(exc)
    if service is not None and request.transport is not None:
        # Redis down or restarting: nothing was decided, so a retry is safe.
        log.warning("%s unavailable during %s %s: %r", service, request.method, request.path, exc)
        return unavailable(f"{service}_unavailable", f"{service} unavailable; retry shortly")
    # A read that reached the database outside the store's own bounded path (projections,
    # run index) and lost its connection or timed out: the same 503 JSON as the store's.
    store = request.app.get(STORE)
    if request.transport is None or store is None or not store.backend.connection_failed(exc):
        return None
    log.warning("database unavailable during %s %s: %r", request.method, request.path, exc)
    # The client learns what failed, not the hosts or credentials in the driver's text.
    return unavailable(
        StoreUnavailable.code, "database unavailable; retry shortly (details in the logs)"
    )


def unavailable(code: str, message: str) -> web.Response:
    """503 with `Retry-After`: a service we depend on is down, and a retry may succeed."""
    response = error_response(503, code, message)
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response
