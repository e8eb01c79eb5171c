"""The projections: a session's messages, and rebuilding them from the log."""

from __future__ import annotations

from typing import Any

from agentlog.transport.openapi.fragments import (
    SESSION_ID,
    returns_error,
    returns_json,
    takes_json,
)

PROJECTION_PATHS: dict[str, Any] = {
    "/v1/sessions/{session_id}/messages": {
        "get": {
            "summary": "The session's messages in the AI SDK UIMessage shape (hydrated when idle)",
            "description": (
                "Without `limit` and `before`, every message of the current branch. With either, "
                "one page: the newest `limit` messages older than the message `before` (all of "
                "them when `before` is absent), in chronological order, and `before`: the id to "
                "pass for the next older page, null once the page starts the conversation."
            ),
            "parameters": [
                SESSION_ID,
                {
                    "name": "limit",
                    "in": "query",
                    "description": "messages per page (default 100 when `before` alone is sent)",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                {
                    "name": "before",
                    "in": "query",
                    "description": "a message id of the current branch: the page ends before it",
                    "schema": {"type": "string", "minLength": 1},
                },
            ],
            "responses": {
                "200": returns_json(
                    "messages",
                    {
                        "type": "object",
                        "properties": {
                            "session_id": {"type": "string"},
                            "messages": {"type": "array", "items": {"type": "object"}},
                            "head": {"type": "integer"},
                            "run_active": {"type": "boolean"},
                            "before": {
                                "type": ["string", "null"],
                                "description": "paged only: the cursor of the next older page",
                            },
                        },
                    },
                ),
                "400": returns_error(
                    "limit not an integer in 1..1000 (invalid_limit), or before names no "
                    "message of the current branch (invalid_before)"
                ),
                "404": returns_error("unknown session"),
                "410": returns_error("the session was deleted (session_deleted)"),
            },
        }
    },
    "/v1/admin/projections/rebuild": {
        "post": {
            "summary": "Drop and replay the projections from the log (all, or one session)",
            "requestBody": takes_json(
                {
                    "type": "object",
                    "properties": {"session_id": {"type": ["string", "null"], "minLength": 1}},
                    "additionalProperties": False,
                }
            ),
            "responses": {
                "200": {"description": "rebuilt: events, sessions, seconds, position"},
                "400": returns_error("invalid body"),
                "404": returns_error("unknown session"),
            },
        }
    },
}
