"""Runs: start one (or answer from an earlier message), answer the approval a run waits on
(which may continue the turn), cancel one, resume its stream."""

from __future__ import annotations

from typing import Any

from agentlog.transport.openapi.fragments import (
    RUN_ID,
    SESSION_ID,
    path_parameter,
    returns_error,
    returns_json,
    takes_json,
)

INTERRUPT: dict[str, Any] = {
    "type": "boolean",
    "default": False,
    "description": "sent while a run is active: cancel it (`run_cancelled`, reason "
    "`interrupted`) and answer this prompt next, before prompts queued earlier",
}

STEER: dict[str, Any] = {
    "type": "boolean",
    "default": False,
    "description": "sent while a run is active: deliver the prompt into the running turn at "
    "its next step boundary (`steering_delivered`, a `steering-message` part); it gets a turn "
    "of its own if the turn ends first. Not with `interrupt`",
}

CLEAR_QUEUE_BODY = takes_json(
    {
        "type": "object",
        "properties": {
            "clear_queue": {
                "type": "boolean",
                "default": False,
                "description": "drop the prompts queued in the session too (`queue_cleared`)",
            }
        },
    },
    description='`{}`, or `{"clear_queue": true}`',
)

STARTED_OR_QUEUED: dict[str, Any] = {
    "type": "object",
    "required": ["status", "run_id", "offset"],
    "properties": {
        "status": {"enum": ["started", "queued", "steered"]},
        "run_id": {
            "type": ["string", "null"],
            "description": "the run started; null when queued",
        },
        "offset": {
            "type": "integer",
            "description": "stream the session's events from here to see the run (or the "
            "queued prompt, then its turn)",
        },
        "queued_seq": {"type": "integer", "description": "queued: its `prompt_queued`'s seq"},
        "position": {"type": "integer", "minimum": 1, "description": "queued: 1 goes next"},
        "behind_run_id": {
            "type": ["string", "null"],
            "description": "queued: the run it waits behind; null behind a waiting approval",
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
            "names the prompt's message by it, as the client does. Sent while the session is "
            "busy (a run is active, a tool approval waits, or prompts already wait), a prompt "
            "is queued in the log (`prompt_queued`) and starts its own turn when the session "
            "is free, in order: 202 with `status: queued`, its `queued_seq` and `position`; "
            "streamed, the answer is that turn's stream, held with keep-alive comments until "
            "it starts. `interrupt: true` cancels the active run, and the prompt goes first; "
            "`steer: true` hands it to the running turn (`status: steered`). "
            "A regenerate or edit is not queued: 409 `run_active` while a run is active.",
            "parameters": [SESSION_ID],
            "requestBody": takes_json(
                {
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
                        "files": {
                            "type": "array",
                            "maxItems": 20,
                            "items": {"$ref": "#/components/schemas/FilePart"},
                            "description": "files sent with `prompt` (with `messages`: the "
                            "last user message's `file` parts instead); the model receives "
                            "them as content blocks, `run_started.files` names them, GET "
                            "/messages shows them as `file` parts",
                        },
                        "interrupt": INTERRUPT,
                        "steer": STEER,
                    },
                }
            ),
            "responses": {
                "202": returns_json(
                    "started (`status: started`), or queued behind the active run, a waiting "
                    "approval or earlier queued prompts (`status: queued`)",
                    STARTED_OR_QUEUED,
                ),
                "400": returns_error(
                    "the body or the prompt is not valid, the last user message's id is "
                    "not 1 to 200 letters, digits and `_ . : -` (`invalid_message_id`), or a "
                    "file is not a valid data: URL of its media type (`invalid_file`), or "
                    "names a file the session does not hold (`unknown_file`)"
                ),
                "404": returns_error("unknown session"),
                "413": returns_error(
                    "a file is over AGENTLOG_MAX_FILE_BYTES (`file_too_large`) or the "
                    "message's files together over AGENTLOG_MAX_MESSAGE_FILE_BYTES "
                    "(`files_too_large`), or the body over AGENTLOG_MAX_BODY_BYTES"
                ),
                "415": returns_error(
                    "a file's media type is not accepted (`unsupported_media_type`)"
                ),
                "409": returns_error(
                    "a regenerate or edit while a run is active (`run_active`, its run_id is "
                    "in the error) or a tool approval waits "
                    "(`approval_pending`), the message was set aside by an earlier "
                    "regenerate or edit (`message_off_branch`), the last user message's id "
                    "names another message of the branch (`message_id_taken`), or the "
                    "conversation changed while a regenerate or edit was planned "
                    "(`conversation_changed`, with `head` and `expected`)"
                ),
                "422": returns_error(
                    "no such message (`message_not_found`), nothing to regenerate yet "
                    "(`nothing_to_regenerate`), the message is not part of a turn "
                    "(`not_a_turn`), or the edited message cannot be placed on the current "
                    "branch (`messages_diverge`)"
                ),
                "500": returns_error(
                    "the session's agent function raised while building the run's options "
                    "(`agent_options_failed`, naming the agent); nothing was written"
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
                path_parameter("approval_id"),
            ],
            "requestBody": takes_json(
                {
                    "type": "object",
                    "required": ["approved"],
                    "properties": {
                        "approved": {"type": "boolean"},
                        "reason": {"type": "string", "maxLength": 10000},
                    },
                    "additionalProperties": False,
                }
            ),
            "responses": {
                "200": returns_json(
                    "recorded (or already recorded)",
                    {"$ref": "#/components/schemas/ApprovalAnswer"},
                ),
                "202": returns_json(
                    "recorded; the turn continues in `run`",
                    {"$ref": "#/components/schemas/ApprovalAnswer"},
                ),
                "400": returns_error("a malformed body"),
                "404": returns_error("unknown session or approval"),
                "409": returns_error("already answered differently"),
            },
        }
    },
    "/v1/sessions/{session_id}/runs/{run_id}/cancel": {
        "post": {
            "summary": "Cancel an active run",
            "description": "The prompts queued behind it go on, one turn each, once it has "
            "ended, unless `clear_queue` is true (`queue_cleared`: how many were dropped).",
            "parameters": [SESSION_ID, RUN_ID],
            "requestBody": CLEAR_QUEUE_BODY,
            "responses": {
                "202": returns_json(
                    "answered once the run's terminal event is in the log (cancelled), or when "
                    "its bounded wait ended with the run still stopping (stopping)",
                    {
                        "type": "object",
                        "properties": {
                            "run_id": {"type": "string"},
                            "status": {"enum": ["cancelled", "stopping"]},
                            "queue_cleared": {"type": "integer", "minimum": 0},
                        },
                    },
                ),
                "404": returns_error("unknown session or run"),
                "409": returns_error("the run is not active"),
            },
        }
    },
    "/v1/sessions/{session_id}/stream": {
        "get": {
            "summary": "Resume the active run as an AI SDK UI message stream (204 when none)",
            "parameters": [SESSION_ID],
            "responses": {
                "200": {"description": "text/event-stream, x-vercel-ai-ui-message-stream: v1"},
                "204": {"description": "no active run, or it waits on an approval"},
                "404": returns_error("unknown session"),
            },
        }
    },
}
