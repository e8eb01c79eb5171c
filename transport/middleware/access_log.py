"""One access-log line per request, at a level an operator can live with, with no secret in it.

Health checks, metrics scrapes, assets and successful plain reads (what an open page or a
poller repeats every second) log at debug; writes, streams and errors at info. No header is
ever logged, and nothing that looks like a token: the value of any query parameter whose name
says it holds a secret, and any session token wherever it appears, become `REDACTED`. The
query is read the way any parser might (`&` or `;` between pairs, names and values
percent-decoded, more than once), because a server or proxy behind us may read it that way.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

log = logging.getLogger("agentlog.access")

# A parameter whose name contains one of these holds a secret: access_token, api_key, ...
SECRET_NAME_PARTS = ("token", "secret", "password", "passwd", "key", "auth", "signature")
# A session token (`agl1.` + base64url), or an Anthropic API key.
TOKEN_SHAPE = re.compile(r"agl1\.[A-Za-z0-9_\-.]*|sk-ant-[A-Za-z0-9_\-]+")
QUIET_PATHS = ("/healthz", "/metrics", "/static/", "/v1/openapi.json")
_PAIR_SEPARATOR = re.compile(r"([&;])")
REDACTED = "REDACTED"


def _decoded(text: str) -> str:
    """Percent-decoded until nothing changes (a double-encoded `%252E` is a `.` too)."""
    for _ in range(4):
        decoded = unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    return text


def _looks_secret(name: str, value: str) -> bool:
    name = _decoded(name).lower()
    return any(part in name for part in SECRET_NAME_PARTS) or bool(
        TOKEN_SHAPE.search(_decoded(value))
    )


def redacted_query(query_string: str) -> str:
    """The query as sent, but with the value of every pair that holds a secret replaced."""
    pieces = _PAIR_SEPARATOR.split(query_string)
    for index in range(0, len(pieces), 2):  # odd indexes are the separators themselves
        name, equals, value = pieces[index].partition("=")
        if _looks_secret(name, value):
            pieces[index] = f"{name}={REDACTED}" if equals else REDACTED
    return "".join(pieces)


def redacted_path(path: str) -> str:
    """The path with each segment that holds a session token replaced."""
    return "/".join(
        REDACTED if TOKEN_SHAPE.search(_decoded(segment)) else segment
        for segment in path.split("/")
    )


def level_for(method: str, path: str, status: int, streaming: bool) -> int:
    if path == "/" or path.startswith(QUIET_PATHS):
        return logging.DEBUG if status < 500 else logging.WARNING
    if method in ("GET", "HEAD", "OPTIONS") and status < 400 and not streaming:
        return logging.DEBUG
    return logging.INFO


class AccessLog(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        streaming = response.content_type == "text/event-stream"
        level = level_for(request.method, request.path, response.status, streaming)
        if not log.isEnabledFor(level):
            return
        # As sent (not decoded): the redaction decodes it itself, every way a reader might.
        target = redacted_path(request.rel_url.raw_path)
        if request.rel_url.raw_query_string:
            target += "?" + redacted_query(request.rel_url.raw_query_string)
        log.log(
            level,
            "%s %s %d %.1fms",
            request.method,
            target,
            response.status,
            time * 1000,
            extra={"http_status": response.status},
        )

    @property
    def enabled(self) -> bool:
        return log.isEnabledFor(logging.DEBUG) or log.isEnabledFor(logging.INFO)
