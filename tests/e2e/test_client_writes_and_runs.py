"""A client's writes beside a live run, through the real app, runner, SDK and CLI: its
idempotency keys never touch the run's, a key is bound to its request, and a tool call the
agent is executing is the agent's to answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    CustomEventRecorded,
    SessionCreated,
    ToolCallStarted,
)
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings

pytestmark = pytest.mark.slow

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    agent = AgentConfig(workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes")
    return Settings(agent=agent, **overrides)


async def run_end(store: StoreBase, session_id: str, run_id: str) -> str:
    async with asyncio.timeout(60), store.subscribe(session_id) as wakeup:
        while True:
            for recorded in await store.read_session(session_id):
                if isinstance(recorded.event, RUN_TERMINAL_TYPES) and recorded.run_id == run_id:
                    return recorded.type
            await wakeup.wait(0.2)


async def test_client_keys_named_like_the_runs_own_leave_the_run_record_complete(
    aiohttp_client: Client, store: StoreBase, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path), store=store))
    await store.append("s", [SessionCreated()])
    started = await (await client.post("/v1/sessions/s/runs", json={"prompt": "Hi"})).json()
    run_id = started["run_id"]
    body = {"events": [{"type": "custom", "name": "x"}]}
    for n in range(1, 61):
        key = {"Idempotency-Key": f"run:{run_id}:{n}"}
        response = await client.post("/v1/sessions/s/events", json=body, headers=key)
        assert response.status == 200, await response.text()

    assert await run_end(store, "s", run_id) == "run_finished"
    events = await store.read_session("s")
    assert sum(isinstance(r.event, CustomEventRecorded) for r in events) == 60
    assert next(r.type for r in events if r.run_id == run_id) == "run_started"
    assert any(r.type == "text_completed" for r in events if r.run_id == run_id)
    assert (await verify_log(store, "s")).problems == []


async def test_a_key_is_bound_to_its_request_and_a_retried_tool_output_gets_its_first_result(
    aiohttp_client: Client, store: StoreBase, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path), store=store))
    await store.append(
        "s", [SessionCreated(), ToolCallStarted(run_id=None, tool_call_id="t1", tool_name="job")]
    )
    answer = {"events": [{"type": "tool_output", "tool_call_id": "t1", "output": {"ok": True}}]}
    key = {"Idempotency-Key": "answer-1"}
    first = await client.post("/v1/sessions/s/events", json=answer, headers=key)
    assert first.status == 200
    retried = await client.post("/v1/sessions/s/events", json=answer, headers=key)
    assert retried.status == 200
    assert await retried.json() == await first.json() == {"seqs": [3], "head": 3}
    other = {"events": [{"type": "tool_output", "tool_call_id": "t1", "output": {"ok": False}}]}
    reused = await client.post("/v1/sessions/s/events", json=other, headers=key)
    assert reused.status == 422
    assert (await reused.json())["error"]["code"] == "idempotency_key_reused"
    bad = await client.post("/v1/sessions/s/events", json=answer, headers={"Idempotency-Key": ""})
    assert bad.status == 400
    assert await store.head("s") == 3


async def test_a_tool_output_for_a_call_the_live_agent_executes_is_refused(
    aiohttp_client: Client, store: StoreBase, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path), store=store))
    await store.append("s", [SessionCreated()])
    prompt = {"prompt": "[scenario:long-tool] Run the slow operation for 2 seconds"}
    run_id = (await (await client.post("/v1/sessions/s/runs", json=prompt)).json())["run_id"]
    async with asyncio.timeout(60):
        while True:
            calls = [
                r.event
                for r in await store.read_session("s")
                if isinstance(r.event, ToolCallStarted)
            ]
            if calls:
                break
            await asyncio.sleep(0.05)
    answer = {"events": [{"type": "tool_output", "tool_call_id": calls[0].tool_call_id}]}
    refused = await client.post("/v1/sessions/s/events", json=answer)
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert (error["code"], error["run_id"]) == ("tool_call_owned_by_run", run_id)

    assert await run_end(store, "s", run_id) == "run_finished"
    ends = [
        r
        for r in await store.read_session("s")
        if r.type in ("tool_call_succeeded", "tool_call_failed")
    ]
    assert len(ends) == 1 and ends[0].event.source != "external"  # type: ignore[union-attr]
    assert (await verify_log(store, "s")).problems == []


async def test_keys_older_than_the_ttl_are_pruned(
    aiohttp_client: Client, store: StoreBase, tmp_path: Path
) -> None:
    await store.append("s", [SessionCreated()])
    await store.append("s", [CustomEventRecorded(name="x")], idempotency_key="client:old")
    await asyncio.sleep(0.05)
    await aiohttp_client(create_app(settings(tmp_path, idempotency_ttl_hours=1e-6), store=store))
    async with asyncio.timeout(10):
        while await store.keyed_append("s", "client:old") is not None:
            await asyncio.sleep(0.05)
