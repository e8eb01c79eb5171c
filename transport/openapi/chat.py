"""The chat route shaped for the AI SDK's `DefaultChatTransport`: send (always streamed) and
reconnect (transport/http/chat.py)."""

from __future__ import annotations

from typing import Any

from agentlog.transport.openapi.fragments import (
    SESSION_ID,
    returns_error,
    returns_json,
    takes_json,
)
from agentlog.transport.openapi.runs import CLEAR_QUEUE_BODY, INTERRUPT, STEER

UI_STREAM = {"description": "text/event-stream, x-vercel-ai-ui-message-stream: v1"}

CHAT_PATHS: dict[str, Any] = {
    "/v1/chat": {
        "post": {
            "summary": "Send useChat's message and stream the answer (an AI SDK UI message "
            "stream, whatever Accept says)",
            "description": "The body `DefaultChatTransport` sends: `id` is the session id; a "
            "session that does not exist yet is created with the server's default agent "
            "(with a session token, `id` must be that token's session). `messages` may hold "
            "the whole chat or only its last message: the log is the conversation. `trigger` "
            "and `messageId` regenerate or edit as on POST /v1/sessions/{session_id}/runs; a "
            "last assistant message carrying approval answers continues the turn. A message "
            "sent while the chat is busy (a run is active, an approval waits, or messages "
            "already wait) is queued in the log and answered by a turn of its own when the "
            "chat is free, in order: its stream is that turn's, held open with keep-alive "
            "comments until the turn starts (an empty message if a stop cleared the queue "
            "first). `interrupt: true` stops the active run and answers this message next; "
            "`steer: true` delivers it into the running turn, and the answer is that turn's "
            "message streamed, with a `steering-message` part where the turn received it.",
            "requestBody": takes_json(
                {
                    "type": "object",
                    "required": ["id"],
                    "anyOf": [
                        {"required": ["messages"]},
                        {
                            "required": ["trigger"],
                            "properties": {"trigger": {"const": "regenerate-message"}},
                        },
                    ],
                    "properties": {
                        "id": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
                            "description": "the chat's id, which is the session's",
                        },
                        "messages": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "object"},
                            "description": "useChat's UIMessage[]: the last user message is "
                            "the prompt, its `file` parts (components/schemas/FilePart) the "
                            "files sent with it",
                        },
                        "trigger": {
                            "type": "string",
                            "enum": ["submit-message", "regenerate-message"],
                        },
                        "messageId": {
                            "type": "string",
                            "description": "the message regenerated or edited",
                        },
                        "interrupt": INTERRUPT,
                        "steer": STEER,
                    },
                }
            ),
            "responses": {
                "200": UI_STREAM,
                "400": returns_error(
                    "the body is not valid, its last user message holds no text and no file "
                    "(`invalid_prompt`), or a file is not valid (`invalid_file`)"
                ),
                "403": returns_error("a session token for another session, or a read token"),
                "413": returns_error(
                    "a file, or the message's files together, over their limit "
                    "(`file_too_large`, `files_too_large`), or the body over its limit"
                ),
                "415": returns_error(
                    "a file's media type is not accepted (`unsupported_media_type`)"
                ),
                "404": returns_error("a session token's session does not exist"),
                "409": returns_error(
                    "a regenerate or edit while a run is active or an approval waits, or the "
                    "messages name a message set aside or taken (as on POST "
                    "/v1/sessions/{session_id}/runs)"
                ),
                "410": returns_error("the session was deleted"),
                "422": returns_error(
                    "nothing to regenerate, or the messages do not fit the conversation"
                ),
            },
        }
    },
    "/v1/chat/{session_id}/stream": {
        "get": {
            "summary": "Reconnect to the chat's active run (`useChat({ resume: true })`)",
            "parameters": [SESSION_ID],
            "responses": {
                "200": UI_STREAM,
                "204": {
                    "description": "nothing is running, the run waits on an approval, or "
                    "the chat does not exist yet"
                },
                "410": returns_error("the session was deleted"),
            },
        }
    },
    "/v1/chat/{session_id}/stop": {
        "post": {
            "summary": "Stop the chat's run; answers once it has ended",
            "description": "Keyed by the chat id: the client needs no run id. When it "
            "answers, the run's terminal event is in the log, its stream has shown the tool "
            "calls it stopped as ended and then closed, and the next send is not refused as "
            "`run_active`. Messages queued behind the run go on, one turn each, unless "
            "`clear_queue` is true. While tool approvals wait (and nothing runs), stop denies "
            "them (reason `stopped`, `status` `approvals_denied`): the turn that tells the agent "
            "runs (`run_id`), then the queue goes on. With nothing running or waiting it is no "
            "error (`run_id` null, `status` `idle`).",
            "parameters": [SESSION_ID],
            "requestBody": CLEAR_QUEUE_BODY,
            "responses": {
                "200": returns_json(
                    "the run has ended, or nothing was running",
                    {
                        "type": "object",
                        "required": ["run_id", "status"],
                        "properties": {
                            "run_id": {"type": ["string", "null"]},
                            "status": {
                                "type": "string",
                                "enum": ["stopped", "idle", "approvals_denied"],
                            },
                            "approvals_denied": {"type": "array", "items": {"type": "string"}},
                            "queue_cleared": {"type": "integer", "minimum": 0},
                        },
                    },
                ),
                "404": returns_error("unknown chat"),
                "410": returns_error("the session was deleted"),
            },
        }
    },
}
