"""The AI SDK's own Chat (npm `ai` 7) regenerating and editing against a live server, on
SQLite and PostgreSQL (tests/js/rewind_chat.mjs): after each step the chat holds exactly the
current branch that GET /messages returns, ids included, without a reload: a user message
the chat created names itself with the chat's own id, and the log records that id
(`run_started.user_message_id`). A reload (a Chat hydrated from GET /messages, then
`resumeStream()`) shows the same."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_ai_sdk_client import AiSdk, ai_sdk, assert_same_message, run_chat_script  # noqa: F401
from tests.e2e.test_rewind_http import REMEMBER_41, REMEMBER_42, database_url  # noqa: F401
from tests.e2e.test_runs_http import (  # noqa: F401 - fixtures
    all_events,
    create_session,
    http,
    servers,
    start,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

PROMPTS = {
    "first": REMEMBER_41,
    "second": REMEMBER_42,
    "recall": "What number did I ask you to remember?",
    "edited": "Please remember the number 43",
    "editedAgain": "Please remember the number 44",
}


def drive_chat(case: dict[str, Any]) -> dict[str, Any]:
    return run_chat_script("rewind_chat.mjs", case)


def assert_chat_holds_the_branch(chat: list[Any], server: list[Any]) -> None:
    """The chat's messages are GET /messages, ids included."""
    assert [(m["id"], m["role"]) for m in chat] == [(m["id"], m["role"]) for m in server]
    for index, (mine, theirs) in enumerate(zip(chat, server, strict=True)):
        if theirs["role"] == "assistant":
            assert_same_message(mine, theirs)
        else:
            assert mine == theirs, f"message {index}"


def assert_reload_shows(reloaded: list[Any], server: list[Any]) -> None:
    """The hydrated chat holds GET /messages, ids included. Its resumeStream() may still find
    the run that just ended (its lock outlives the terminal event by the CLI's exit) and replay
    it: the message is then rebuilt by the client, the same up to the reasoning part ids the
    client adds (as_projected)."""
    assert [m["id"] for m in reloaded] == [m["id"] for m in server]
    for mine, theirs in zip(reloaded, server, strict=True):
        if theirs["role"] == "assistant":
            assert_same_message(mine, theirs)
        else:
            assert mine == theirs


def requests_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list(result["requests"])


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


async def test_use_chats_regenerate_and_edit_keep_the_chat_equal_to_the_log(
    ai_sdk: AiSdk,  # noqa: F811 - installs the pinned `ai`
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    database_url: str,  # noqa: F811
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    server = start(servers, tmp_path, {"AGENTLOG_DATABASE_URL": database_url})
    sid = await create_session(http, server.url)
    result = await asyncio.to_thread(
        drive_chat, {"base": server.url, "sessionId": sid, "prompts": PROMPTS}
    )
    steps = {step["name"]: step for step in result["steps"]}
    for name, step in steps.items():
        assert (step["status"], step["error"]) == ("ready", None), name
        assert_chat_holds_the_branch(step["chat"], step["server"])
        # A reload shows the same branch, ids included.
        assert_reload_shows(step["reloaded"], step["server"])
        assert step["reloadStatus"] == "ready", name

    two = steps["two turns"]["server"]
    regenerated = steps["regenerated the first answer"]["server"]
    assert [text_of(m) for m in regenerated][:1] == [REMEMBER_41]
    assert len(regenerated) == 2 and regenerated[1]["id"] not in {m["id"] for m in two}
    recalled = steps["asked what to remember"]["server"]
    # The discarded second turn (42) is not in the agent's context.
    assert text_of(recalled[-1]) == "You asked me to remember the number 41."
    edited = steps["edited the last question"]["server"]
    assert [text_of(m) for m in edited][2] == PROMPTS["edited"]
    assert edited[:2] == recalled[:2] and edited[3]["id"] != recalled[3]["id"]
    # The edited message keeps its id (the chat's own, from the send), in the log too.
    assert edited[2]["id"] == recalled[2]["id"] == requests_of(result)[3]["messages"][-1]["id"]
    last = steps["regenerated the last answer"]["server"]
    # A new answer to the same prompt message.
    assert last[2]["id"] == edited[2]["id"] and last[3]["id"] != edited[3]["id"]
    assert [text_of(m) for m in last][2] == PROMPTS["edited"] and len(last) == 4
    again = steps["reloaded, regenerated the last answer"]
    assert len(again["server"]) == 4 and again["server"][3]["id"] != last[3]["id"]
    assert again["chat"][2]["id"] == last[2]["id"] == again["server"][2]["id"]
    edited_again = steps["reloaded, edited the last question"]["server"]
    assert [text_of(m) for m in edited_again][2] == PROMPTS["editedAgain"]
    assert edited_again[:2] == last[:2] and len(edited_again) == 4

    # What the chat sent: regenerate names the answer (absent for the last one); the edit
    # names the replaced user message, which is the last one it sends.
    requests = result["requests"]
    regenerate_first, edit, regenerate_last = requests[2], requests[4], requests[5]
    assert regenerate_first["trigger"] == "regenerate-message"
    assert regenerate_first["messageId"] == two[1]["id"]
    assert edit["trigger"] == "submit-message"
    assert edit["messageId"] == edit["messages"][-1]["id"]
    assert regenerate_last["trigger"] == "regenerate-message" and "messageId" not in regenerate_last

    events = await all_events(http, server.url, sid)
    assert [e["trigger"] for e in events if e["type"] == "conversation_rewound"] == [
        "regenerate",
        "edit",
        "regenerate",
        "regenerate",
        "edit",
    ]
