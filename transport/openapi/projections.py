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
            "parameters": [SESSION_ID],
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
                        },
                    },
                ),
                "404": returns_error("unknown session"),
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
