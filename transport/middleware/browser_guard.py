"""Browsers cannot be turned against the server.

A page on any site can make a visitor's browser send requests to an agentlog on loopback; the
browser only stops the page from *reading* the answers. So before anything else runs:

- `Host` must be a loopback address or a name the operator configured (the bind address,
  AGENTLOG_ALLOWED_HOSTS): a DNS-rebinding page reaches us under its own name and gets 403.
- A request carrying an `Origin` other than the server's own or one in
  AGENTLOG_ALLOWED_ORIGINS gets 403 (browsers send Origin on every cross-origin fetch, every
  EventSource and every POST).
- A state-changing request must say `Content-Type: application/json` (415 otherwise): a form
  or a no-cors `fetch` can only send text/plain, urlencoded or multipart bodies without a
  CORS preflight, so this alone stops cross-site writes even from a browser without Origin.
- An allowed origin gets CORS: a preflight answers 204 with the methods and headers the API
  takes, and every response names the origin, so a `useChat` front end elsewhere works.
"""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from agentlog.transport.keys import SETTINGS
from agentlog.transport.middleware.errors import error_response

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Writes that must say they send JSON: a browser sends a POST cross-origin without asking
# first unless it is JSON, so requiring JSON forces the preflight. A DELETE (no body) always
# needs a preflight cross-origin, so it is not asked for a content type it does not have.
NEEDS_JSON = STATE_CHANGING - {"DELETE"}
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept, Last-Event-ID, Idempotency-Key"
EXPOSE_HEADERS = "Location, Retry-After, WWW-Authenticate, x-vercel-ai-ui-message-stream"
PREFLIGHT_MAX_AGE = "600"
_WILDCARD_BINDS = {"0.0.0.0", "::", ""}


def host_name(host_header: str) -> str:
    """`example.com:8080` -> `example.com`; `[::1]:8080` -> `::1`; lower case."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, _, _port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return name


def is_loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(request: web.Request) -> bool:
    raw = request.headers.get(hdrs.HOST)
    if raw is None:
        return True  # HTTP/1.0 without Host: not a browser (browsers always send it)
    settings = request.app[SETTINGS]
    return _host_verdict(raw, settings.allowed_hosts, settings.host)


# Every request asks, almost always with the same Host: parsing it as an IP address each time
# was 4% of a profiled append's CPU. Bounded, since the header is the client's to choose.
@functools.lru_cache(maxsize=256)
def _host_verdict(raw: str, allowed_hosts: tuple[str, ...], bind: str) -> bool:
    name = host_name(raw)
    if is_loopback(name):
        return True
    allowed = {h.lower().strip("[]") for h in allowed_hosts}
    if bind not in _WILDCARD_BINDS:
        allowed.add(bind.lower().strip("[]"))
    return name in allowed


def same_origin(request: web.Request, origin: str) -> bool:
    """The page was served by this server: the origin's host and port are the request's Host.
    The scheme is not compared, so a TLS-terminating proxy in front does not break it."""
    parts = urlsplit(origin)
    host = request.headers.get(hdrs.HOST, "")
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host.lower()


def allowed_origin(request: web.Request, origin: str) -> bool:
    return origin in request.app[SETTINGS].allowed_origins


# Every write asks, almost always with the same Content-Type. Bounded, since the header is
# the client's to choose.
@functools.lru_cache(maxsize=256)
def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def browser_answer(request: web.Request) -> web.Response | None:
    """The answer a request gets before anything else runs (403, 415, or a CORS preflight's
    204); None when it may go on. First of every request's steps
    (agentlog.transport.middleware.request_steps)."""
    if not host_allowed(request):
        return error_response(
            403,
            "forbidden_host",
            "this server does not answer to that Host name; add it to AGENTLOG_ALLOWED_HOSTS",
        )
    origin = request.headers.get(hdrs.ORIGIN)
    cross_origin = origin is not None and not same_origin(request, origin)
    if cross_origin:
        assert origin is not None
        if not allowed_origin(request, origin):
            return error_response(
                403,
                "forbidden_origin",
                f"requests from origin {origin[:200]!r} are not allowed; "
                "add it to AGENTLOG_ALLOWED_ORIGINS",
            )
        if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            return preflight(origin)
    routed = getattr(request.match_info, "http_exception", None) is None  # else 404 / 405
    if (
        routed
        and request.method in NEEDS_JSON
        and not is_json(request.headers.get(hdrs.CONTENT_TYPE, ""))
    ):
        return error_response(
            415,
            "unsupported_media_type",
            "state-changing requests need Content-Type: application/json",
        )
    return None


def preflight(origin: str) -> web.Response:
    return web.Response(
        status=204,
        headers={
            hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOW_METHODS,
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOW_HEADERS,
            hdrs.ACCESS_CONTROL_MAX_AGE: PREFLIGHT_MAX_AGE,
            hdrs.VARY: "Origin",
        },
    )


def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """A response step (agentlog.transport.middleware.request_steps): every answer to an
    allowed origin names it, streams included (their headers leave when they are prepared,
    before any handler code could add them)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or not allowed_origin(request, origin):
        return
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSE_HEADERS
    vary = response.headers.get(hdrs.VARY)
    response.headers[hdrs.VARY] = "Origin" if not vary else f"{vary}, Origin"
