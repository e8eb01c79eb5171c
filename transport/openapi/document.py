"""The HTTP API described as OpenAPI 3.1, served at /v1/openapi.json.

Written by hand: the paths of each resource in a module of this folder (service, sessions,
runs, chat, projections) or, for some routes, as `OPENAPI_PATHS` beside their handlers; the
shared pieces in `fragments` and `components`. tests/e2e/test_openapi.py fails when a route is added
without being documented, or documented without existing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agentlog.transport.http import admin as admin_api
from agentlog.transport.http import files as files_api
from agentlog.transport.http import forks as fork_api
from agentlog.transport.http import metrics
from agentlog.transport.http import tokens as tokens_api
from agentlog.transport.keys import SETTINGS
from agentlog.transport.openapi.chat import CHAT_PATHS
from agentlog.transport.openapi.components import COMPONENTS
from agentlog.transport.openapi.fragments import returns_error
from agentlog.transport.openapi.projections import PROJECTION_PATHS
from agentlog.transport.openapi.runs import RUN_PATHS
from agentlog.transport.openapi.service import SERVICE_PATHS
from agentlog.transport.openapi.sessions import SESSION_PATHS
from agentlog.transport.web import page as web_view

ALL_PATHS = {
    **PROJECTION_PATHS,
    **SERVICE_PATHS,
    **SESSION_PATHS,
    **RUN_PATHS,
    **CHAT_PATHS,
    **admin_api.OPENAPI_PATHS,
    **tokens_api.OPENAPI_PATHS,
    **fork_api.OPENAPI_PATHS,
    **files_api.OPENAPI_PATHS,
    **metrics.OPENAPI_PATHS,
    **web_view.OPENAPI_PATHS,
}


def document(app: web.Application) -> dict[str, Any]:
    """The document for the routes this app actually has, with the security it actually has:
    no scheme at all when no token is configured (every route is open then)."""
    settings = app[SETTINGS]
    registered = {
        resource.canonical
        for resource in app.router.resources()
        if resource.canonical.startswith("/")
    }
    paths = {
        path: {
            method: _secured(path, method, operation, settings)
            for method, operation in methods.items()
        }
        for path, methods in ALL_PATHS.items()
        if path in registered
    }
    components = dict(COMPONENTS)
    schemes: dict[str, Any] = {}
    if settings.api_token or settings.admin_token:
        schemes["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "AGENTLOG_API_TOKEN, AGENTLOG_ADMIN_TOKEN for /v1/admin, or a "
            "session token (agentlog token) for its own session",
        }
    if settings.api_token:
        schemes["accessToken"] = {
            "type": "apiKey",
            "in": "query",
            "name": "access_token",
            "description": "a read-scoped session token, for EventSource",
        }
    if schemes:
        components["securitySchemes"] = schemes
    else:
        components.pop("securitySchemes", None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "agentlog",
            "version": "0.1.0",
            "description": (
                "Served by `agentlog serve --workers N` with N > 1, every response carries "
                "`Agentlog-Worker: <index>/<count> <pid>`, naming the process that answered."
            ),
        },
        "paths": paths,
        "components": components,
    }


# The operations that stream (transport/middleware/limits.py counts them): the events with
# Accept: text/event-stream, the UI message streams, a run streamed by its POST, useChat's send.
STREAMS = frozenset(
    {
        ("get", "/v1/sessions/{session_id}/events"),
        ("get", "/v1/sessions/{session_id}/stream"),
        ("get", "/v1/chat/{session_id}/stream"),
        ("post", "/v1/sessions/{session_id}/runs"),
        ("post", "/v1/chat"),
    }
)

# The operations that start a run (429 too_many_runs beyond AGENTLOG_MAX_ACTIVE_RUNS).
RUN_STARTS = frozenset({("post", "/v1/sessions/{session_id}/runs"), ("post", "/v1/chat")})


def _secured(path: str, method: str, operation: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The operation with its security requirement and every error it may answer: the token
    refusals where a token is asked for, the stream limits where a stream opens."""
    responses = {**operation["responses"]}
    operation = {**operation, "responses": responses}
    public = operation.get("security") == [] or not path.startswith("/v1/")
    if path.startswith("/v1/admin/"):
        guarded = settings.admin_token or settings.api_token
    else:
        guarded = settings.api_token
    # A session token is taken on a session's own routes (and the chat's, by its id).
    session_tokens = bool(settings.api_token) and ("{session_id}" in path or path == "/v1/chat")
    if public or not guarded:
        operation["security"] = []
    elif method == "get" and "{session_id}" in path and settings.api_token:
        operation["security"] = [{"bearer": []}, {"accessToken": []}]
    else:
        operation["security"] = [{"bearer": []}]
    if operation["security"]:
        why = "no valid token (unauthorized, invalid_token"
        why += ", token_expired, token_revoked)" if session_tokens else ")"
        responses.setdefault("401", returns_error(why))
    if (method, path) in STREAMS:
        responses.setdefault(
            "503",
            returns_error(
                "too_many_streams: the server holds AGENTLOG_MAX_SSE_CONNECTIONS streams "
                "(session tokens together nine tenths of them); with Retry-After"
            ),
        )
    too_many = []
    if (method, path) in STREAMS and session_tokens:
        too_many.append(
            "too_many_streams: the session token, or its session's tokens together, hold as "
            "many streams as they may"
        )
    if (method, path) in RUN_STARTS:
        too_many.append("too_many_runs: the server drives AGENTLOG_MAX_ACTIVE_RUNS runs")
    if too_many:
        responses.setdefault("429", returns_error("; or ".join(too_many) + "; with Retry-After"))
    responses["default"] = returns_error("error")
    return operation


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app))
