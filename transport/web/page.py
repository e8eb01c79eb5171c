"""The live web page: `GET /` serves a small page (plain HTML, CSS and JavaScript, no build
step) that lists sessions, renders a session's UI messages and its raw event log, both live over
SSE; `GET /static/{name}` serves its assets from `transport/web/` and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from agentlog.transport.middleware.security_headers import PAGE_POLICY

WEB_DIR = Path(__file__).resolve().parent

CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": PAGE_POLICY,
}


def _asset(name: str) -> Path | None:
    """The file `name` directly inside WEB_DIR with a known type, or None. A name is one
    plain file name: no separators, no dot files, so nothing outside WEB_DIR is reachable."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        return None
    path = WEB_DIR / name
    if path.suffix not in CONTENT_TYPES or path.parent != WEB_DIR or not path.is_file():
        return None
    return path


async def _serve(name: str) -> web.Response:
    path = _asset(name)
    if path is None:
        raise web.HTTPNotFound(text="no such file\n")
    body = path.read_bytes()  # a few kB, read per request so edits show without a restart
    charset = "utf-8" if CONTENT_TYPES[path.suffix].startswith("text/") else None
    return web.Response(
        body=body, content_type=CONTENT_TYPES[path.suffix], charset=charset, headers=HEADERS
    )


async def index(request: web.Request) -> web.Response:
    return await _serve("index.html")


async def static(request: web.Request) -> web.Response:
    return await _serve(request.match_info["name"])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)


# For agentlog.transport.openapi.document's ALL_PATHS.
OPENAPI_PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "The live web page: sessions, a session's conversation and event log",
            "security": [],
            "responses": {"200": {"description": "text/html"}},
        }
    },
    "/static/{name}": {
        "get": {
            "summary": "The web page's assets (files of transport/web/ only)",
            "security": [],
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {"description": "the file, with its content type"},
                "404": {"description": "no such asset"},
            },
        }
    },
}
