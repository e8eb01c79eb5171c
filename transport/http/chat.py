"""The chat route shaped the way the AI SDK's `DefaultChatTransport` calls it, so `useChat`
needs no option but `api: BASE + '/v1/chat'`: `POST /v1/chat` with useChat's body (`id` is
the session id) always answers with the run's UI message stream, whatever `Accept` says;
`GET /v1/chat/{id}/stream` is the reconnect route `resume: true` calls; `POST
/v1/chat/{id}/stop` stops the chat's run (the AI SDK's `stop()` only closes its fetch). A
chat id the log does not know yet is created on its first send (the AI SDK's persistence
pattern), unless the caller holds a session token, which opens only its own, existing
session."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from aiohttp import web

from agentlog.domain.errors import (
    RunNotActive,
    SessionAlreadyExists,
    UnknownSession,
)
from agentlog.domain.events import SessionCreated
from agentlog.infra.sessions.approval_answers import latest_approvals
from agentlog.infra.sessions.tombstone import live_head
from agentlog.transport.http.files import read_uploads
from agentlog.transport.http.request_parsing import read_body
from agentlog.transport.http.runs import (
    StartRunBody,
    record_answers,
    refuse_bad_prompt,
    resume_stream,
    run_body,
)
from agentlog.transport.http.sessions import json_response, new_session_id
from agentlog.transport.keys import AGENT_RUNS, STORE
from agentlog.transport.middleware.auth import session_grant
from agentlog.transport.middleware.errors import ApiError

# The reason a stop records when it denies the approvals a chat waits on.
STOPPED = "stopped"


class ChatBody(StartRunBody, kw_only=True):
    """useChat's body: `id` (the chat, which is the session), `messages` (the whole chat, or
    only its last message: the log holds the conversation), `trigger`, `messageId`."""

    id: str


async def open_chat(request: web.Request, session_id: str) -> None:
    """The session exists afterwards: created now, on the chat's first send, when the caller
    may create sessions. 410 for a deleted one (its id is never given out again)."""
    store = request.app[STORE]
    try:
        await live_head(store, session_id)  # SessionDeleted: 410
        return
    except UnknownSession:
        if session_grant(request) is not None:
            raise  # the token's session is gone or never was: 404, nothing created
    agent = request.app[AGENT_RUNS].agents.get(None)
    # Another first send of the same chat may have created it a moment ago.
    with contextlib.suppress(SessionAlreadyExists):
        await store.append(session_id, [SessionCreated(agent=agent.name)], 0)


async def send_message(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, ChatBody)
    session_id = new_session_id(body.id)
    grant = session_grant(request)
    if grant is not None and grant.session_id != session_id:
        raise ApiError(403, "forbidden", "this token is for another session")
    # Before the chat is created: a refused first send leaves nothing behind.
    uploads = read_uploads(request, session_id, body.new_files())
    if body.trigger != "regenerate-message" and not body.approval_answers():
        refuse_bad_prompt(body.prompt_text(), with_files=bool(uploads))
    await open_chat(request, session_id)
    return await run_body(request, session_id, body, stream=True, uploads=uploads)


async def resume_chat(request: web.Request) -> web.StreamResponse:
    """204 when nothing runs, also for a chat not created yet: `useChat({ resume: true })`
    calls this on every page load, before the chat's first send too."""
    try:
        return await resume_stream(request)
    except UnknownSession:
        return web.Response(status=204)


class StopBody(msgspec.Struct):
    """`{}` (or no body), or `{"clear_queue": true}`: the prompts queued behind the run are
    dropped too (by default they go on, one turn each, once it has ended)."""

    clear_queue: bool = False


async def stop_chat(request: web.Request) -> web.Response:
    """Stop the chat's active run, keyed by the chat id (the client holds no run id), and
    answer once it has ended: its terminal event is in the log, the tool calls it left are
    ended on every stream of it, and the next send is not refused as `run_active`. Stopping a
    chat while tool approvals wait denies them (reason "stopped"): the turn that tells the
    agent so runs as usual, then the queue goes on. Stopping a chat with nothing running
    or waiting is no error: `run_id` is then null."""
    body = await read_body(request, StopBody, allow_empty=True)
    session_id = request.match_info["session_id"]
    store = request.app[STORE]
    await live_head(store, session_id)  # 404 for an unknown chat
    runs = request.app[AGENT_RUNS]
    # Cleared before the run is stopped: its end then finds nothing to start.
    cleared = await runs.clear_queue(session_id) if body.clear_queue else None
    extra = {} if cleared is None else {"queue_cleared": cleared}
    run_id = await runs.active_run(session_id)
    if run_id is None:
        denied = await deny_waiting_approvals(request, session_id)
        if denied is not None:
            return json_response({**denied, **extra})
        return json_response({"run_id": None, "status": "idle", **extra})
    # Returns once the run is over; one that ended by itself meanwhile is stopped all the same.
    with contextlib.suppress(RunNotActive):
        await runs.cancel(session_id, run_id)
    return json_response({"run_id": run_id, "status": "stopped", **extra})


async def deny_waiting_approvals(request: web.Request, session_id: str) -> dict[str, Any] | None:
    """Deny every approval the session waits on (reason "stopped"), as answers given through
    useChat are recorded: the last with the run that continues the turn. None when none waits."""
    waiting = (await latest_approvals(request.app[STORE], session_id)).pending()
    if not waiting:
        return None
    ids = [approval.request.approval_id for approval in waiting]
    answers: list[tuple[str, bool, str | None]] = [(i, False, STOPPED) for i in ids]
    run_id, _started, _seen = await record_answers(request, session_id, answers)
    return {"run_id": run_id, "status": "approvals_denied", "approvals_denied": ids}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat", send_message)
    # `session_id`, as on /v1/sessions/{session_id}/...: auth and deletion checks read it.
    app.router.add_get("/v1/chat/{session_id}/stream", resume_chat)
    app.router.add_post("/v1/chat/{session_id}/stop", stop_chat)
