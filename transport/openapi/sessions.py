"""Sessions: create, list, read and delete them; append to and read their event log."""

from __future__ import annotations

from typing import Any

from agentlog.transport.openapi.fragments import (
    SESSION_ID,
    returns_error,
    returns_json,
    takes_json,
)

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

SESSION_PATHS: dict[str, Any] = {
    "/v1/sessions": {
        "post": {
            "summary": "Create a session",
            "requestBody": takes_json(
                {
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
                },
                description="`{}` for a session with a generated id",
            ),
            "responses": {
                "201": returns_json("created", {"$ref": "#/components/schemas/Session"}),
                "400": returns_error("invalid body or id"),
                "409": returns_error(
                    "the id is taken, or a fork or import of it is being written "
                    "(session_importing)"
                ),
                "422": returns_error("unknown_agent: the server hosts no agent of that name"),
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
                "200": returns_json("the session", {"$ref": "#/components/schemas/Session"}),
                "404": returns_error("unknown session"),
                "410": returns_error("the session was deleted (session_deleted)"),
            },
        },
        "delete": {
            "summary": "Delete the session: cancel its run, remove its content, keep a tombstone",
            "parameters": [SESSION_ID],
            "responses": {
                "200": returns_json(
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
                "404": returns_error("unknown session"),
                "409": returns_error(
                    "its run is still stopping after the cancel's wait (run_active)"
                ),
                "410": returns_error("already deleted (session_deleted)"),
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
            "requestBody": takes_json(
                {
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
            ),
            "responses": {
                "200": returns_json(
                    "appended (or the first result for a repeated Idempotency-Key)",
                    {
                        "type": "object",
                        "properties": {
                            "seqs": {"type": "array", "items": {"type": "integer"}},
                            "head": {"type": "integer"},
                        },
                    },
                ),
                "400": returns_error("invalid body or Idempotency-Key"),
                "404": returns_error("unknown session"),
                "409": returns_error(
                    "expected_offset mismatch (with head), tool call not waiting, a tool call "
                    "the active run executes itself (tool_call_owned_by_run), or a fork or "
                    "import of the session is being written (session_importing)"
                ),
                "413": returns_error("body or event too large"),
                "422": returns_error("the Idempotency-Key was used for a different body"),
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
                "400": returns_error(
                    "offset or Last-Event-ID is not an integer, negative, or beyond the head"
                ),
                "404": returns_error("unknown session"),
            },
        },
    },
}
