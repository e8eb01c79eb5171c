"""Tool approvals over HTTP: a person's answer to a call that waits for one.

`POST /v1/sessions/{id}/approvals/{approval_id}` `{"approved": bool, "reason"?: str}` records
`tool_approval_responded` once (the same answer again: 200 with the first one; a different
one: 409) and, when no run is active, starts the run that continues the turn (202 with its
`run_id`): the answer may come seconds or days later, to any instance. An answer that meets
the asking run still finishing is written alone, then waits for that run to let go of the
session and continues the turn itself, unless the run did (`continue_after_answer`)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from agentlog.domain.errors import ExpectedSeqMismatch, RunAlreadyActive
from agentlog.domain.ports.agent_runs import StartedRun
from agentlog.infra.sessions.approval_answers import (
    ApprovalAnswer,
    RecordedAnswer,
    record_answer,
)
from agentlog.infra.sessions.tombstone import live_head
from agentlog.transport.http.request_parsing import read_body
from agentlog.transport.http.sessions import json_response
from agentlog.transport.keys import AGENT_RUNS, STORE
from agentlog.transport.middleware.auth import session_grant
from agentlog.transport.middleware.errors import ApiError

MAX_REASON_CHARS = 10_000
# Appends (an external event, a dying run's last write) that move the log under the decision.
_ATTEMPTS = 5


class AnswerBody(msgspec.Struct, forbid_unknown_fields=True):
    approved: bool
    reason: str | None = None


async def answer_approval(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    approval_id = request.match_info["approval_id"]
    body = await read_body(request, AnswerBody)
    if body.reason is not None and len(body.reason) > MAX_REASON_CHARS:
        raise ApiError(
            400, "invalid_reason", f"the reason is longer than {MAX_REASON_CHARS} characters"
        )
    store = request.app[STORE]
    await live_head(store, session_id)  # 404 for an unknown session
    given = ApprovalAnswer(
        approval_id, approved=body.approved, reason=body.reason, responder=responder_of(request)
    )
    # First the answer with the run that acts on it, in one append (nothing is written when
    # no run starts); then the answer alone, or the one the log holds, for the response.
    started = await continue_turn(request.app, session_id, given)
    recorded = await record_answer(
        store,
        session_id,
        approval_id,
        approved=given.approved,
        reason=given.reason,
        responder=given.responder,
    )
    if started is None:
        # Written alone: the run that held the lease may have looked for answers before this
        # one was written. Look again now (it waits for a holder that is finishing).
        started = await request.app[AGENT_RUNS].continue_after_answer(session_id)
    return json_response(answer_json(recorded, started), 202 if started is not None else 200)


def responder_of(request: web.Request) -> str | None:
    """Who answered, as far as the request's credentials say: a session token's subject when
    it names one, else that a session token (and its scope) answered; None for the API token
    or no token (nothing names a person)."""
    grant = session_grant(request)
    if grant is None:
        return None
    subject = getattr(grant, "subject", None)
    return str(subject) if subject else f"session token ({grant.scope})"


async def continue_turn(
    app: web.Application, session_id: str, given: ApprovalAnswer | None = None
) -> StartedRun | None:
    """Start the run that acts on the answers, with `given` recorded in the same append,
    unless a run is active (it reads the answer from the log itself, or its runner continues
    when it ends) or an approval still waits; then nothing is written. The log moving under
    the decision is retried, then left to `record_answer`."""
    for _ in range(_ATTEMPTS):
        try:
            return await app[AGENT_RUNS].continue_after_approval(session_id, given)
        except RunAlreadyActive:
            return None
        except ExpectedSeqMismatch:
            continue
    return None


def answer_json(recorded: RecordedAnswer, started: StartedRun | None) -> dict[str, Any]:
    response = recorded.response
    return {
        "approval_id": response.approval_id,
        "tool_call_id": response.tool_call_id,
        "approved": response.approved,
        "reason": response.reason,
        "responder": response.responder,
        "seq": recorded.seq,
        "run": None if started is None else {"run_id": started.run_id, "offset": started.offset},
    }


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/sessions/{session_id}/approvals/{approval_id}", answer_approval)
