"""Who may call what.

- AGENTLOG_API_TOKEN guards every /v1 route; AGENTLOG_ADMIN_TOKEN guards /v1/admin/* (403 for
  the API token there). Both go in `Authorization: Bearer`, never in a URL.
- Session tokens (`transport/middleware/session_tokens.py`) open one session's routes: `read` its
  GETs, `write` also its POSTs, `delete` also its DELETE. 403 on any other session or route,
  401 when expired or tampered; 403 also on a route of its session that creates another
  session (fork). `POST /v1/chat` names its session in the body: its handler holds that to the
  token's session.
  A read token may also come as `?access_token=`, because `EventSource` cannot send a header.
- With no API token set, the /v1 routes are open (`agentlog serve` warns about it).
"""

from __future__ import annotations

import hmac

from aiohttp import web

from agentlog.transport.keys import SETTINGS, STORE
from agentlog.transport.middleware.errors import error_response
from agentlog.transport.middleware.session_tokens import (
    SessionGrant,
    TokenRejected,
    looks_like_session_token,
    signing_key,
    verify,
)
from agentlog.transport.settings import Settings

QUERY_TOKEN = "access_token"


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(given: str | None, expected: str | None) -> bool:
    return (
        given is not None
        and expected is not None
        and hmac.compare_digest(given.encode(errors="surrogateescape"), expected.encode())
    )


def token_secret(settings: Settings) -> str | None:
    return settings.token_secret or settings.admin_token or settings.api_token


async def auth_refusal(request: web.Request) -> web.Response | None:
    """The 401 or 403 a request gets; None when its token (or an open server) lets it on.
    Runs after the browser guard (agentlog.transport.middleware.request_steps)."""
    settings = request.app[SETTINGS]
    path = request.path
    if not path.startswith("/v1/") or path == "/v1/openapi.json":
        return None
    is_admin_route = path.startswith("/v1/admin/")
    if not (settings.api_token or (is_admin_route and settings.admin_token)):
        return None  # open: nothing configured guards this route
    token = _bearer(request)
    in_query = token is None and QUERY_TOKEN in request.query
    if in_query:
        token = request.query[QUERY_TOKEN]
    if token is not None and looks_like_session_token(token):
        return await _session_token_refusal(request, token, in_query=in_query)
    if in_query:
        return _unauthorized(
            f"{QUERY_TOKEN} takes only read-scoped session tokens; send other tokens as "
            "Authorization: Bearer <token>"
        )
    if is_admin_route and settings.admin_token:
        if _matches(token, settings.admin_token):
            return None
        if token is None:
            return _unauthorized("this route needs Authorization: Bearer <admin token>")
        if _matches(token, settings.api_token):
            return error_response(403, "forbidden", "admin routes need the admin token")
        return _unauthorized("the bearer token is not valid")
    if _matches(token, settings.api_token) or _matches(token, settings.admin_token):
        return None
    if token is None:
        return _unauthorized("this route needs Authorization: Bearer <token>")
    return _unauthorized("the bearer token is not valid")


async def _session_token_refusal(
    request: web.Request, token: str, *, in_query: bool
) -> web.Response | None:
    """None when this session token opens this request; else the 401 or 403."""
    key = signing_key(token_secret(request.app[SETTINGS]))
    if key is None:
        return _unauthorized("this server has no signing secret for session tokens")
    try:
        grant = verify(key, token)
    except TokenRejected as exc:
        return _unauthorized(exc.message, code=exc.code)
    revocations = request.app[STORE].backend.token_revocations()
    if await revocations.revoked([grant.token_id]):
        return _unauthorized("the token has been revoked; mint a new one", code="token_revoked")
    if in_query and grant.scope != "read":
        return _unauthorized(
            f"{QUERY_TOKEN} takes only read-scoped tokens (a URL ends up in logs and history); "
            "send a write token as Authorization: Bearer <token>"
        )
    request[SESSION_GRANT] = grant
    if _route(request) == CHAT_SEND:
        # The chat's id is in the body: the handler holds it to the grant's session.
        if grant.allows(request.method):
            return None
        return error_response(403, "forbidden", f"a {grant.scope} token cannot send messages")
    session_id = request.match_info.get("session_id")
    if session_id is None or request.path.endswith("/tokens"):
        return error_response(
            403, "forbidden", "a session token opens only its own session's routes"
        )
    if _route(request) in CREATES_SESSIONS:
        return error_response(
            403,
            "forbidden",
            "forking creates a session: it needs the API token, not a session token",
        )
    if session_id != grant.session_id:
        return error_response(403, "forbidden", "this token is for another session")
    if not grant.allows(request.method):
        return error_response(
            403, "forbidden", f"a {grant.scope} token cannot {request.method} this route"
        )
    return None


# useChat's send names its session in the body (`id`), not in the path.
CHAT_SEND = "/v1/chat"

# Routes of a session that create another one: a session token opens its own session only.
CREATES_SESSIONS = frozenset({"/v1/sessions/{session_id}/fork"})


def _route(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


SESSION_GRANT = web.RequestKey("session_grant", SessionGrant)


def session_grant(request: web.Request) -> SessionGrant | None:
    return request.get(SESSION_GRANT)


def _unauthorized(message: str, *, code: str = "unauthorized") -> web.Response:
    response = error_response(401, code, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="agentlog"'
    return response


def is_admin(request: web.Request) -> bool:
    """The request carries the admin token (the API token when no admin token is set)."""
    settings = request.app[SETTINGS]
    return _matches(_bearer(request), settings.admin_token or settings.api_token)
