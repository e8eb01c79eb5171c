"""docs/use-chat.md's client block, run as written with the real `ai` Chat in node against a
live server with session tokens on: its transport sends (only the new message), and its
`stopRun` stops a long run, after which the next send is answered."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.doc_pages import fences, section
from tests.e2e.test_ai_sdk_client import JS_DIR, AiSdk, ai_sdk  # noqa: F401
from tests.e2e.test_rewind_http import REMEMBER_41
from tests.e2e.test_runs_http import http, servers, start  # noqa: F401 - fixtures
from tests.e2e.test_use_chat import LONG, mint_write_token
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


def client_block() -> str:
    [block] = [f.body for f in fences(section("docs/use-chat.md", "The client")) if f.language]
    return block


# What the page leaves to the reader (BASE, sessionId, token), then what a page does with it.
DRIVER = """
import { Chat } from './chat.mjs';
const chat = new Chat({ id: sessionId, messages: [], transport });
const isTool = p => p.type === 'dynamic-tool' || p.type.startsWith('tool-');
await chat.sendMessage({ text: PROMPTS.first });
const sent = structuredClone(chat.messages);
const running = chat.sendMessage({ text: PROMPTS.long });
for (let i = 0; i < 1200 && !chat.messages.at(-1)?.parts?.some(isTool); i++) {
  await new Promise(resolve => setTimeout(resolve, 50));
}
const stopped = await stopRun();
const stopAnswer = await stopped.json();
await running;
await chat.sendMessage({ text: PROMPTS.first });
console.log(JSON.stringify({ sent, stopAnswer, messages: chat.messages, status: chat.status,
  error: chat.error ? String(chat.error.message ?? chat.error) : null }));
"""


def run_block(prelude: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    script = JS_DIR / f".use-chat-doc-{uuid.uuid4().hex}.mjs"  # beside node_modules
    script.write_text(
        "".join(f"const {name} = {json.dumps(value)};\n" for name, value in prelude.items())
        + client_block()
        + "\n"
        + DRIVER
    )
    try:
        done = subprocess.run(
            [node, str(script)], cwd=JS_DIR, capture_output=True, text=True, timeout=300
        )
    finally:
        script.unlink()
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_client_block_is_short() -> None:
    assert len(client_block().splitlines()) < 20 + 5  # the transport under 20, plus stopRun


async def test_the_documented_client_sends_and_stops_with_session_tokens(
    ai_sdk: AiSdk,  # noqa: F811 - installs the pinned `ai`
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    server = start(servers, tmp_path, {"AGENTLOG_API_TOKEN": "api-t", "AGENTLOG_TOKEN_SECRET": "s"})
    chat_id = "chat-" + uuid.uuid4().hex
    token = await mint_write_token(http, server.url, chat_id)
    prelude = {
        "BASE": server.url,
        "sessionId": chat_id,
        "token": token,
        "PROMPTS": {"first": REMEMBER_41, "long": LONG},
    }
    result = await asyncio.to_thread(run_block, prelude)
    assert (result["status"], result["error"]) == ("ready", None)
    assert [m["role"] for m in result["sent"]] == ["user", "assistant"]
    assert result["stopAnswer"]["status"] == "stopped"
    assert [m["role"] for m in result["messages"]] == ["user", "assistant"] * 3
    async with http.get(
        f"{server.url}/v1/sessions/{chat_id}/messages", headers={"Authorization": "Bearer api-t"}
    ) as response:
        messages = (await response.json())["messages"]
    assert [m["id"] for m in messages] == [m["id"] for m in result["messages"]]
    assert "remember the number 41" in json.dumps(messages[-1])
