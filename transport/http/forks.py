"""`POST /v1/sessions/{id}/fork {"at_seq", "id"?}`: a new session whose conversation is the
source's up to `at_seq` (agentlog.infra.sessions.forking), answered like session creation (201,
Location).

Who may fork: forking reads the source and creates a session, so it takes what creating one
takes: the API token (or an open server). A session token opens only its own session and
cannot create another, so it gets 403 here (agentlog.transport.middleware.auth), whatever its scope.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from agentlog.infra.sessions.forking import fork_session
from agentlog.infra.sessions.workspaces import directory_name
from agentlog.transport.http.request_parsing import read_body
from agentlog.transport.http.sessions import json_response, new_session_id, session_view
from agentlog.transport.keys import AGENT_RUNS, STORE
from agentlog.transport.middleware.errors import ApiError
from agentlog.transport.openapi.fragments import (
    SESSION_ID,
    returns_error,
    returns_json,
    takes_json,
)

FORK_ROUTE = "/v1/sessions/{session_id}/fork"


class ForkBody(msgspec.Struct, forbid_unknown_fields=True):
    # A float too, so `3.0` is taken as JSON Schema's "integer" takes it; a fraction is a 400.
    at_seq: int | float
    id: str | None = None


async def fork(request: web.Request) -> web.Response:
    source_id = request.match_info["session_id"]
    body = await read_body(request, ForkBody)
    if isinstance(body.at_seq, float) and not body.at_seq.is_integer():
        raise ApiError(400, "invalid_body", "at_seq must be an integer (a seq of the source)")
    new_id = new_session_id(body.id)
    workspace_root = request.app[AGENT_RUNS].workspace_root
    made = await fork_session(
        request.app[STORE],
        source_id,
        int(body.at_seq),
        new_id,
        # Where the fork's runs will work on this kind of host (its lines name it).
        cwd=str((workspace_root / directory_name(new_id)).resolve()),
    )
    view = await session_view(request, new_id)
    return json_response(
        view,
        200 if made.repeated else 201,
        headers={"Location": f"/v1/sessions/{new_id}"},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post(FORK_ROUTE, fork)


OPENAPI_PATHS: dict[str, Any] = {
    FORK_ROUTE: {
        "post": {
            "summary": "Fork the session at a seq: a new session with its conversation up to there",
            "description": (
                "The new session's log is the source's current branch up to `at_seq`, with its "
                "own seqs 1..k, then `session_forked`; its messages equal the source's as they "
                "were at `at_seq`, and its runs continue from there on any instance. The source "
                "is unchanged. The same request again (same `at_seq` and `id`) answers 200 "
                "with the fork it made."
            ),
            "parameters": [SESSION_ID],
            "requestBody": takes_json(
                {
                    "type": "object",
                    "required": ["at_seq"],
                    "properties": {
                        "at_seq": {"type": "integer", "minimum": 1},
                        "id": {
                            "type": ["string", "null"],
                            "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
                        },
                    },
                    "additionalProperties": False,
                }
            ),
            "responses": {
                "201": returns_json("the new session", {"$ref": "#/components/schemas/Session"}),
                "200": returns_json(
                    "made by the same request before", {"$ref": "#/components/schemas/Session"}
                ),
                "400": returns_error("invalid body or id"),
                "403": returns_error("a session token: forking creates a session"),
                "404": returns_error("unknown session"),
                "409": returns_error(
                    "at_seq is inside a run (`fork_inside_run`: the run and the seqs to fork "
                    "at instead) or a tool approval waits there (`fork_approval_pending`); or "
                    "the id is taken (`session_exists`), also by a deleted session, or a fork "
                    "of it is being written (`session_importing`)"
                ),
                "410": returns_error("the source was deleted (session_deleted)"),
                "422": returns_error("at_seq is not a seq of the source (`invalid_at_seq`)"),
                "503": returns_error(
                    "the fork's transcript was not written (`fork_incomplete`): repeat the "
                    "request with its `id`"
                ),
            },
        }
    }
}
