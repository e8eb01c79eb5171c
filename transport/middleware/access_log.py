"""One access-log line per request, at a level an operator can live with, with no secret in it.

Health checks, metrics scrapes, assets and successful plain reads (what an open page or a
poller repeats every second) log at debug; writes, streams and errors at info. The query's
`access_token` is replaced by `REDACTED`, and no header is ever logged.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

log = logging.getLogger("agentlog.access")

SECRET_PARAMETERS = frozenset({"access_token", "token"})
QUIET_PATHS = ("/healthz", "/metrics", "/static/", "/v1/openapi.json")


def redacted_query(query_string: str) -> str:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    return urlencode(
        [(k, "REDACTED" if k.lower() in SECRET_PARAMETERS else v) for k, v in pairs], safe="/:,"
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
        target = request.path
        if request.query_string:
            target += "?" + redacted_query(request.query_string)
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
