"""The sandboxed CLI's only way out: HTTP on a unix socket, forwarded to the model.

A run's sandbox has no network (`sandbox.py`); its relay hands each connection to this
gateway's socket. The gateway forwards what a run needs and nothing else:

- `POST /v1/messages` and `POST /v1/messages/count_tokens`; any other method or path (batches,
  files, the organization's details) is refused with 403;
- from a run it knows: each run's CLI gets its own placeholder key (`RunMeter.key`), which
  names the run to the gateway and is worth nothing upstream; an unknown key gets 403;
- for a model the run's agent is configured for, within the run's budget (`metering.py`).

It streams the answer back as it arrives (the Messages API streams SSE), reading the model's
token counts on the way, and counts every forwarded call on the run's meter, which records it
(`model_call_metered`). With an API key it replaces the request's credentials with it, so the
real key exists only in the server process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web
from multidict import CIMultiDictProxy

from agentlog.infra.agent.sandbox.metering import AnswerUsage, RunMeter
from agentlog.infra.agent.sandbox.socket_paths import bindable

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
        # Asked for uncompressed, so the gateway can read the token counts it forwards.
        "accept-encoding",
    }
)
_CREDENTIALS = frozenset({"x-api-key", "authorization"})
# What a run may reach (`?beta=true` and other queries pass): path -> the endpoint's name.
ENDPOINTS = {"/v1/messages": "messages", "/v1/messages/count_tokens": "count_tokens"}


class _Asked(msgspec.Struct):
    """What the gateway reads of a call. The rest is the whole conversation, megabytes in a
    long session: decoded into Python objects (`json.loads`), it held the event loop ~40 ms
    a call at 100k events; skipped by msgspec it is only scanned."""

    model: Any = None
    stream: Any = None


class ModelGateway:
    def __init__(self, upstream: str, *, api_key: str | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.api_key = api_key
        self.socket_path: Path | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._runs: dict[str, RunMeter] = {}

    def admit(self, meter: RunMeter) -> None:
        """Forward the calls that present `meter.key`, counted on it."""
        self._runs[meter.key] = meter

    def dismiss(self, meter: RunMeter) -> None:
        self._runs.pop(meter.key, None)

    async def start(self, socket_path: Path) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30), auto_decompress=False
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        with bindable(socket_path) as name:
            await web.UnixSite(self._runner, name).start()
        os.chmod(socket_path, 0o600)  # the server's own user only
        self.socket_path = socket_path

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        meter = self._runs.get(_presented_key(request.headers) or "")
        if meter is None:
            return _refused("this key belongs to no run of this server")
        endpoint = ENDPOINTS.get(request.path) if request.method == "POST" else None
        if endpoint is None:
            not_forwarded = (
                f"{request.method} {request.path} is not forwarded: a run reaches only "
                "POST /v1/messages and /v1/messages/count_tokens"
            )
            meter.refuse(f"{request.method} {request.path}"[:200], None, not_forwarded)
            return _refused(not_forwarded)
        body = await request.read()
        try:
            asked = msgspec.json.decode(body, type=_Asked)
        except msgspec.DecodeError:  # not JSON, or JSON but not an object
            invalid = {"type": "invalid_request_error", "message": "the body is not a JSON object"}
            return web.json_response({"type": "error", "error": invalid}, status=400)
        why = meter.refusal(asked.model)
        if why is not None:
            log.warning("model gateway: run %s: refused: %s", meter.run_id, why)
            meter.refuse(endpoint, asked.model, why)
            return _refused(why)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() not in _CREDENTIALS
        }
        if self.api_key is not None:
            headers["x-api-key"] = self.api_key
        url = self.upstream + request.rel_url.path_qs
        response: web.StreamResponse | None = None
        status = 502
        answer = AnswerUsage(streamed=bool(asked.stream))
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
                status = upstream.status
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    answer.feed(chunk)
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
        finally:
            # Counted whatever happened after it was sent: a call cut off mid-answer was
            # still paid for.
            answer.finish()
            model = answer.model or str(asked.model)
            meter.count(endpoint, model, status, answer.usage)

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


def _presented_key(headers: CIMultiDictProxy[str]) -> str | None:
    key = headers.get("x-api-key")
    if key is None and headers.get("authorization", "").lower().startswith("bearer "):
        key = headers["authorization"][7:].strip()
    return key


def _refused(why: str) -> web.Response:
    """403 in the Messages API's own error shape, so the CLI shows the reason."""
    return web.json_response(
        {"type": "error", "error": {"type": "permission_error", "message": why}}, status=403
    )
