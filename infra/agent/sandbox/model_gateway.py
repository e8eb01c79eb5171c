"""The sandboxed CLI's only way out: HTTP on a unix socket, forwarded to the model.

A run's sandbox has no network (`sandbox.py`); its relay hands each connection to this
gateway's socket. The gateway forwards the request to the model's base URL and streams the
answer back as it arrives (the Messages API streams SSE). With an API key it replaces the
request's credentials with it, so the real key exists only in the server process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

# Per connection, not forwarded (RFC 9110 7.6.1), plus what the gateway sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_CREDENTIALS = frozenset({"x-api-key", "authorization"})


class ModelGateway:
    def __init__(self, upstream: str, *, api_key: str | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.api_key = api_key
        self.socket_path: Path | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self, socket_path: Path) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30), auto_decompress=False
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(socket_path)).start()
        os.chmod(socket_path, 0o600)  # the server's own user only
        self.socket_path = socket_path

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        if self.api_key is not None:
            headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
            headers["x-api-key"] = self.api_key
        url = self.upstream + request.rel_url.path_qs
        body = await request.read()
        response: web.StreamResponse | None = None
        try:
            async with self._http.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status,
                    headers={
                        k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
                    },
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as exc:
            log.warning("model gateway: the model did not answer: %s", type(exc).__name__)
            if response is not None and response.prepared:
                return response  # cut mid-answer: the CLI sees the stream break and retries
            return web.json_response(
                {"type": "error", "error": {"type": "api_error", "message": "model unreachable"}},
                status=502,
            )

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.socket_path is not None:
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
