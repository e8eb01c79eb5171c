"""DELETE /v1/sessions/{id}, `agentlog delete` and AGENTLOG_RETENTION_DAYS, through the real
app: an active run is cancelled first, live followers get the tombstone as their last frame,
and every route of the session then answers 410."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import RunStarted, SessionCreated
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.sessions.workspaces import directory_name
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.transport.app import create_app
from agentlog.transport.keys import AGENT_RUNS
from agentlog.transport.settings import Settings
from tests.e2e.test_cli_inspect import agentlog, agentlog_many
from tests.support.prometheus_text import parse
from tests.support.sse_client import iter_events

ClientFactory = Callable[..., Awaitable[TestClient]]
LONG_TOOL = "[scenario:long-tool] Run the slow operation for 30 seconds"


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    agent = AgentConfig(
        workspace_root=tmp_path / "workspaces",
        run_home_root=tmp_path / "homes",
        heartbeat_seconds=0.5,
    )
    return Settings(sse_keepalive_seconds=0.2, agent=agent, **overrides)


async def follow(client: TestClient, path: str, seen: list[dict[str, Any]]) -> None:
    """Read the stream until the server ends it."""
    response = await client.get(path, headers={"Accept": "text/event-stream"})
    assert response.status == 200
    async for event in iter_events(response):
        seen.append(event.json() | {"_event": event.event})


async def deleted_count(client: TestClient, reason: str) -> float:
    family = parse(await (await client.get("/metrics")).text())["agentlog_sessions_deleted_total"]
    return sum(v for _, labels, v in family.samples if labels == {"reason": reason})


async def error_code(response: aiohttp.ClientResponse) -> tuple[int, str]:
    return response.status, (await response.json())["error"]["code"]


async def test_delete_cancels_the_run_ends_live_streams_and_leaves_a_410(
    aiohttp_client: ClientFactory, store: StoreBase, tmp_path: Path
) -> None:
    app = create_app(settings(tmp_path), store=store)
    client = await aiohttp_client(app)
    marker = "MARKER-" + uuid.uuid4().hex
    assert (await client.post("/v1/sessions", json={"id": "doomed", "title": marker})).status == 201
    run = await (await client.post("/v1/sessions/doomed/runs", json={"prompt": LONG_TOOL})).json()
    live: list[dict[str, Any]] = []
    replayed: list[dict[str, Any]] = []
    followers = [
        asyncio.create_task(follow(client, "/v1/sessions/doomed/events", live)),
        asyncio.create_task(follow(client, "/v1/sessions/doomed/events?offset=0", replayed)),
    ]
    async with asyncio.timeout(30):
        while not any(e["type"] == "tool_call_started" for e in live):
            await asyncio.sleep(0.05)
    workspace = tmp_path / "workspaces" / directory_name("doomed")
    assert workspace.exists()

    response = await client.delete("/v1/sessions/doomed")
    assert response.status == 200, await response.text()
    deleted = await response.json()
    async with asyncio.timeout(10):
        await asyncio.gather(*followers)  # the server ended both streams

    for seen in (live, replayed):
        seqs = [e["seq"] for e in seen]
        assert seqs == list(range(1, len(seqs) + 1))  # every event once, in order
        assert seen[-1]["type"] == seen[-1]["_event"] == "session_deleted"
        assert seen[-1]["seq"] == deleted["tombstone_seq"]
        assert "run_cancelled" in [e["type"] for e in seen]  # cancelled before the delete
    assert deleted["events_removed"] == deleted["tombstone_seq"] - 1
    runner = app[AGENT_RUNS]
    assert await runner.active_run("doomed") is None
    assert runner.agent_process_ids(run["run_id"]) == []
    assert not workspace.exists()

    # Each route gets its answer from its own operation (no read before every request).
    wrong: list[tuple[str, str, int, str]] = []
    for method, path, body in [
        ("GET", "/v1/sessions/doomed", None),
        ("GET", "/v1/sessions/doomed/events", None),
        ("GET", "/v1/sessions/doomed/messages", None),
        ("GET", "/v1/sessions/doomed/stream", None),
        ("POST", "/v1/sessions/doomed/runs", {"prompt": "hi"}),
        ("POST", "/v1/sessions/doomed/events", {"events": [{"type": "custom", "name": "x"}]}),
        ("DELETE", "/v1/sessions/doomed", None),
        ("POST", "/v1/sessions", {"id": "doomed"}),  # the id is never reused
        ("POST", f"/v1/sessions/doomed/runs/{run['run_id']}/cancel", {}),
        ("POST", "/v1/sessions/doomed/approvals/some-approval", {"approved": True}),
        ("POST", "/v1/sessions/doomed/fork", {"at_seq": 1}),
        ("GET", "/v1/chat/doomed/stream", None),
        ("POST", "/v1/chat/doomed/stop", {}),
    ]:
        answer = await client.request(method, path, json=body)
        if answer.status != 410 or (await answer.json())["error"]["code"] != "session_deleted":
            wrong.append((method, path, answer.status, await answer.text()))
    assert wrong == []
    assert await error_code(await client.delete("/v1/sessions/never-was")) == (
        404,
        "unknown_session",
    )
    listed = await (await client.get("/v1/sessions")).json()
    assert "doomed" not in [s["id"] for s in listed["sessions"]]
    assert await deleted_count(client, "requested") == 1
    # Nothing of it in the log: only the tombstone is left.
    assert [e.type for e in await store.read_session("doomed")] == ["session_deleted"]


async def test_retention_deletes_sessions_idle_longer_than_it(
    aiohttp_client: ClientFactory, store: StoreBase, tmp_path: Path
) -> None:
    await store.append("old", [SessionCreated()])
    app = create_app(settings(tmp_path, retention_days=1 / 86_400), store=store)  # 1 s
    client = await aiohttp_client(app)
    async with asyncio.timeout(20):  # the recovery bound: a few sweeps
        while (await client.get("/v1/sessions/old")).status != 410:
            await asyncio.sleep(0.1)
        # The tombstone commits before the sweeper counts it: wait for the count as well.
        while await deleted_count(client, "retention") < 1:
            await asyncio.sleep(0.1)
    assert await deleted_count(client, "retention") == 1


def test_agentlog_delete_refuses_an_active_run_unless_forced(
    sqlite_url: str, tmp_path: Path
) -> None:
    async def seed() -> None:
        async with open_store(sqlite_url) as store:
            await store.append("a", [SessionCreated(title="gone")])
            await store.append("b", [SessionCreated(), RunStarted(run_id="r", prompt="x")])

    asyncio.run(seed())
    done = agentlog(["delete", "a"], sqlite_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "deleted session a: 1 events removed, tombstone at seq 2\n"
    again, refused = agentlog_many([["delete", "a"], ["delete", "b"]], sqlite_url, tmp_path)
    assert again.returncode == 1 and "already deleted" in again.stderr
    assert refused.returncode == 1 and "active run (r)" in refused.stderr
    forced = agentlog(["delete", "b", "--force"], sqlite_url, tmp_path)
    assert forced.returncode == 0, forced.stderr
    listed, verified = agentlog_many([["sessions", "--json"], ["verify"]], sqlite_url, tmp_path)
    assert listed.stdout == ""
    assert verified.returncode == 0, verified.stdout + verified.stderr
