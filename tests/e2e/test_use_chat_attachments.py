"""Attachments with the AI SDK's defaults: the real `Chat` with `DefaultChatTransport({ api:
BASE + '/v1/chat' })` and a session token sends a picked file (`sendMessage({ text, files })`),
GET /messages shows it as the same `file` part with the server's URL, which the page's read
token opens, and after a reload the whole history (that URL included) sends and regenerates
(tests/js/attach_chat.mjs)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_ai_sdk_client import AiSdk, ai_sdk, run_chat_script  # noqa: F401
from tests.e2e.test_runs_http import http, servers, start  # noqa: F401 - fixtures
from tests.e2e.test_use_chat import mint_write_token
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def drive_chat(case: dict[str, Any]) -> dict[str, Any]:
    return run_chat_script("attach_chat.mjs", case)


def said(message: dict[str, Any]) -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


async def test_a_file_sent_by_use_chat_is_stored_shown_and_sent_again_after_a_reload(
    ai_sdk: AiSdk,  # noqa: F811 - installs the pinned `ai`
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    server = start(servers, tmp_path, {"AGENTLOG_API_TOKEN": "api-t", "AGENTLOG_TOKEN_SECRET": "s"})
    chat_id = "chat-" + uuid.uuid4().hex
    headers = {"Authorization": "Bearer " + await mint_write_token(http, server.url, chat_id)}
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    picked = {"type": "file", "mediaType": "image/png", "url": data_url, "filename": "dot.png"}
    result = await asyncio.to_thread(
        drive_chat,
        {
            "base": server.url,
            "chatId": chat_id,
            "headers": headers,
            "file": picked,
            "prompts": {"first": "What is in this picture?", "second": "Thanks."},
        },
    )
    steps = {step["name"]: step for step in result["steps"]}
    for name, step in steps.items():
        assert (step["status"], step["error"]) == ("ready", None), name

    sent = steps["sent with a file"]
    url = f"/v1/sessions/{chat_id}/files/{hashlib.sha256(PNG).hexdigest()}"
    [mine, _] = sent["chat"]
    [theirs, answer] = sent["server"]
    assert mine["parts"] == [picked, {"type": "text", "text": "What is in this picture?"}]
    # The same message, its file now the server's copy rather than the page's data: URL.
    assert theirs["id"] == mine["id"]
    assert theirs["parts"] == [{**picked, "url": url}, mine["parts"][1]]
    assert said(answer).startswith("I was shown 1 file(s): image image/png")

    async with http.get(server.url + url, headers=headers) as response:
        assert response.status == 200 and await response.read() == PNG

    # After the reload the whole history travels: the first message's file as the URL.
    after = steps["sent after a reload"]["server"]
    assert [m["role"] for m in after] == ["user", "assistant"] * 2
    assert after[0]["parts"][0]["url"] == url
    assert result["bodies"][1]["messages"][0]["parts"][0]["url"] == url
    regenerated = steps["regenerated the first answer"]["server"]
    assert len(regenerated) == 2 and regenerated[0]["parts"][0]["url"] == url
    assert said(regenerated[1]).startswith("I was shown 1 file(s)")
