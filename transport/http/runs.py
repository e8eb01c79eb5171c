"""Agent runs over HTTP: start (202, or the run streamed as an AI SDK UI message stream),
cancel, and resume the active run's stream (`useChat({ resume: true })`). A start can go back
to an earlier point first (regenerate, edit, `from_message_id`):
infra/sessions/rewinds.py."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from agentlog.domain.errors import ExpectedSeqMismatch
from agentlog.domain.events import QueueCleared, RunStarted
from agentlog.domain.ports.agent_runs import QueuedRun, StartedRun
from agentlog.domain.ports.event_store import EventStore
from agentlog.domain.rules.attachments import file_parts
from agentlog.infra.sessions.approval_answers import (
    ApprovalAnswer,
    latest_approvals,
    record_answer,
)
from agentlog.infra.sessions.rewinds import (
    USER_SUFFIX,
    PlannedRun,
    branch_of,
    client_message_id,
    plan_from_message,
    plan_regenerate,
    plan_submit,
    refuse_taken_id,
)
from agentlog.infra.sessions.tombstone import live_head
from agentlog.projections.ui_messages import ConversationState
from agentlog.projections.ui_stream import DONE, RunStreamEncoder, encode_sse
from agentlog.transport.http.approvals import continue_turn, responder_of
from agentlog.transport.http.files import NO_UPLOADS, Uploads, read_uploads, store_uploads
from agentlog.transport.http.request_parsing import read_body
from agentlog.transport.http.sessions import json_response, wants_sse
from agentlog.transport.keys import AGENT_RUNS, FEEDS, PROJECTOR, SETTINGS, SHUTDOWN, STORE
from agentlog.transport.middleware.errors import ApiError
from agentlog.transport.middleware.limits import LIMITS
from agentlog.transport.streaming.sse import (
    KEEPALIVE,
    SSE_HEADERS,
    ClientGone,
    ending_of,
    finish_ended,
    send,
)

MAX_PROMPT_CHARS = 100_000
UI_STREAM_HEADERS = {**SSE_HEADERS, "x-vercel-ai-ui-message-stream": "v1"}


class StartRunBody(msgspec.Struct):
    """`{"prompt": "...", "from_message_id"?}`, or the body `useChat` sends: `{"id",
    "messages": UIMessage[], "trigger", "messageId"?, ...}` whose last user message is the
    prompt. Other fields useChat adds are ignored."""

    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    # useChat: "submit-message" or "regenerate-message", and the message it edits or
    # regenerates (absent for a new message, and for regenerating the last answer). Absent,
    # never null: useChat leaves out what it does not send.
    trigger: Literal["submit-message", "regenerate-message"] | UnsetType = UNSET
    message_id: str | UnsetType = msgspec.field(default=UNSET, name="messageId")
    # Non-AI-SDK clients: answer from just before this message of the current branch.
    from_message_id: str | UnsetType = UNSET
    # With `prompt`: the files sent with it, each the AI SDK's FileUIPart `{"mediaType",
    # "url" (a data: URL), "filename"?}` (transport/http/files.py). With `messages`, the last
    # user message's `file` parts are its files instead.
    files: list[Any] | None = None

    def file_parts(self) -> list[Any]:
        if self.prompt is not None or not self.messages:
            return self.files or []
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return file_parts(message)
        return []

    def new_files(self) -> list[Any]:
        """The files this body sends with a new prompt: none for a regenerate (the turn's
        own files go again) or for approval answers."""
        if self.trigger == "regenerate-message" or self.approval_answers():
            return []
        return self.file_parts()

    # Sent while a run is active (docs/agent-runs.md#sending-while-a-run-is-active): queued
    # by default; `interrupt`: the active run is cancelled and this prompt goes next.
    interrupt: bool = False
    # `steer`: handed to the active run's agent at its next step boundary (else queued).
    steer: bool = False

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

    def approval_answers(self) -> list[tuple[str, bool, str | None]]:
        """`useChat`'s answers after `addToolApprovalResponse`: the last message is the
        assistant's, with tool parts "approval-responded" carrying `approval: {id, approved,
        reason?}`. Empty for a normal send."""
        last = self.messages[-1] if self.messages else None
        if self.prompt is not None or not isinstance(last, dict) or last.get("role") != "assistant":
            return []
        answers = []
        for part in last.get("parts") or []:
            approval = part.get("approval") if isinstance(part, dict) else None
            if (
                part.get("state") == "approval-responded"
                and isinstance(approval, dict)
                and isinstance(approval.get("id"), str)
                and isinstance(approval.get("approved"), bool)
            ):
                reason = approval.get("reason")
                answers.append(
                    (
                        approval["id"],
                        approval["approved"],
                        reason if isinstance(reason, str) else None,
                    )
                )
        return answers


async def planned_run(request: web.Request, session_id: str, body: StartRunBody) -> PlannedRun:
    """What the start runs, from where (rewind_requests), and the id the client gave its user
    message. A `{"prompt"}` start reads nothing; one naming its user message reads the
    conversation, to refuse an id another message has (409 `message_id_taken`)."""
    store = request.app[STORE]
    messages = [m for m in body.messages or [] if isinstance(m, dict)]
    message_id = None if isinstance(body.message_id, UnsetType) else body.message_id
    from_message = None if isinstance(body.from_message_id, UnsetType) else body.from_message_id
    regenerate = body.trigger == "regenerate-message"
    client_id = client_message_id(messages) if body.prompt is None else None
    if from_message is None and not regenerate and message_id is None and client_id is None:
        return PlannedRun(prompt=body.prompt_text())
    if from_message is None and not regenerate and message_id is None and client_id is not None:
        # A plain send: only the messages its id could clash with are read (the message-id
        # index), not the whole conversation, unless the stored rows cannot tell.
        planned = PlannedRun(prompt=body.prompt_text(), user_message_id=client_id)
        if await _id_free(request, session_id, planned, client_id):
            return planned
    state, head = await request.app[PROJECTOR].read_messages(session_id)  # 404 if unknown
    branch = branch_of(state)
    if from_message is not None:
        planned = await plan_from_message(store, session_id, branch, from_message, body.prompt)
    elif regenerate:
        planned = await plan_regenerate(store, session_id, branch, message_id, messages)
    elif message_id is not None:
        planned = await plan_submit(
            store, session_id, branch, message_id, messages, body.prompt_text()
        )
    else:
        planned = PlannedRun(prompt=body.prompt_text(), user_message_id=client_id)
    refuse_taken_id(branch, planned)
    if planned.rewind is None:
        return planned
    # The runner appends the rewind only onto the log this plan was made from.
    rewind = msgspec.structs.replace(planned.rewind, expected_head=head)
    return dataclasses.replace(planned, rewind=rewind)


async def _id_free(
    request: web.Request, session_id: str, planned: PlannedRun, client_id: str
) -> bool:
    """True when the rows alone show `client_id` names nothing on the current branch (a
    message, or a run's `<run id>:user`); 409 `message_id_taken` when they show it does. False
    when they cannot tell: no rows yet, the projector behind the log, or the id is a run's
    (a continuation's id names a turn without a message of its own)."""
    names = [client_id]
    if client_id.endswith(USER_SUFFIX):
        names.append(client_id.removesuffix(USER_SUFFIX))
    found = await request.app[PROJECTOR].read_named(session_id, names)
    if found is None:
        return False
    # The same rule as the whole branch's, over the only messages the id can clash with.
    refuse_taken_id(branch_of(ConversationState(messages=tuple(found))), planned)
    return await request.app[STORE].run(session_id, client_id) is None


async def start_run(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, StartRunBody)
    session_id = request.match_info["session_id"]
    uploads = read_uploads(request, session_id, body.new_files())
    return await run_body(request, session_id, body, stream=wants_sse(request), uploads=uploads)


async def run_body(
    request: web.Request,
    session_id: str,
    body: StartRunBody,
    *,
    stream: bool,
    uploads: Uploads = NO_UPLOADS,
) -> web.StreamResponse:
    """Start (or continue, after approvals) the run the body asks for; `stream`: answer with
    its UI message stream, else 202 with its run id. `uploads`: the files sent with the
    prompt, already checked (read_uploads), stored here just before the run starts."""
    answers = body.approval_answers() if body.from_message_id is UNSET else []
    if answers:
        return await continue_with_answers(request, session_id, answers, stream=stream)
    if body.from_message_id == "":
        raise ApiError(400, "invalid_body", "from_message_id must not be empty")
    planned = await planned_run(request, session_id, body)
    prompt = planned.prompt
    refuse_bad_prompt(prompt, with_files=bool(uploads or planned.files))
    if body.interrupt and body.steer:
        raise ApiError(400, "invalid_body", "steer and interrupt exclude each other: choose one")
    if (body.interrupt or body.steer) and planned.rewind is not None:
        raise ApiError(
            400,
            "invalid_body",
            "steer and interrupt apply to a new prompt, not a regenerate or edit",
        )
    # Stored before the event that names them (the runner reads them back for the model).
    files = await store_uploads(request, session_id, uploads) if uploads else planned.files
    runs = request.app[AGENT_RUNS]
    try:
        with request.app[LIMITS].run_slot(lambda: runs.active_count):
            started: StartedRun | QueuedRun
            if planned.rewind is None:
                # Queued while the session is busy (a run, an approval, earlier queued prompts).
                started = await runs.send(
                    session_id,
                    prompt,
                    user_message_id=planned.user_message_id,
                    interrupt=body.interrupt,
                    # A steering message is text the CLI reads mid-turn; one with files
                    # waits for a turn of its own, where the files go as content blocks.
                    steer=body.steer and not files,
                    files=files,
                )
            else:
                started = await runs.start(
                    session_id,
                    prompt,
                    rewind=planned.rewind,
                    user_message_id=planned.user_message_id,
                    files=files,
                )
    except RuntimeError as exc:  # the runner is shutting down
        raise ApiError(503, "shutting_down", str(exc)) from None
    except ExpectedSeqMismatch as exc:  # only a rewind appends against a head
        raise ApiError(
            409,
            "conversation_changed",
            "the conversation changed while this regenerate or edit was being planned "
            f"(it is at seq {exc.head} now, not {exc.expected}); nothing was written: "
            "reload the messages and try again",
            head=exc.head,
            expected=exc.expected,
        ) from None
    if isinstance(started, QueuedRun):
        if stream and started.steered and started.behind_run_id is not None:
            # The steered run's message, whole: the steering part shows where it landed.
            return await stream_run(request, session_id, started.behind_run_id, replay_message=True)
        if stream:
            return await stream_queued(request, session_id, started.seq)
        return json_response(queued_json(started), 202)
    if stream:
        return await stream_run(request, session_id, started.run_id)
    return json_response(
        {"status": "started", "run_id": started.run_id, "offset": started.offset}, 202
    )


def queued_json(queued: QueuedRun) -> dict[str, Any]:
    """A queued prompt's answer: its seq in the log (stream from `offset` to see its turn
    start), its place in the queue, and what it waits behind."""
    return {
        "status": "steered" if queued.steered else "queued",
        "run_id": None,
        "offset": queued.seq - 1,
        "queued_seq": queued.seq,
        "position": queued.position,
        "behind_run_id": queued.behind_run_id,
    }


def refuse_bad_prompt(prompt: str, *, with_files: bool = False) -> None:
    """400 `invalid_prompt` for a blank prompt (unless files go with it) or one over
    MAX_PROMPT_CHARS."""
    if not with_files and not prompt.strip(" \t\r\n"):
        raise ApiError(400, "invalid_prompt", "the run needs a non-empty prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(
            400, "invalid_prompt", f"the prompt is longer than {MAX_PROMPT_CHARS} characters"
        )


async def continue_with_answers(
    request: web.Request,
    session_id: str,
    answers: list[tuple[str, bool, str | None]],
    *,
    stream: bool,
) -> web.StreamResponse:
    """The decision carried in useChat's messages: record each answer (once; a different
    second answer is 409), then continue the turn and stream it, continuing the message."""
    run_id, started, sent_through = await record_answers(request, session_id, answers)
    if stream:
        return await stream_run(request, session_id, run_id, sent_through=sent_through)
    offset = started.offset if started is not None else None
    return json_response({"run_id": run_id, "offset": offset}, 202)


async def record_answers(
    request: web.Request, session_id: str, answers: list[tuple[str, bool, str | None]]
) -> tuple[str, StartedRun | None, int]:
    """Record `answers` (approval id, approved, reason) and continue the turn: the run that
    acts on them, the continuation if one started now, and the seq its stream's client has
    seen up to. 409 `nothing_to_continue` when they were already acted on."""
    store = request.app[STORE]
    await live_head(store, session_id)
    given = [
        ApprovalAnswer(approval_id, approved, reason, responder_of(request))
        for approval_id, approved, reason in answers
    ]
    # The last answer is recorded with the run that continues (one append, see
    # transport/http/approvals.py); every answer is then confirmed against the log.
    started = await continue_turn(request.app, session_id, given[-1]) if given else None
    answered_at = []
    for each in given:
        recorded = await record_answer(
            store,
            session_id,
            each.approval_id,
            approved=each.approved,
            reason=each.reason,
            responder=each.responder,
        )
        answered_at.append(recorded.seq)
    if started is None:
        # Written alone (a run held the lease): continue once it lets go, unless it did.
        started = await request.app[AGENT_RUNS].continue_after_answer(session_id)
    run_id = started.run_id if started is not None else None
    # A run still in its grace goes on with the answer: the client has its stream up to the
    # approval request (that stream ended there), so it gets the rest.
    sent_through = 0 if run_id is not None else min(answered_at) - 1
    if run_id is None:
        run_id = await request.app[AGENT_RUNS].active_run(session_id)
    if run_id is None:
        raise ApiError(
            409, "nothing_to_continue", "those approvals were already acted on; nothing waits"
        )
    return run_id, started, sent_through


class CancelBody(msgspec.Struct):
    """`{}`, or `{"clear_queue": true}`: the prompts queued behind the run are dropped too
    (by default they go on, one turn each, once it has ended)."""

    clear_queue: bool = False


async def cancel_run(request: web.Request) -> web.Response:
    body = await read_body(request, CancelBody, allow_empty=True)
    session_id = request.match_info["session_id"]
    run_id = request.match_info["run_id"]
    await live_head(request.app[STORE], session_id)  # 404 for an unknown session
    runs = request.app[AGENT_RUNS]
    # Cleared before the cancel: the run's end then finds nothing to start.
    cleared = await runs.clear_queue(session_id) if body.clear_queue else 0
    # Answered once the run's terminal event is in the log, or, if its CLI is still stopping
    # when the (bounded) wait ends, saying so: never "cancelled" without confirmation.
    ended = await runs.cancel(session_id, run_id)
    answer: dict[str, Any] = {"run_id": run_id, "status": "cancelled" if ended else "stopping"}
    if body.clear_queue:
        answer["queue_cleared"] = cleared
    return json_response(answer, 202)


async def resume_stream(request: web.Request) -> web.StreamResponse:
    """204 when no run is active or it waits on an approval, else the active run replayed
    from its start, then live.
    The active run is always on the current branch: after a regenerate or an edit, it is the
    run that answers again, and the answer it replaced is never replayed. Prompts left queued
    with nothing running (a graceful shutdown cancelled the run they waited on) start their
    turn now, and it is that turn that is streamed."""
    session_id = request.match_info["session_id"]
    await live_head(request.app[STORE], session_id)
    runs = request.app[AGENT_RUNS]
    run_id = await runs.active_run(session_id)
    if run_id is None:
        stranded = await runs.start_stranded_queue(session_id)
        run_id = None if stranded is None else stranded.run_id
    if run_id is None:
        return web.Response(status=204)
    if (await latest_approvals(request.app[STORE], session_id)).pending():
        # The run waits on a person (its grace before it defers the call): its UI stream ends
        # at the request, so there is nothing to resume, and GET /messages already shows the
        # request. A replay here would also rebuild the message from empty, overwriting an
        # answer the page gave meanwhile, which useChat then never sends.
        return web.Response(status=204)
    # A run that continues earlier ones after approvals replays their message too: the
    # resumed client rebuilds it from empty.
    return await stream_run(request, session_id, run_id, replay_message=True)


async def stream_queued(
    request: web.Request, session_id: str, queued_seq: int
) -> web.StreamResponse:
    """A queued prompt's UI message stream: keep-alive comments while it waits, then its turn
    streamed like any run's, from the `run_started` that answers it. A prompt dropped from
    the queue (a stop that cleared it) gets an empty message: `start`, `finish`, `[DONE]`."""
    app = request.app
    store = app[STORE]
    settings = app[SETTINGS]
    timeout = settings.sse_write_timeout_seconds
    run_id = None
    try:
        async with store.subscribe(session_id) as wakeup:
            last = queued_seq
            response: web.StreamResponse | None = None
            while run_id is None:
                page = await store.read(session_id, after=last, limit=1000)
                for recorded in page:
                    event = recorded.event
                    if isinstance(event, RunStarted) and event.queued_seq == queued_seq:
                        run_id = event.run_id
                        break
                    if isinstance(event, QueueCleared) and event.through_seq >= queued_seq:
                        run_id = ""
                        break
                if page:
                    last = page[-1].seq
                    continue
                if app[SHUTDOWN].is_set():
                    break
                if not await wakeup.wait(settings.sse_keepalive_seconds):
                    if response is None:
                        response = web.StreamResponse(status=200, headers=UI_STREAM_HEADERS)
                        await response.prepare(request)
                    await send(request, response, KEEPALIVE, timeout)
    except ClientGone:
        return response or web.StreamResponse()
    if run_id:
        return await stream_run(request, session_id, run_id, response=response)
    if response is None:
        response = web.StreamResponse(status=200, headers=UI_STREAM_HEADERS)
        await response.prepare(request)
    with contextlib.suppress(ClientGone):
        ended = encode_sse({"type": "start"}) + encode_sse({"type": "finish"}) + DONE
        await send(request, response, ended, timeout)
        await response.write_eof()
    return response


async def message_runs(store: EventStore, session_id: str, run_id: str) -> tuple[int, list[str]]:
    """Where the message `run_id` writes begins: the seq of the `run_started` of the first
    run of its chain (runs continued after approvals share one message), and the runs before
    `run_id` in that chain, oldest first. Found through the run index, one run at a time."""
    chain: list[str] = []
    current = run_id
    while True:
        indexed = await store.run(session_id, current)
        if indexed is None:
            return 1, chain  # not indexed: read the session from its start
        [started] = await store.read(session_id, after=indexed.started_seq - 1, limit=1)
        event = started.event
        if not isinstance(event, RunStarted) or event.continues_run_id is None:
            return indexed.started_seq, chain
        if event.continues_run_id in chain or len(chain) >= 1000:
            return 1, chain
        chain.insert(0, event.continues_run_id)
        current = event.continues_run_id


# How a stream that stops for an approval ends: the step's calls wait on the person.
AWAITING_ANSWER = {"type": "finish", "finishReason": "tool-calls"}


def note_approvals(chunk: dict[str, Any], waiting: set[str]) -> bool:
    """Keep `waiting` up to date with the approvals `chunk` asks or answers; always True."""
    if chunk["type"] == "tool-approval-request":
        waiting.add(chunk["approvalId"])
    elif chunk["type"] == "tool-approval-response":
        waiting.discard(chunk["approvalId"])
    return True


async def stream_run(
    request: web.Request,
    session_id: str,
    run_id: str,
    *,
    replay_message: bool = False,
    sent_through: int = 0,
    response: web.StreamResponse | None = None,
) -> web.StreamResponse:
    """The run as UI message stream chunks, from its `start` to `[DONE]`. The encoder is fed
    the log from the run's `run_started` (found in the run index: the session's earlier runs
    are never read; for a run that continues others after approvals, from the first of them,
    whose calls it settles), then the live tail; keep-alives are SSE comments, because an
    unknown data chunk breaks the AI SDK's parser. `replay_message`: send the earlier runs'
    part of the message too (a resumed client rebuilds it from empty). `sent_through`: the
    client has the run's chunks of the events up to this seq already (the stream it answered
    an approval from): of those only `start` is sent again.

    The stream ends (`finish`) as soon as it has caught up with the log while an approval it
    showed waits: `useChat` sends nothing while it streams, so an open stream would hold the
    person's answer back until the run's grace ran out. An answer sent at once reaches the
    run during its grace, and its POST streams the rest of the run."""
    app = request.app
    store = app[STORE]
    settings = app[SETTINGS]
    shutdown = app[SHUTDOWN]
    timeout = settings.sse_write_timeout_seconds
    if response is None:  # else already prepared (a queued prompt's stream, waiting)
        response = web.StreamResponse(status=200, headers=UI_STREAM_HEADERS)
        await response.prepare(request)
    try:
        async with app[FEEDS].follow(session_id) as (_tail, waiter):
            first, chain = await message_runs(store, session_id, run_id)
            encoder = RunStreamEncoder(run_id, earlier=chain if replay_message else ())
            waiting: set[str] = set()  # approvals this stream showed, not yet answered
            last = first - 1
            while not encoder.closed:
                page = await store.read(session_id, after=last, limit=1000)
                if page:
                    last = page[-1].seq
                    out = b"".join(
                        encode_sse(chunk)
                        for recorded in page
                        for chunk in encoder.chunks_for(recorded)
                        if note_approvals(chunk, waiting)
                        and (recorded.seq > sent_through or chunk["type"] == "start")
                    )
                    if out:
                        await send(request, response, out, timeout)
                    continue
                if waiting:
                    await send(request, response, encode_sse(AWAITING_ANSWER) + DONE, timeout)
                    break
                if shutdown.is_set():
                    break
                if not await waiter.wait(settings.sse_keepalive_seconds):
                    await send(request, response, KEEPALIVE, timeout)
            if encoder.closed:
                await send(request, response, DONE, timeout)
    except ClientGone:
        return response
    except asyncio.CancelledError:
        ending = ending_of(request)
        if ending is None:
            raise
        # The AI SDK's error chunk: useChat shows it as the chat's error.
        frame = encode_sse({"type": "error", "errorText": ending.message}) + DONE
        return await finish_ended(request, response, frame, timeout)
    if request.transport is None or request.transport.is_closing():
        return response  # the client is gone: no end of body to write
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/sessions/{session_id}/runs", start_run)
    app.router.add_post("/v1/sessions/{session_id}/runs/{run_id}/cancel", cancel_run)
    app.router.add_get("/v1/sessions/{session_id}/stream", resume_stream)
