"""Agent runs over HTTP: start (202, or the run streamed as an AI SDK UI message stream),
cancel, and resume the active run's stream (`useChat({ resume: true })`)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from projections.ui_stream import DONE, RunStreamEncoder, encode_sse
from transport.errors import ApiError
from transport.keys import AGENT_RUNS, FEEDS, SETTINGS, SHUTDOWN, STORE
from transport.limits import LIMITS
from transport.request_parsing import read_body
from transport.sessions_api import json_response, wants_sse
from transport.sse import KEEPALIVE, SSE_HEADERS, ClientGone, send

MAX_PROMPT_CHARS = 100_000
UI_STREAM_HEADERS = {**SSE_HEADERS, "x-vercel-ai-ui-message-stream": "v1"}


class StartRunBody(msgspec.Struct):
    """`{"prompt": "..."}`, or the body `useChat` sends: `{"id", "messages": UIMessage[], ...}`
    whose last user message is the prompt. Other fields useChat adds are ignored."""

    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None

    def prompt_text(self) -> str:
        if self.prompt is not None:
            return self.prompt
        for message in reversed(self.messages or []):
            if message.get("role") == "user":
                parts = message.get("parts") or []
                return "".join(
                    str(p.get("text", ""))
                    for p in parts
                    if isinstance(p, dict) and p.get("type") == "text"
                )
        return ""


async def start_run(request: web.Request) -> web.StreamResponse:
    session_id = request.match_info["session_id"]
    body = await read_body(request, StartRunBody)
    prompt = body.prompt_text()
    if not prompt.strip(" \t\r\n"):
        raise ApiError(400, "invalid_prompt", "the run needs a non-empty prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(
            400, "invalid_prompt", f"the prompt is longer than {MAX_PROMPT_CHARS} characters"
        )
    runs = request.app[AGENT_RUNS]
    try:
        with request.app[LIMITS].run_slot(lambda: runs.active_count):
            started = await runs.start(session_id, prompt)
    except RuntimeError as exc:  # the runner is shutting down
        raise ApiError(503, "shutting_down", str(exc)) from None
    if wants_sse(request):
        return await stream_run(request, session_id, started.run_id)
    return json_response({"run_id": started.run_id, "offset": started.offset}, 202)


class CancelBody(msgspec.Struct):
    """Cancel takes no fields; its body is a JSON object (`{}`) like every write's."""


async def cancel_run(request: web.Request) -> web.Response:
    await read_body(request, CancelBody, allow_empty=True)
    session_id = request.match_info["session_id"]
    run_id = request.match_info["run_id"]
    await request.app[STORE].head(session_id)  # 404 for an unknown session
    await request.app[AGENT_RUNS].cancel(session_id, run_id)
    return json_response({"run_id": run_id, "status": "cancelled"}, 202)


async def resume_stream(request: web.Request) -> web.StreamResponse:
    """204 when no run is active, else the active run replayed from its start, then live."""
    session_id = request.match_info["session_id"]
    await request.app[STORE].head(session_id)
    run_id = await request.app[AGENT_RUNS].active_run(session_id)
    if run_id is None:
        return web.Response(status=204)
    return await stream_run(request, session_id, run_id)


async def stream_run(request: web.Request, session_id: str, run_id: str) -> web.StreamResponse:
    """The run as UI message stream chunks, from its `start` to `[DONE]`. The encoder is fed
    the log from the run's `run_started` (found in the run index: the session's earlier runs
    are never read), then the live tail; keep-alives are SSE comments, because an unknown data
    chunk breaks the AI SDK's parser."""
    app = request.app
    store = app[STORE]
    settings = app[SETTINGS]
    shutdown = app[SHUTDOWN]
    timeout = settings.sse_write_timeout_seconds
    response = web.StreamResponse(status=200, headers=UI_STREAM_HEADERS)
    await response.prepare(request)
    encoder = RunStreamEncoder(run_id)
    try:
        async with app[FEEDS].follow(session_id) as (_tail, waiter):
            indexed = await store.run(session_id, run_id)
            last = indexed.started_seq - 1 if indexed is not None else 0
            while not encoder.closed:
                page = await store.read(session_id, after=last, limit=1000)
                if page:
                    last = page[-1].seq
                    out = b"".join(
                        encode_sse(chunk)
                        for recorded in page
                        for chunk in encoder.chunks_for(recorded)
                    )
                    if out:
                        await send(request, response, out, timeout)
                    continue
                if shutdown.is_set():
                    break
                if not await waiter.wait(settings.sse_keepalive_seconds):
                    await send(request, response, KEEPALIVE, timeout)
            if encoder.closed:
                await send(request, response, DONE, timeout)
    except ClientGone:
        return response
    if request.transport is None or request.transport.is_closing():
        return response  # the client is gone: no end of body to write
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/sessions/{session_id}/runs", start_run)
    app.router.add_post("/v1/sessions/{session_id}/runs/{run_id}/cancel", cancel_run)
    app.router.add_get("/v1/sessions/{session_id}/stream", resume_stream)
