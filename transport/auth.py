"""Bearer-token auth: AGENTLOG_API_TOKEN guards /v1, AGENTLOG_ADMIN_TOKEN guards admin routes."""

from __future__ import annotations

import hmac

from aiohttp import web

from transport.errors import Handler, error_response
from transport.keys import SETTINGS


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    path = request.path
    if not path.startswith("/v1/") or path == "/v1/openapi.json":
        return await handler(request)
    token = _bearer(request)
    is_admin_route = path.startswith("/v1/admin/")
    if is_admin_route and settings.admin_token:
        if _matches(token, settings.admin_token):
            return await handler(request)
        if token is None:
            return _unauthorized("this route needs Authorization: Bearer <admin token>")
        if settings.api_token and _matches(token, settings.api_token):
            return error_response(403, "forbidden", "admin routes need the admin token")
        return _unauthorized("the bearer token is not valid")
    if settings.api_token:
        if _matches(token, settings.api_token) or (
            settings.admin_token and _matches(token, settings.admin_token)
        ):
            return await handler(request)
        if token is None:
            return _unauthorized("this route needs Authorization: Bearer <token>")
        return _unauthorized("the bearer token is not valid")
    return await handler(request)


def _unauthorized(message: str) -> web.Response:
    response = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="agentlog"'
    return response


def is_admin(request: web.Request) -> bool:
    """The request carries the admin token (the API token when no admin token is set)."""
    settings = request.app[SETTINGS]
    admin = settings.admin_token or settings.api_token
    return admin is not None and _matches(_bearer(request), admin)
