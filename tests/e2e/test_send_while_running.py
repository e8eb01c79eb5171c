"""Sending while a run is active, over HTTP, in process with the real CLI and the scripted
model: `POST /v1/chat` answers a queued message with its own turn's UI message stream (held
with keep-alives until the turn starts), `POST /runs` answers 202 with the queue position,
stop keeps the queue unless asked to clear it, stop while an approval waits denies it and the
queue goes on, an interrupt cancels the run and goes next, a steering message is streamed
and shown where the running turn received it, and bad bodies are refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    PromptQueued,
    RecordedEvent,
    RunCancelled,
    RunStarted,
    SessionCreated,
    ToolApprovalRequested,
    ToolCallStarted,
)
from agentlog.domain.rules.prompt_queue import prompt_queue
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings
from tests.e2e.test_ai_sdk_client import AiSdk, ai_sdk, assert_same_message  # noqa: F401
from tests.e2e.test_runs_http import ui_stream_chunks

pytestmark = pytest.mark.slow

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
SLOW = "[scenario:long-tool] Run the slow operation for 2 seconds"
LONG = "[scenario:long-tool] Run the slow operation for 60 seconds"
PUBLISH = '[scenario:approval] publish "hello world"'


def body_of(chunks: list[dict[str, Any]]) -> bytes:
    """The chunks as the UI message stream's SSE body, as the server sent them."""
    frames = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
    return (frames + "data: [DONE]\n\n").encode()


def said(message_id: str, text: str) -> dict[str, Any]:
    return {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]}


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


@pytest.fixture
async def client(aiohttp_client: Client, store: StoreBase, tmp_path: Path) -> TestClient[Any, Any]:
    agent = AgentConfig(
        workspace_root=tmp_path / "workspaces",
        run_home_root=tmp_path / "homes",
        approval_grace_seconds=0.2,
    )
    app = create_app(Settings(agent=agent, sse_keepalive_seconds=0.5), store=store)
    client = await aiohttp_client(app)
    await store.append("s", [SessionCreated()])
    return client


async def until(
    store: StoreBase, check: Callable[[list[RecordedEvent]], bool], timeout: float = 60
) -> list[RecordedEvent]:
    async with asyncio.timeout(timeout), store.subscribe("s") as wakeup:
        while True:
            events = await store.read_session("s")
            if check(events):
                return events
            await wakeup.wait(0.2)


def count(events: list[RecordedEvent], kind: Any) -> int:
    return sum(isinstance(e.event, kind) for e in events)


def runs_of(events: list[RecordedEvent]) -> list[RunStarted]:
    return [e.event for e in events if isinstance(e.event, RunStarted)]


async def test_a_chat_message_sent_while_a_run_is_active_streams_its_own_turn_after_it(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    first = asyncio.create_task(
        client.post("/v1/chat", json={"id": "s", "messages": [said("m1", SLOW)]})
    )
    await until(store, lambda events: count(events, ToolCallStarted) == 1)
    response = await client.post(
        "/v1/chat", json={"id": "s", "messages": [said("m2", "Hello while you work")]}
    )
    assert response.status == 200
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    chunks, keepalives = ui_stream_chunks(await response.read())
    await (await first).read()
    events = await store.read_session("s")
    [_, queued_run] = runs_of(events)
    [queued] = [e for e in events if isinstance(e.event, PromptQueued)]
    assert queued_run.queued_seq == queued.seq and queued_run.user_message_id == "m2"
    # The queued message's stream is its own turn, from its start to its end, and it was held
    # open with keep-alives while the slow turn ran.
    assert keepalives >= 1
    assert chunks[0]["type"] == "start" and chunks[0]["messageId"].startswith(queued_run.run_id)
    assert chunks[-1]["type"] == "finish"
    assert not any(c["type"].startswith("tool-") for c in chunks)
    messages = (await (await client.get("/v1/sessions/s/messages")).json())["messages"]
    assert [(m["role"], m["id"]) for m in messages][::2] == [("user", "m1"), ("user", "m2")]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


async def test_runs_answers_202_with_the_queue_position_and_stop_keeps_the_queue(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    started = await (await client.post("/v1/sessions/s/runs", json={"prompt": LONG})).json()
    assert started["status"] == "started"
    await until(store, lambda events: count(events, ToolCallStarted) == 1)
    answers = []
    for prompt in ("Hello one", "Hello two"):
        response = await client.post("/v1/sessions/s/runs", json={"prompt": prompt})
        assert response.status == 202
        answers.append(await response.json())
    assert [(a["status"], a["position"], a["run_id"]) for a in answers] == [
        ("queued", 1, None),
        ("queued", 2, None),
    ]
    assert {a["behind_run_id"] for a in answers} == {started["run_id"]}
    assert answers[0]["offset"] == answers[0]["queued_seq"] - 1

    stopped = await client.post("/v1/chat/s/stop", json={})
    assert (await stopped.json())["status"] == "stopped"
    events = await until(store, lambda events: count(events, RUN_TERMINAL_TYPES) == 3)
    assert [r.prompt for r in runs_of(events)] == [LONG, "Hello one", "Hello two"]


async def test_stop_with_clear_queue_drops_what_waits(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    started = await (await client.post("/v1/sessions/s/runs", json={"prompt": LONG})).json()
    await until(store, lambda events: count(events, ToolCallStarted) == 1)
    await client.post("/v1/sessions/s/runs", json={"prompt": "Never answered"})
    cancel = f"/v1/sessions/s/runs/{started['run_id']}/cancel"
    response = await client.post(cancel, json={"clear_queue": True})
    assert await response.json() == {
        "run_id": started["run_id"],
        "status": "cancelled",
        "queue_cleared": 1,
    }
    events = await store.read_session("s")
    assert prompt_queue(events).waiting == []
    assert len(runs_of(events)) == 1
    # What is sent afterwards runs as usual.
    after = await (await client.post("/v1/sessions/s/runs", json={"prompt": "Hi"})).json()
    assert after["status"] == "started"


async def test_stop_while_an_approval_waits_denies_it_and_the_queued_message_runs_after(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    await client.post("/v1/sessions/s/runs", json={"prompt": PUBLISH})
    await until(
        store,
        lambda events: (
            count(events, ToolApprovalRequested) == 1 and count(events, RUN_TERMINAL_TYPES) == 1
        ),
    )
    queued = await (await client.post("/v1/sessions/s/runs", json={"prompt": "Hello"})).json()
    assert (queued["status"], queued["position"], queued["behind_run_id"]) == ("queued", 1, None)

    response = await client.post("/v1/chat/s/stop", json={})
    stopped = await response.json()
    assert stopped["status"] == "approvals_denied" and len(stopped["approvals_denied"]) == 1
    events = await until(store, lambda events: count(events, RUN_TERMINAL_TYPES) == 3)
    runs = runs_of(events)
    assert runs[1].continues_run_id == runs[0].run_id and runs[1].prompt == ""
    assert runs[2].prompt == "Hello" and runs[2].queued_seq == queued["queued_seq"]
    messages = (await (await client.get("/v1/sessions/s/messages")).json())["messages"]
    [part] = [p for m in messages for p in m["parts"] if p.get("toolName")]
    assert part["state"] == "output-denied"
    assert part["approval"]["reason"] == "stopped"


async def test_an_interrupt_cancels_the_run_and_its_message_goes_next(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    await client.post("/v1/sessions/s/runs", json={"prompt": LONG})
    await until(store, lambda events: count(events, ToolCallStarted) == 1)
    response = await client.post(
        "/v1/sessions/s/runs", json={"prompt": "Answer this instead", "interrupt": True}
    )
    assert (await response.json())["status"] == "queued"
    events = await until(store, lambda events: count(events, RUN_TERMINAL_TYPES) == 2)
    terminals = [e for e in events if isinstance(e.event, RUN_TERMINAL_TYPES)]
    assert terminals[0].type == "run_cancelled"
    assert [r.prompt for r in runs_of(events)][1:] == ["Answer this instead"]


async def test_a_steering_chat_message_streams_the_running_turn_with_it_delivered(
    client: TestClient[Any, Any],
    store: StoreBase,
    ai_sdk: AiSdk,  # noqa: F811 - installs the pinned `ai`
) -> None:
    first = asyncio.create_task(
        client.post("/v1/chat", json={"id": "s", "messages": [said("m1", SLOW)]})
    )
    await until(store, lambda events: count(events, ToolCallStarted) == 1)
    body = {"id": "s", "messages": [said("m2", "Also mention bananas")], "steer": True}
    response = await client.post("/v1/chat", json=body)
    assert response.status == 200
    chunks, _ = ui_stream_chunks(await response.read())
    await (await first).read()
    [steering] = [c for c in chunks if c["type"] == "steering-message"]
    assert steering == {
        "type": "steering-message",
        "id": "m2",
        "parts": [{"type": "text", "text": "Also mention bananas"}],
    }
    events = await store.read_session("s")
    assert len(runs_of(events)) == 1  # delivered into the turn: no turn of its own
    messages = (await (await client.get("/v1/sessions/s/messages")).json())["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    kinds = [p["type"] for p in messages[1]["parts"]]
    assert "steering-message" in kinds
    # The AI SDK's own client builds the same message from the stream, steering part and all.
    built = await asyncio.to_thread(ai_sdk.resume, messages[:1], body_of(chunks))
    assert_same_message(built["messages"][1], messages[1])


async def test_a_queue_left_by_a_graceful_shutdown_starts_when_the_chat_reconnects(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    # What a server that shut down leaves: its run cancelled, a prompt still queued behind it.
    await store.append(
        "s",
        [
            RunStarted(run_id="run_before", prompt="Hello"),
            PromptQueued(prompt="Hello again", user_message_id="m-queued"),
            RunCancelled(run_id="run_before", reason="server shutdown"),
        ],
    )
    response = await client.get("/v1/chat/s/stream")
    assert response.status == 200
    chunks, _ = ui_stream_chunks(await response.read())
    events = await store.read_session("s")
    [_, queued_run] = runs_of(events)
    assert queued_run.prompt == "Hello again" and queued_run.queued_seq == 3
    assert (chunks[0]["type"], chunks[0]["messageId"]) == ("start", queued_run.run_id)
    assert chunks[-1]["type"] == "finish"
    # Nothing waits any more: a later reconnect has nothing to start.
    assert prompt_queue(events).waiting == []


async def test_bad_sends_are_refused_with_nothing_written(
    client: TestClient[Any, Any], store: StoreBase
) -> None:
    head = await store.head("s")
    cases: list[tuple[str, Any, int, str]] = [
        ("/v1/sessions/s/runs", {"prompt": "x", "interrupt": "yes"}, 400, "invalid_body"),
        (
            "/v1/sessions/s/runs",
            {"prompt": "x", "steer": True, "interrupt": True},
            400,
            "invalid_body",
        ),
        (
            "/v1/chat",
            {"id": "s", "messages": [said("m", "x")], "steer": True, "interrupt": True},
            400,
            "invalid_body",
        ),
        ("/v1/sessions/nope/runs", {"prompt": "x"}, 404, "unknown_session"),
        ("/v1/chat/s/stop", {"clear_queue": 1}, 400, "invalid_body"),
    ]
    for path, body, status, code in cases:
        response = await client.post(path, json=body)
        assert response.status == status, (path, body)
        assert (await response.json())["error"]["code"] == code
    assert await store.head("s") == head
