"""The HTTP API described as OpenAPI 3.1, served at /v1/openapi.json.

Written by hand next to the handlers; tests/e2e/test_openapi.py fails when a route is added
without being documented here, or documented without existing.
"""

from __future__ import annotations

from typing import Any

from agentlog.transport.http import admin as admin_api
from agentlog.transport.http import forks as fork_api
from agentlog.transport.http import metrics
from agentlog.transport.http import tokens as tokens_api
from agentlog.transport.keys import SETTINGS
from agentlog.transport.web import page as web_view
from aiohttp import web

ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SESSION_ID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}

COMPONENTS: dict[str, Any] = {
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    "additionalProperties": True,
                }
            },
        },
        "Event": {
            "type": "object",
            "description": "Envelope fields plus the event's own fields at the top level.",
            "required": ["seq", "position", "session_id", "time", "type", "run_id"],
            "properties": {
                "seq": {"type": "integer", "minimum": 1},
                "position": {"type": "integer", "minimum": 1},
                "session_id": {"type": "string"},
                "time": {"type": "string", "format": "date-time"},
                "type": {"type": "string"},
                "run_id": {"type": ["string", "null"]},
            },
            "additionalProperties": True,
        },
        "Session": {
            "type": "object",
            "required": ["id", "status", "head", "active_run"],
            "properties": {
                "id": {"type": "string"},
                "title": {"type": ["string", "null"]},
                "agent": {
                    "type": ["string", "null"],
                    "description": "the agent the session's runs use (AGENTLOG_AGENTS)",
                },
                "status": {"enum": ["idle", "running", "awaiting_approval", "failed", "abandoned"]},
                "head": {"type": "integer"},
                "active_run": {
                    "oneOf": [
                        {"type": "null"},
                        {"type": "object", "properties": {"run_id": {"type": "string"}}},
                    ]
                },
                "runs": {"type": "integer"},
                "tool_calls": {"type": "integer"},
                "usage": {
                    "type": "object",
                    "description": "tokens and cost over the session's runs, each counted once;"
                    " `scripted`: every counted run was the scripted model's (cost 0)",
                    "properties": {
                        "input_tokens": {"type": "integer"},
                        "output_tokens": {"type": "integer"},
                        "cache_read_input_tokens": {"type": "integer"},
                        "cache_creation_input_tokens": {"type": "integer"},
                        "cost_usd": {"type": "number"},
                        "runs": {"type": "integer"},
                        "scripted_runs": {"type": "integer"},
                        "scripted": {"type": "boolean"},
                    },
                },
                "created_at": {"type": "string", "format": "date-time"},
                "last_activity_at": {"type": "string", "format": "date-time"},
                "pending_approvals": {
                    "type": "array",
                    "description": "GET /v1/sessions/{id} only: approvals still unanswered",
                    "items": {"$ref": "#/components/schemas/PendingApproval"},
                },
            },
        },
        "PendingApproval": {
            "type": "object",
            "required": ["approval_id", "tool_call_id", "tool_name", "input"],
            "properties": {
                "approval_id": {"type": "string"},
                "tool_call_id": {"type": "string"},
                "tool_name": {"type": "string"},
                "input": {},
                "reason": {"type": ["string", "null"]},
                "run_id": {"type": ["string", "null"]},
                "requested_seq": {"type": "integer"},
            },
        },
        "ApprovalAnswer": {
            "type": "object",
            "required": ["approval_id", "tool_call_id", "approved", "seq", "run"],
            "properties": {
                "approval_id": {"type": "string"},
                "tool_call_id": {"type": "string"},
                "approved": {"type": "boolean"},
                "reason": {"type": ["string", "null"]},
                "responder": {"type": ["string", "null"]},
                "seq": {"type": "integer", "description": "the seq of the (first) answer"},
                "run": {
                    "description": "the run that continues the turn, when this answer started it",
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "properties": {
                                "run_id": {"type": "string"},
                                "offset": {"type": "integer"},
                            },
                        },
                    ],
                },
            },
        },
        "ExternalEvent": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["type", "name"],
                    "properties": {
                        "type": {"const": "custom"},
                        "name": {"type": "string", "minLength": 1, "maxLength": 100},
                        "data": {},
                    },
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "required": ["type", "tool_call_id"],
                    "properties": {
                        "type": {"const": "tool_output"},
                        "tool_call_id": {"type": "string"},
                        "output": {},
                        "is_error": {"type": "boolean", "default": False},
                    },
                    "additionalProperties": False,
                },
            ]
        },
    },
}

# Writes need `Content-Type: application/json` (415 otherwise), so even those that take no
# fields take a JSON object.
EMPTY_JSON_BODY: dict[str, Any] = {
    "required": True,
    "description": "any JSON object (`{}`); state-changing requests must be JSON",
    "content": {"application/json": {"schema": {"type": "object"}}},
}

OFFSET = {
    "name": "offset",
    "in": "query",
    "schema": {"type": "integer", "minimum": 0},
    "description": "Start after this seq (0 = from the start). Wins over Last-Event-ID.",
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
    "description": "The last seq the client saw; sent by EventSource on reconnect.",
}

PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Readiness: the database (and Redis when configured) answer",
            "security": [],
            "responses": {
                "200": {"description": "ok"},
                "503": {"description": "a dependency is down"},
            },
        }
    },
    "/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI"}},
        }
    },
    "/v1/sessions": {
        "post": {
            "summary": "Create a session",
            "requestBody": {
                "required": True,
                "description": "`{}` for a session with a generated id",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "id": {
                                    "type": ["string", "null"],
                                    "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
                                },
                                "title": {"type": ["string", "null"]},
                                "metadata": {"type": "object"},
                                "agent": {
                                    "type": ["string", "null"],
                                    "description": "a name of the server's agents; "
                                    "default: its default agent",
                                },
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "201": _json("created", {"$ref": "#/components/schemas/Session"}),
                "400": _error("invalid body or id"),
                "409": _error("the id is taken"),
                "422": _error("unknown_agent: the server hosts no agent of that name"),
            },
        },
        "get": {
            "summary": "List sessions, paged by id",
            "parameters": [
                {"name": "after", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            ],
            "responses": {"200": {"description": "a page of sessions"}},
        },
    },
    "/v1/sessions/{session_id}": {
        "get": {
            "summary": "A session's status, head and active run",
            "parameters": [SESSION_ID],
            "responses": {
                "200": _json("the session", {"$ref": "#/components/schemas/Session"}),
                "404": _error("unknown session"),
                "410": _error("the session was deleted (session_deleted)"),
            },
        },
        "delete": {
            "summary": "Delete the session: cancel its run, remove its content, keep a tombstone",
            "parameters": [SESSION_ID],
            "responses": {
                "200": _json(
                    "deleted",
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "deleted": {"const": True},
                            "tombstone_seq": {"type": "integer"},
                            "events_removed": {"type": "integer"},
                        },
                    },
                ),
                "404": _error("unknown session"),
                "410": _error("already deleted (session_deleted)"),
            },
        },
    },
    "/v1/sessions/{session_id}/events": {
        "post": {
            "summary": "Append external events (custom data, a waiting tool call's output)",
            "parameters": [
                SESSION_ID,
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "description": "the client's own key space, bound to the request body",
                    "schema": {"type": "string", "pattern": "^[!-~]([ -~]{0,148}[!-~])?$"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["events"],
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {"$ref": "#/components/schemas/ExternalEvent"},
                                },
                                "expected_offset": {"type": ["integer", "null"], "minimum": 0},
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    "appended (or the first result for a repeated Idempotency-Key)",
                    {
                        "type": "object",
                        "properties": {
                            "seqs": {"type": "array", "items": {"type": "integer"}},
                            "head": {"type": "integer"},
                        },
                    },
                ),
                "400": _error("invalid body or Idempotency-Key"),
                "404": _error("unknown session"),
                "409": _error(
                    "expected_offset mismatch (with head), tool call not waiting, or a tool call "
                    "the active run executes itself (tool_call_owned_by_run)"
                ),
                "413": _error("body or event too large"),
                "422": _error("the Idempotency-Key was used for a different body"),
            },
        },
        "get": {
            "summary": "Read events after an offset: a JSON page, or SSE (replay then live)",
            "description": (
                "With `Accept: text/event-stream` the response is Server-Sent Events: each event "
                "is `id: <seq>`, `event: <type>`, `data: <event JSON>`; it replays everything "
                "after the offset and then stays live (`live=false` ends once caught up), with "
                "keep-alive comments. Otherwise a JSON page."
            ),
            "parameters": [
                SESSION_ID,
                OFFSET,
                LAST_EVENT_ID,
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 5000},
                },
                {"name": "live", "in": "query", "schema": {"type": "boolean", "default": True}},
            ],
            "responses": {
                "200": {
                    "description": "a page, or an event stream",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "events": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Event"},
                                    },
                                    "next_offset": {"type": "integer"},
                                    "head": {"type": "integer"},
                                },
                            }
                        },
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                "400": _error(
                    "offset or Last-Event-ID is not an integer, negative, or beyond the head"
                ),
                "404": _error("unknown session"),
            },
        },
    },
}

RUN_PATHS: dict[str, Any] = {
    "/v1/sessions/{session_id}/runs": {
        "post": {
            "summary": "Start an agent run (one turn); with Accept: text/event-stream, stream it",
            "description": "A run can answer from an earlier point of the conversation: "
            "`from_message_id` names a message of the current branch (a user message or its "
            "answer: the same point); the conversation goes back to just before that turn "
            "(`conversation_rewound`) and the run answers with `prompt`, or the turn's own "
            "prompt when none is given. useChat's own body is accepted too: `messages` (the "
            "last user message is the prompt), `trigger: regenerate-message` with `messageId` "
            "(the answer to regenerate; absent: the last one), and `submit-message` with "
            "`messageId` naming an edited earlier user message. The id of the last user "
            "message of `messages` is recorded (`run_started.user_message_id`): GET /messages "
            "names the prompt's message by it, as the client does.",
            "parameters": [SESSION_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            # A prompt, or a message to answer from again with its own prompt,
                            # or useChat's regenerate (which sends no prompt).
                            "anyOf": [
                                {"required": ["prompt"]},
                                {"required": ["from_message_id"]},
                                {
                                    "required": ["trigger"],
                                    "properties": {"trigger": {"const": "regenerate-message"}},
                                },
                            ],
                            "properties": {
                                # Not only spaces, tabs and newlines (nor over 100,000 chars).
                                "prompt": {
                                    "type": "string",
                                    "pattern": "[^ \\t\\r\\n]",
                                    "maxLength": 100000,
                                },
                                "from_message_id": {
                                    "type": "string",
                                    "minLength": 1,
                                    "description": "a message id of GET /messages: the run "
                                    "replaces that message's turn (regenerate, or edit with "
                                    "`prompt`)",
                                },
                                "trigger": {
                                    "type": "string",
                                    "enum": ["submit-message", "regenerate-message"],
                                    "description": "useChat's trigger",
                                },
                                "messageId": {
                                    "type": "string",
                                    "description": "useChat: the message regenerated or edited",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "202": _json(
                    "started",
                    {
                        "type": "object",
                        "properties": {"run_id": {"type": "string"}, "offset": {"type": "integer"}},
                    },
                ),
                "400": _error(
                    "the body or the prompt is not valid, or the last user message's id is "
                    "not 1 to 200 letters, digits and `_ . : -` (`invalid_message_id`)"
                ),
                "404": _error("unknown session"),
                "409": _error(
                    "a run is active (its run_id is in the error), a tool approval waits "
                    "(`approval_pending`), the message was set aside by an earlier "
                    "regenerate or edit (`message_off_branch`), the last user message's id "
                    "names another message of the branch (`message_id_taken`), or the "
                    "conversation changed while a regenerate or edit was planned "
                    "(`conversation_changed`, with `head` and `expected`)"
                ),
                "422": _error(
                    "no such message (`message_not_found`), nothing to regenerate yet "
                    "(`nothing_to_regenerate`), the message is not part of a turn "
                    "(`not_a_turn`), or the edited message cannot be placed on the current "
                    "branch (`messages_diverge`)"
                ),
            },
        }
    },
    "/v1/sessions/{session_id}/approvals/{approval_id}": {
        "post": {
            "summary": "Answer a tool approval: the call then runs or is refused, exactly once",
            "description": "Exactly one answer per approval: the same answer again is 200 with "
            "the first one; a different one is 409. When no run is active the answer starts "
            "the run that continues the turn (202); a run still waiting in its grace picks "
            "the answer up itself (200).",
            "parameters": [
                SESSION_ID,
                {
                    "name": "approval_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["approved"],
                            "properties": {
                                "approved": {"type": "boolean"},
                                "reason": {"type": "string", "maxLength": 10000},
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    "recorded (or already recorded)",
                    {"$ref": "#/components/schemas/ApprovalAnswer"},
                ),
                "202": _json(
                    "recorded; the turn continues in `run`",
                    {"$ref": "#/components/schemas/ApprovalAnswer"},
                ),
                "400": _error("a malformed body"),
                "404": _error("unknown session or approval"),
                "409": _error("already answered differently"),
            },
        }
    },
    "/v1/sessions/{session_id}/runs/{run_id}/cancel": {
        "post": {
            "summary": "Cancel an active run",
            "parameters": [SESSION_ID, RUN_ID],
            "requestBody": EMPTY_JSON_BODY,
            "responses": {
                "202": {"description": "cancelling"},
                "404": _error("unknown session or run"),
                "409": _error("the run is not active"),
            },
        }
    },
    "/v1/sessions/{session_id}/stream": {
        "get": {
            "summary": "Resume the active run as an AI SDK UI message stream (204 when none)",
            "parameters": [SESSION_ID],
            "responses": {
                "200": {"description": "text/event-stream, x-vercel-ai-ui-message-stream: v1"},
                "204": {"description": "no active run"},
                "404": _error("unknown session"),
            },
        }
    },
}


PROJECTION_PATHS: dict[str, Any] = {
    "/v1/sessions/{session_id}/messages": {
        "get": {
            "summary": "The session's messages in the AI SDK UIMessage shape (hydrated when idle)",
            "parameters": [SESSION_ID],
            "responses": {
                "200": _json(
                    "messages",
                    {
                        "type": "object",
                        "properties": {
                            "session_id": {"type": "string"},
                            "messages": {"type": "array", "items": {"type": "object"}},
                            "head": {"type": "integer"},
                            "run_active": {"type": "boolean"},
                        },
                    },
                ),
                "404": _error("unknown session"),
            },
        }
    },
    "/v1/admin/projections/rebuild": {
        "post": {
            "summary": "Drop and replay the projections from the log (all, or one session)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "session_id": {"type": ["string", "null"], "minLength": 1}
                            },
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "200": {"description": "rebuilt: events, sessions, seconds, position"},
                "400": _error("invalid body"),
                "404": _error("unknown session"),
            },
        }
    },
}

ALL_PATHS = {
    **PROJECTION_PATHS,
    **PATHS,
    **RUN_PATHS,
    **admin_api.OPENAPI_PATHS,
    **tokens_api.OPENAPI_PATHS,
    **fork_api.OPENAPI_PATHS,
    **metrics.OPENAPI_PATHS,
    **web_view.OPENAPI_PATHS,
}


def document(app: web.Application) -> dict[str, Any]:
    """The document for the routes this app actually has, with the security it actually has:
    no scheme at all when no token is configured (every route is open then)."""
    settings = app[SETTINGS]
    registered = {
        resource.canonical
        for resource in app.router.resources()
        if resource.canonical.startswith("/")
    }
    paths = {
        path: {
            method: _secured(path, method, operation, settings)
            for method, operation in methods.items()
        }
        for path, methods in ALL_PATHS.items()
        if path in registered
    }
    components = dict(COMPONENTS)
    schemes: dict[str, Any] = {}
    if settings.api_token or settings.admin_token:
        schemes["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "AGENTLOG_API_TOKEN, AGENTLOG_ADMIN_TOKEN for /v1/admin, or a "
            "session token (agentlog token) for its own session",
        }
    if settings.api_token:
        schemes["accessToken"] = {
            "type": "apiKey",
            "in": "query",
            "name": "access_token",
            "description": "a read-scoped session token, for EventSource",
        }
    if schemes:
        components["securitySchemes"] = schemes
    else:
        components.pop("securitySchemes", None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "agentlog", "version": "0.1.0"},
        "paths": paths,
        "components": components,
    }


def _secured(path: str, method: str, operation: dict[str, Any], settings: Any) -> dict[str, Any]:
    """The operation with its security requirement and every error it may answer."""
    operation = {**operation, "responses": {**operation["responses"], "default": _error("error")}}
    public = operation.get("security") == [] or not path.startswith("/v1/")
    if path.startswith("/v1/admin/"):
        guarded = settings.admin_token or settings.api_token
    else:
        guarded = settings.api_token
    if public or not guarded:
        operation["security"] = []
    elif method == "get" and "{session_id}" in path and settings.api_token:
        operation["security"] = [{"bearer": []}, {"accessToken": []}]
    else:
        operation["security"] = [{"bearer": []}]
    return operation


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app))
