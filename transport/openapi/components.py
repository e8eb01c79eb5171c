"""The schemas the operations refer to (`#/components/schemas/...`)."""

from __future__ import annotations

from typing import Any

COMPONENTS: dict[str, Any] = {
    "schemas": {
        "FilePart": {
            "type": "object",
            "description": "The AI SDK's FileUIPart: a file sent with the prompt (images "
            "png/jpeg/gif/webp, PDF, text/*; SVG is refused), at most "
            "AGENTLOG_MAX_FILE_BYTES each and AGENTLOG_MAX_MESSAGE_FILE_BYTES together.",
            "required": ["mediaType", "url"],
            "properties": {
                "type": {"const": "file"},
                "mediaType": {
                    "type": "string",
                    "pattern": "^(image/(png|jpeg|gif|webp)|application/pdf|text/[a-z0-9.+-]+)$",
                },
                "url": {
                    "type": "string",
                    "pattern": "^data:",
                    "description": "a data: URL (`data:<media type>;base64,<data>`), or the "
                    "url GET /messages gives a file of this session (an edit sends it back)",
                },
                "filename": {"type": "string"},
            },
        },
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
