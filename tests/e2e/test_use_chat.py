"""The chat routes (`POST /v1/chat`, `GET /v1/chat/{id}/stream`, `POST /v1/chat/{id}/stop`)
with the AI SDK's defaults: the real `Chat` with `DefaultChatTransport({ api: BASE +
'/v1/chat' })` and nothing else (plus the token header where tokens are on) sends, resumes
after a reload mid-stream, regenerates, edits and stops, and after each step holds what GET
/messages returns (tests/js/default_chat.mjs); an approval is answered at once, within the
run's grace (tests/js/approval_chat.mjs)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_ai_sdk_approvals import PUBLISH
from tests.e2e.test_ai_sdk_approvals import drive_chat as drive_approval_chat
from tests.e2e.test_ai_sdk_client import AiSdk, ai_sdk, assert_same_message, run_chat_script  # noqa: F401
from tests.e2e.test_rewind_http import REMEMBER_41
from tests.e2e.test_runs_http import (  # noqa: F401 - fixtures
    http,
    servers,
    start,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

SLOW = "[scenario:long-tool] Run the slow operation for 2 seconds"
LONG = "[scenario:long-tool] Run the slow operation for 120 seconds"
EDITED = "Please remember the number 43"


def drive_chat(case: dict[str, Any]) -> dict[str, Any]:
    return run_chat_script("default_chat.mjs", case)


def assert_chat_holds(chat: list[dict[str, Any]], server: list[dict[str, Any]]) -> None:
    """The chat's messages are GET /messages, ids and parts included: nothing duplicated or
    missing."""
    assert [(m["id"], m["role"]) for m in chat] == [(m["id"], m["role"]) for m in server]
    for mine, theirs in zip(chat, server, strict=True):
        if theirs["role"] == "assistant":
            assert_same_message(mine, theirs)
        else:
            assert mine == theirs


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


async def mint_write_token(client: aiohttp.ClientSession, base: str, chat_id: str) -> str:
    api = {"Authorization": "Bearer api-t"}
    async with client.post(f"{base}/v1/sessions", json={"id": chat_id}, headers=api) as response:
        assert response.status == 201, await response.text()
    async with client.post(
        f"{base}/v1/sessions/{chat_id}/tokens", json={"scope": "write"}, headers=api
    ) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["token"])


@pytest.mark.parametrize(
    ("tokens", "last_only"), [(False, False), (False, True), (True, True)], ids=str
)
async def test_use_chats_defaults_send_resume_mid_stream_and_regenerate(
    ai_sdk: AiSdk,  # noqa: F811 - installs the pinned `ai`
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
    tokens: bool,
    last_only: bool,
) -> None:
    env = {"AGENTLOG_API_TOKEN": "api-t", "AGENTLOG_TOKEN_SECRET": "s3cret"} if tokens else {}
    server = start(servers, tmp_path, env)
    chat_id = "chat-" + uuid.uuid4().hex  # unique: Redis is shared with every other test
    headers: dict[str, str] = {}
    if tokens:
        # With a session token the session exists first: the token is minted for it.
        headers = {"Authorization": "Bearer " + await mint_write_token(http, server.url, chat_id)}
    result = await asyncio.to_thread(
        drive_chat,
        {
            "base": server.url,
            "chatId": chat_id,
            "headers": headers,
            "lastOnly": last_only,
            "prompts": {"first": REMEMBER_41, "slow": SLOW, "edited": EDITED, "long": LONG},
        },
    )
    steps = {step["name"]: step for step in result["steps"]}
    for name, step in steps.items():
        assert (step["status"], step["error"]) == ("ready", None), name
        assert_chat_holds(step["chat"], step["server"])
    sent = steps["sent"]["server"]
    assert [m["role"] for m in sent] == ["user", "assistant"]
    assert text_of(sent[0]) == REMEMBER_41
    midway = steps["reloaded mid-stream"]["server"]
    assert [m["role"] for m in midway] == ["user", "assistant"] * 2
    assert "The slow operation is done" in text_of(midway[3])
    regenerated = steps["regenerated"]["server"]
    assert regenerated[:3] == midway[:3] and regenerated[3]["id"] != midway[3]["id"]
    assert "The slow operation is done" in text_of(regenerated[3])
    edited = steps["edited"]["server"]
    assert edited[:2] == regenerated[:2] and edited[2]["id"] == regenerated[2]["id"]
    assert text_of(edited[2]) == EDITED and edited[3]["id"] != regenerated[3]["id"]
    assert "remember the number 43" in text_of(edited[3])

    # Stopped: when POST /stop answered, the run had ended; the chat's stream showed the tool
    # ended, and the next send was not refused.
    answer = result["stopAnswer"]
    assert answer["status"] == 200 and answer["body"]["status"] == "stopped", answer
    stopped = steps["stopped"]["chat"][-1]
    assert stopped["id"] == answer["body"]["run_id"]
    [tool] = [p for p in stopped["parts"] if p["type"] in ("dynamic-tool", "tool-slow_op")]
    assert tool["state"] == "output-error", tool
    after = steps["sent after the stop"]["server"]
    assert len(after) == len(steps["stopped"]["server"]) + 2
    assert "remember the number 41" in text_of(after[-1])

    posts = [r for r in result["requests"] if r["method"] == "POST"]
    assert {r["url"] for r in posts} == {f"{server.url}/v1/chat"}
    # The reload resumed from the chat route, and the page loads found the run or nothing.
    gets = [r["url"] for r in result["requests"] if r["method"] == "GET"]
    assert set(gets) == {f"{server.url}/v1/chat/{chat_id}/stream"}
    if last_only:
        assert all(len(json.loads(r["body"])["messages"]) == 1 for r in posts)
    url = f"{server.url}/v1/sessions/{chat_id}/events?limit=5000"
    async with http.get(url, headers=headers) as response:
        events = (await response.json())["events"]
    finished = [e for e in events if e["type"] == "run_finished"]
    # send, the slow send (resumed, not run again), regenerate, edit, the send after the stop
    assert len(finished) == 5
    assert [e["run_id"] for e in events if e["type"] == "run_cancelled"] == [
        answer["body"]["run_id"]
    ]


@pytest.mark.parametrize("approved", [True, False])
async def test_an_approval_is_answered_within_the_grace_because_the_stream_ends_at_the_request(
    ai_sdk: AiSdk,  # noqa: F811 - installs the pinned `ai`
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
    approved: bool,
) -> None:
    """With a grace far longer than the test, useChat's automatic send still goes out at once
    (the stream ended at the approval request) and the run that asked uses the answer in its
    grace: one run, never deferred, and the chat holds GET /messages."""
    server = start(servers, tmp_path, {"AGENTLOG_APPROVAL_GRACE_SECONDS": "600"})
    chat_id = "chat-" + uuid.uuid4().hex
    case = {
        "base": server.url,
        "sessionId": chat_id,
        "prompt": PUBLISH,
        "approved": approved,
        "reason": "fine by me" if approved else "not this one",
        "chatRoute": True,
    }
    result = await asyncio.to_thread(drive_approval_chat, case)
    assert (result["status"], result["error"]) == ("ready", None)
    async with http.get(f"{server.url}/v1/sessions/{chat_id}/messages") as response:
        messages = (await response.json())["messages"]
    assert_chat_holds(result["messages"], json.loads(json.dumps(messages), parse_int=float))
    part = next(p for p in messages[-1]["parts"] if p.get("toolName") == "mcp__demo__publish")
    assert part["state"] == ("output-available" if approved else "output-denied")
    async with http.get(f"{server.url}/v1/sessions/{chat_id}/events?limit=5000") as response:
        events = (await response.json())["events"]
    assert [e["type"] for e in events if e["type"].startswith("run_")] == [
        "run_started",
        "run_finished",
    ]
    [finished] = [e for e in events if e["type"] == "run_finished"]
    assert finished.get("stop_reason") != "tool_deferred"


async def test_reconnecting_while_an_approval_waits_is_204_and_the_answer_still_continues(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    """A page reloaded while the run waits on an approval (in its grace) finds nothing to
    resume: the request is in GET /messages, and a replay would rebuild the message from
    empty over an answer the page gives meanwhile. The answer then continues the turn."""
    server = start(servers, tmp_path, {"AGENTLOG_APPROVAL_GRACE_SECONDS": "600"})
    chat_id = "chat-" + uuid.uuid4().hex
    said = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": PUBLISH}]}
    async with http.post(f"{server.url}/v1/chat", json={"id": chat_id, "messages": [said]}) as r:
        assert r.status == 200
        stream = await r.text()  # it ends at the approval request
    assert '"tool-approval-request"' in stream
    async with http.get(f"{server.url}/v1/sessions/{chat_id}/events?limit=5000") as response:
        runs = [e["type"] for e in (await response.json())["events"] if e["type"][:4] == "run_"]
    assert runs == ["run_started"]  # the run is still active: it waits, in its grace
    async with http.get(f"{server.url}/v1/chat/{chat_id}/stream") as response:
        assert response.status == 204
    async with http.get(f"{server.url}/v1/sessions/{chat_id}/messages") as response:
        [part] = [p for p in (await response.json())["messages"][-1]["parts"] if "approval" in p]
    assert part["state"] == "approval-requested"
    async with http.post(
        f"{server.url}/v1/sessions/{chat_id}/approvals/{part['approval']['id']}",
        json={"approved": True},
    ) as response:
        assert response.status in (200, 202), await response.text()
    for _ in range(600):
        async with http.get(f"{server.url}/v1/sessions/{chat_id}") as response:
            if (await response.json())["status"] == "idle":
                break
        await asyncio.sleep(0.1)
    async with http.get(f"{server.url}/v1/sessions/{chat_id}/messages") as response:
        parts = (await response.json())["messages"][-1]["parts"]
    assert [p["state"] for p in parts if "approval" in p] == ["output-available"]
