"""O(run), not O(session): starting a run, resuming its stream and answering a tool call read
the run's own events, never the session's earlier log. A real SQLite store counts the events
its reads return; the session holds 6,000 events of 60 earlier runs (a start may read the
latest of them: approvals it left, what its transcript may lack, its own events).

The earlier runs were recorded before the store kept the CLI's transcript: the first run
converts them, reading the log once; every later run resumes from the store, and its whole
start, up to the agent's first step, reads O(run) again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import (
    RecordedEvent,
    RunFinished,
    RunStarted,
    SessionCreated,
    TextDelta,
    ToolCallStarted,
)
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.sqlite.backend import SQLiteBackend
from agentlog.infra.sqlite.event_store import SQLiteEventStore
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings

pytestmark = pytest.mark.slow

EARLIER = 6_000
# A run's own events at the moment of the reads below: far fewer than the session's.
BOUND = 500

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


class CountingStore(SQLiteEventStore):
    """The real SQLite store, counting the events its per-session reads return."""

    events_read = 0

    async def read(self, session_id: str, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        page = await super().read(session_id, after, limit)
        self.events_read += len(page)
        return page

    async def uncounted(self, session_id: str, after: int) -> list[RecordedEvent]:
        """What the test itself reads to wait for a run: not the runner's reads."""
        return await super().read(session_id, after, 5000)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    counting = CountingStore(tmp_path / "agentlog.db")
    SQLiteBackend(counting)  # the adapters beside the log, as opening a store builds them
    opened = await counting.open()
    await opened.append("s", [SessionCreated()])
    for run in range(EARLIER // 100):  # 60 earlier runs of 100 events
        body = [
            TextDelta(run_id=f"old{run}", message_id="m", block_index=0, delta="x")
            for _ in range(98)
        ]
        await opened.append(
            "s",
            [RunStarted(run_id=f"old{run}", prompt="p"), *body, RunFinished(run_id=f"old{run}")],
        )
    try:
        yield opened
    finally:
        await opened.close()


async def test_start_stream_and_tool_output_read_only_the_run(
    store: CountingStore, aiohttp_client: Client, tmp_path: Path
) -> None:
    agent = AgentConfig(workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes")
    client = await aiohttp_client(create_app(Settings(agent=agent), store=store))
    store.events_read = 0
    prompt = {"prompt": "[scenario:long-tool] Run the slow operation for 2 seconds"}
    response = await client.post("/v1/sessions/s/runs", json=prompt)
    assert response.status == 202
    run_id = (await response.json())["run_id"]
    assert store.events_read < BOUND  # the start itself (the transcript is the run's task)

    async with asyncio.timeout(60):
        while not any(
            isinstance(r.event, ToolCallStarted) and r.run_id == run_id
            for r in await store.read("s", after=EARLIER, limit=5000)
        ):
            await asyncio.sleep(0.05)
    call = next(
        r.event
        for r in await store.read("s", after=EARLIER, limit=5000)
        if isinstance(r.event, ToolCallStarted)
    )

    store.events_read = 0
    async with client.get("/v1/sessions/s/stream") as stream:
        assert stream.status == 200
        first = await stream.content.readany()
        assert b'"start"' in first
    assert store.events_read < BOUND

    store.events_read = 0
    answer = {"events": [{"type": "tool_output", "tool_call_id": call.tool_call_id}]}
    refused = await client.post("/v1/sessions/s/events", json=answer)
    assert refused.status == 409  # the live agent's own call
    assert store.events_read < BOUND

    await ended(store, run_id)
    # The next run resumes the transcript the first one converted and mirrored: from its
    # start to the agent's first step, the runner reads the latest run's events, no more.
    store.events_read = 0
    response = await client.post("/v1/sessions/s/runs", json=prompt)
    assert response.status == 202
    second = (await response.json())["run_id"]
    async with asyncio.timeout(60):
        while not any(
            isinstance(r.event, ToolCallStarted) and r.run_id == second
            for r in await store.uncounted("s", EARLIER)
        ):
            await asyncio.sleep(0.05)
    assert 0 < store.events_read < BOUND
    await ended(store, second)


async def ended(store: CountingStore, run_id: str) -> None:
    async with asyncio.timeout(60):
        while not any(
            isinstance(r.event, RunFinished) and r.run_id == run_id
            for r in await store.uncounted("s", EARLIER)
        ):
            await asyncio.sleep(0.05)
