"""examples/react-chat, the Vite + React app a team copies, built and driven in headless
Chromium: the page is served with its token route by the example's own backend
(examples/react-chat/server.py) from another origin than agentlog, tokens are on, and useChat's
DefaultChatTransport has only `api` and the token header. Send, regenerate, edit, a reload
mid-stream, an approval answered after a reload, a denial, a subagent, stop, and a send after
it; after each step the page shows what GET /messages holds, a subagent's parts inside its
call (examples/react-chat/e2e/drive.mjs).

`npm ci` runs when the example's node_modules is not what its package-lock.json pins; the app
is built every time. Without node, npm or Chromium the test is skipped, unless CI=true, where
it fails."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import IN_CI, ROOT
from tests.e2e.doc_pages import fences, section
from tests.e2e.test_rewind_http import REMEMBER_41
from tests.e2e.test_runs_http import http, servers, start  # noqa: F401 - fixtures
from tests.e2e.test_use_chat import EDITED, LONG
from tests.support.browser import CHROMIUM, FLAGS, chromium_available
from tests.support.server import ServerProcess, free_port

EXAMPLE = ROOT / "examples" / "react-chat"
API_TOKEN = "api-t"
# Long enough that the page reloads while the tool still runs, even on a loaded machine.
SLOW = "[scenario:long-tool] Run the slow operation for 3 seconds"
PUBLISH = '[scenario:approval] publish "hello from the browser"'
PROMPTS = {
    "first": REMEMBER_41,
    "edited": EDITED,
    "slow": SLOW,
    "publish": PUBLISH,
    "subagent": "[scenario:subagent] Ask a subagent to add and read",
    "long": LONG,
    "steer": "[scenario:long-tool] Run the slow operation for 3 seconds",
    "steering": "Also tell me the time",
    "attach": "What is in this picture?",
}
# The driver's optional steps, both run here: steering (sent beside useChat's own send, into
# the running turn) and attaching a picture.
OPTIONAL_STEPS: tuple[str, ...] = ("steer", "attach")


def _installed_is_stale() -> bool:
    """node_modules does not hold what package-lock.json pins (npm keeps a copy of the tree it
    installed in node_modules/.package-lock.json; other platforms' optional packages are absent)."""
    hidden = EXAMPLE / "node_modules" / ".package-lock.json"
    if not hidden.is_file():
        return True
    locked = json.loads((EXAMPLE / "package-lock.json").read_text())["packages"]
    installed = json.loads(hidden.read_text())["packages"]
    version = {path: entry.get("version") for path, entry in installed.items()}
    return any(
        version.get(path) != entry.get("version")
        for path, entry in locked.items()
        if path and (path in version or not entry.get("optional"))
    ) or any(path not in locked for path in version)


@pytest.fixture(scope="module")
def built_app() -> Path:
    """The example, installed from its lock file when stale, and built (dist/)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None or not chromium_available():
        message = f"node, npm and Chromium ({CHROMIUM}) are needed to drive examples/react-chat"
        if IN_CI:
            pytest.fail(message + "; CI=true requires them", pytrace=False)
        pytest.skip(message)
    env = {**os.environ, "NO_UPDATE_NOTIFIER": "1"}
    if _installed_is_stale():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE, check=True, timeout=600, env=env
        )
    subprocess.run([npm, "run", "build"], cwd=EXAMPLE, check=True, timeout=300, env=env)
    return EXAMPLE


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The example's backend: `start(agentlog_url, port)` returns its URL once it answers."""
    started: list[subprocess.Popen[bytes]] = []

    def start_app(agentlog_url: str, port: int) -> str:
        env = {
            **os.environ,
            "AGENTLOG_URL": agentlog_url,
            "AGENTLOG_API_TOKEN": API_TOKEN,
            "PORT": str(port),
        }
        log = (tmp_path / "react-chat-server.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "server.py")], env=env, stdout=log, stderr=log
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            assert process.poll() is None, (tmp_path / "react-chat-server.log").read_text()
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as response:
                    if response.status == 200:
                        return url
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the example's server never answered")

    yield {"start": start_app}
    for process in started:
        process.terminate()
        process.wait(15)


def drive(case: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(EXAMPLE / "e2e" / "drive.mjs")],
        cwd=EXAMPLE,
        input=json.dumps(case),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert "crashed" not in result, result["crashed"]
    return result


def shown(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a page can show of GET /messages: ids, roles, part types, texts, tool states, and
    the call a subagent's part belongs to."""
    form = []
    for message in messages:
        parts = []
        for part in message["parts"]:
            seen: dict[str, Any] = {"type": part["type"]}
            if "toolCallId" in part:
                seen["state"] = part["state"]
            if part["type"] in ("text", "reasoning"):
                seen["text"] = part["text"]
            if part["type"] == "steering-message":
                seen["text"] = "".join(p.get("text", "") for p in part["parts"])
            if parent_of(part) is not None:
                seen["parent"] = parent_of(part)
            parts.append(seen)
        form.append({"id": message["id"], "role": message["role"], "parts": parts})
    return form


def parent_of(part: dict[str, Any]) -> str | None:
    """The tool call whose subagent made this part (agentlog's provider metadata)."""
    metadata = part.get("callProviderMetadata") or part.get("providerMetadata") or {}
    parent = metadata.get("agentlog", {}).get("parentToolCallId")
    return None if parent is None else str(parent)


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


def tool_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in message["parts"] if "toolCallId" in p]


pytestmark = pytest.mark.slow


async def test_the_react_app_in_chromium_shows_what_the_log_holds_after_every_step(
    built_app: Path,
    servers: list[ServerProcess],  # noqa: F811
    app_server: dict[str, Any],
    tmp_path: Path,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    app_port = free_port()
    app_origin = f"http://127.0.0.1:{app_port}"
    env = {
        "AGENTLOG_API_TOKEN": API_TOKEN,
        "AGENTLOG_TOKEN_SECRET": "s3cret",
        "AGENTLOG_ALLOWED_ORIGINS": app_origin,
    }
    server = start(servers, tmp_path, env)
    app_url = app_server["start"](server.url, app_port)
    chat_id = "chat-" + uuid.uuid4().hex  # unique: Redis is shared with every other test
    result = await asyncio.to_thread(
        drive,
        {
            "app": app_url,
            "base": server.url,
            "chatId": chat_id,
            "apiToken": API_TOKEN,
            "chromium": CHROMIUM,
            "flags": [f for f in FLAGS if not f.startswith(("--remote-debugging", "--headless"))],
            "prompts": PROMPTS,
            "steps": list(OPTIONAL_STEPS),
        },
    )
    assert result["pageErrors"] == []
    steps = {step["name"]: step for step in result["steps"]}
    for name, step in steps.items():
        assert (step["status"], step["error"]) == ("ready", None), name
        assert step["rendered"] == shown(step["server"]), name
        assert step["imagesLoaded"], name

    sent = steps["sent"]["server"]
    assert [m["role"] for m in sent] == ["user", "assistant"]
    assert text_of(sent[0]) == REMEMBER_41 and "41" in text_of(sent[1])
    regenerated = steps["regenerated"]["server"]
    assert regenerated[0] == sent[0] and regenerated[1]["id"] != sent[1]["id"]
    edited = steps["edited"]["server"]
    assert edited[0]["id"] == sent[0]["id"] and text_of(edited[0]) == EDITED
    assert "remember the number 43" in text_of(edited[1])

    midway = steps["reloaded mid-stream"]["server"]
    assert midway[:2] == edited
    assert [p["state"] for p in tool_parts(midway[3])] == ["output-available"]
    assert "The slow operation is done" in text_of(midway[3])

    approved = steps["approved after a reload"]["server"]
    [publish] = tool_parts(approved[5])
    assert publish["state"] == "output-available"
    assert publish["approval"]["approved"] is True

    denied = steps["denied"]["server"]
    assert [p["state"] for p in tool_parts(denied[7])] == ["output-denied"]
    # The subagent's own tool calls are shown inside the Agent call that started it.
    delegated = steps["subagent"]["server"][9]
    [agent] = [p for p in tool_parts(delegated) if parent_of(p) is None]
    inside = [p for p in tool_parts(delegated) if parent_of(p) == agent["toolCallId"]]
    assert len(inside) >= 2 and agent["state"] == "output-available", delegated

    stopped = steps["stopped"]["server"]
    [slow_op] = tool_parts(stopped[11])
    assert slow_op["state"] == "output-error", slow_op
    after = steps["sent after the stop"]["server"]
    assert after[:12] == stopped and "remember the number 41" in text_of(after[13])

    api = {"Authorization": f"Bearer {API_TOKEN}"}
    async with http.get(f"{server.url}/v1/sessions/{chat_id}/events?limit=5000", headers=api) as r:
        events = (await r.json())["events"]
    # The approved tool ran once, though the page that asked was gone when it was answered.
    ran = [e for e in events if e.get("tool_call_id") == publish["toolCallId"]]
    assert [e["type"] for e in ran if e["type"].startswith("tool_call_")] == [
        "tool_call_started",
        "tool_call_succeeded",
    ]
    assert [e["run_id"] for e in events if e["type"] == "run_cancelled"] == [stopped[11]["id"]]

    # The page spoke to agentlog only through the chat routes, GET /messages and (to steer) the
    # runs route, always with the session token its own backend minted, never the API token.
    calls = [r for r in result["requests"] if r["method"] != "OPTIONS"]
    chat = f"{server.url}/v1/chat"
    steering = {("POST", f"{server.url}/v1/sessions/{chat_id}/runs")}
    assert {(r["method"], r["url"]) for r in calls} == {
        ("GET", f"{server.url}/v1/sessions/{chat_id}/messages"),
        ("GET", f"{chat}/{chat_id}/stream"),
        ("POST", chat),
        ("POST", f"{chat}/{chat_id}/stop"),
    } | (steering if "steer" in OPTIONAL_STEPS else set())
    # Three page loads: the first found nothing running (204); the reload mid-stream found the
    # run still going and resumed it (200).
    stream = ("GET", f"{chat}/{chat_id}/stream")
    resumes = [r["status"] for r in result["responses"] if (r["method"], r["url"]) == stream]
    assert len(resumes) == 3 and resumes[:2] == [204, 200], resumes
    assert all(r["status"] < 400 for r in result["responses"]), result["responses"]
    tokens = {r["authorization"] for r in calls}
    assert len(tokens) >= 1 and all(t.startswith("Bearer ") for t in tokens)
    assert f"Bearer {API_TOKEN}" not in tokens


def test_the_readmes_usechat_code_is_the_apps_transport() -> None:
    """The README shows the example's transport module as it is, so it cannot drift."""
    blocks = [f.body for f in fences(section("README.md", "Try it")) if f.language == "ts"]
    assert blocks == [(EXAMPLE / "src" / "transport.ts").read_text().strip()]
