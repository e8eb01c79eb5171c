"""The AI SDK's own Chat (npm `ai` 7: `sendMessage`, `addToolApprovalResponse`, the automatic
send, its stream parser) approving and denying a tool call against a live server: the
decision travels in the next POST's `messages`, agentlog records it and continues the turn,
and the chat ends holding exactly the message `GET /messages` returns."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_ai_sdk_client import AiSdk, ai_sdk, assert_same_message, run_chat_script  # noqa: F401
from tests.e2e.test_runs_http import (  # noqa: F401 - fixtures
    all_events,
    create_session,
    get_json,
    http,
    servers,
    start,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

PUBLISH = '[scenario:approval] publish "hello world"'


def drive_chat(case: dict[str, Any]) -> dict[str, Any]:
    return run_chat_script("approval_chat.mjs", case, timeout=180)


@pytest.mark.parametrize("approved", [True, False])
async def test_use_chats_approval_flow_approves_or_denies_and_continues_the_message(
    ai_sdk: AiSdk,  # noqa: F811 - installs the pinned `ai`
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
    approved: bool,
) -> None:
    server = start(servers, tmp_path, {"AGENTLOG_APPROVAL_GRACE_SECONDS": "0.5"})
    sid = await create_session(http, server.url)
    case = {
        "base": server.url,
        "sessionId": sid,
        "prompt": PUBLISH,
        "approved": approved,
        "reason": "fine by me" if approved else "not this one",
    }
    result = await asyncio.to_thread(drive_chat, case)
    assert result["status"] == "ready", result["error"]
    # The decision went in the second POST's messages: the assistant's approval-responded part.
    first, second = result["requests"]
    assert first["trigger"] == "submit-message" and first["messages"][-1]["role"] == "user"
    answered = [
        p for p in second["messages"][-1]["parts"] if p.get("state") == "approval-responded"
    ]
    assert [p["approval"]["approved"] for p in answered] == [approved]

    messages = (await get_json(http, f"{server.url}/v1/sessions/{sid}/messages"))["messages"]
    # The chat holds GET /messages, ids included: its own id for the prompt is the log's.
    assert [(m["id"], m["role"]) for m in result["messages"]] == [
        (m["id"], m["role"]) for m in messages
    ]
    assert result["messages"][0] == messages[0]
    assert messages[0]["id"] == first["messages"][-1]["id"]
    assistant = messages[-1]
    chat_message = result["messages"][-1]
    assert chat_message["id"] == assistant["id"]
    assert_same_message(chat_message, json.loads(json.dumps(assistant), parse_int=float))
    part = next(p for p in chat_message["parts"] if p.get("toolName") == "mcp__demo__publish")
    assert part["state"] == ("output-available" if approved else "output-denied")
    assert part["approval"]["approved"] is approved
    # Before the answer the chat held the pending request, as the log did.
    asked = next(
        p for p in result["beforeAnswer"][-1]["parts"] if p.get("toolName") == "mcp__demo__publish"
    )
    assert asked["state"] == "approval-requested"

    events = await all_events(http, server.url, sid)
    assert sum(e["type"] == "tool_approval_responded" for e in events) == 1
    assert sum(e["type"] == "tool_call_succeeded" for e in events) == (1 if approved else 0)
    assert sum(e["type"] == "tool_call_denied" for e in events) == (0 if approved else 1)
