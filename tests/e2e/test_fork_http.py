"""POST /v1/sessions/{id}/fork and `agentlog fork` through the real app on SQLite: a fork of a
real two-turn conversation continues from the fork point (the scripted model says what it
was asked to remember), every refusal is a precise JSON 4xx with the log untouched, and only
the API token may fork."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.events import (
    RunFinished,
    RunStarted,
    SessionCreated,
    SessionForked,
    ToolApprovalRequested,
    ToolCallStarted,
)
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.agent.transcripts.conversion import agent_session_id
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.projections import ui_messages
from agentlog.transport.app import create_app
from agentlog.transport.middleware.session_tokens import mint, signing_key
from agentlog.transport.settings import Settings
from tests.e2e.test_cli_inspect import agentlog
from tests.integration.test_forking import a_turn

ClientFactory = Callable[..., Awaitable[TestClient]]
API = {"Authorization": "Bearer api-t"}


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    agent = AgentConfig(workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes")
    return Settings(agent=agent, **overrides)


async def error_of(response: Any) -> tuple[int, dict[str, Any]]:
    body = await response.json()
    return response.status, body["error"]


async def run_turn(client: TestClient, session_id: str, prompt: str) -> RunFinished:
    """Start a run and wait for its terminal event; its result."""
    response = await client.post(f"/v1/sessions/{session_id}/runs", json={"prompt": prompt})
    started = await response.json()
    assert response.status == 202, started
    async with asyncio.timeout(90):
        while True:
            page = await (
                await client.get(
                    f"/v1/sessions/{session_id}/events?offset={started['offset']}&limit=5000"
                )
            ).json()
            for event in page["events"]:
                ours = event["run_id"] == started["run_id"]
                if ours and event["type"].startswith("run_") and event["type"] != "run_started":
                    assert event["type"] == "run_finished", event
                    # Then the lock is released (the next start is not refused).
                    while (await (await client.get(f"/v1/sessions/{session_id}")).json())[
                        "active_run"
                    ]:
                        await asyncio.sleep(0.05)
                    return RunFinished(result=event["result"])
            await asyncio.sleep(0.1)


SOURCE_AGENT = agent_session_id("src")


async def test_a_fork_continues_from_its_point_and_the_source_goes_on_with_both_turns(
    aiohttp_client: ClientFactory, store: StoreBase, tmp_path: Path, sqlite_url: str
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path), store=store))
    assert (await client.post("/v1/sessions", json={"id": "src", "title": "t"})).status == 201
    first = await run_turn(client, "src", "Please remember the number 42")
    end_of_turn_1 = await store.head("src")
    second = await run_turn(client, "src", "Please remember the number 7")
    assert (first.result, second.result) == (
        "Got it - I'll remember the number 42.",
        "Got it - I'll remember the number 7.",
    )
    source_events = await store.read_session("src")
    source_messages = (await (await client.get("/v1/sessions/src/messages")).json())["messages"]

    response = await client.post("/v1/sessions/src/fork", json={"at_seq": end_of_turn_1})
    fork = await response.json()
    assert response.status == 201, fork
    assert response.headers["Location"] == f"/v1/sessions/{fork['id']}"
    assert (fork["head"], fork["status"], fork["runs"]) == (end_of_turn_1 + 1, "idle", 1)
    # Its usage counts the runs made in the fork only (the source paid for the copied one);
    # it was created when it was forked.
    assert (fork["usage"]["runs"], fork["usage"]["cost_usd"]) == (0, 0)
    assert datetime.fromisoformat(fork["created_at"]) > source_events[-1].time
    at_n = ui_messages.to_ui_messages(
        ui_messages.fold(source_events[:end_of_turn_1]), run_active=False
    )
    forked_messages = (await (await client.get(f"/v1/sessions/{fork['id']}/messages")).json())[
        "messages"
    ]
    assert forked_messages == at_n
    assert [m["id"] for m in forked_messages] == [m["id"] for m in source_messages[:2]]
    [forked] = [r.event for r in await store.read_session(fork["id"]) if r.type == "session_forked"]
    assert isinstance(forked, SessionForked)
    assert (forked.from_session_id, forked.at_seq) == ("src", end_of_turn_1)
    # Its agent's transcript: the CLI's own lines of turn 1, copied from the source's.
    stored = LogSessionStore(store)
    source_lines = [
        e
        for e in await stored.load({"project_key": RUNNER_PROJECT_KEY, "session_id": SOURCE_AGENT})
        or []
        if "uuid" in e
    ]
    fork_lines = await stored.load(
        {"project_key": RUNNER_PROJECT_KEY, "session_id": forked.agent_session}
    )
    assert fork_lines
    assert [e["uuid"] for e in fork_lines] == [e["uuid"] for e in source_lines[: len(fork_lines)]]
    assert {e["sessionId"] for e in fork_lines} == {forked.agent_session}
    next_line = source_lines[len(fork_lines)]
    assert next_line["message"]["content"] == "Please remember the number 7"

    # The fork's agent saw turn 1 and not turn 2; the source's saw both.
    asked = "What number did I ask you to remember?"
    assert (await run_turn(client, fork["id"], asked)).result == (
        "You asked me to remember the number 42."
    )
    assert (await run_turn(client, "src", asked)).result == (
        "You asked me to remember the number 7."
    )
    # A fork whose transcript was never written (its process died right after the log): its
    # first run builds it from the fork's own log.
    crashed = await client.post("/v1/sessions/src/fork", json={"at_seq": end_of_turn_1})
    crashed_id = (await crashed.json())["id"]
    assert await LogSessionStore(store).delete_session(crashed_id) > 0
    assert (await run_turn(client, crashed_id, asked)).result == (
        "You asked me to remember the number 42."
    )
    after = await (await client.get(f"/v1/sessions/{fork['id']}")).json()
    assert (after["runs"], after["usage"]["runs"]) == (2, 1)
    # The source's log before the fork is as it was.
    assert (await store.read_session("src"))[: len(source_events)] == source_events
    # Dense seqs, every call and run ended once, projections equal to a fresh fold.
    verified = await asyncio.to_thread(agentlog, ["verify"], sqlite_url, tmp_path)
    assert verified.returncode == 0, verified.stdout


async def test_refused_forks_answer_precise_json_errors_and_write_nothing(
    aiohttp_client: ClientFactory, store: StoreBase, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path), store=store))
    await store.append("src", [SessionCreated()])
    turn = await store.append("src", a_turn("r1", "hello", "hi"))
    head = turn[-1]
    await store.append("asks", [SessionCreated()])
    asked = await store.append(
        "asks",
        [
            RunStarted(run_id="ra", prompt="publish"),
            ToolCallStarted(run_id="ra", tool_call_id="c1", tool_name="mcp__demo__publish"),
            ToolApprovalRequested(
                run_id="ra", approval_id="ap1", tool_call_id="c1", tool_name="mcp__demo__publish"
            ),
            RunFinished(run_id="ra", result="", deferred_tool_call_id="c1"),
        ],
    )
    for sid in ("taken", "gone", "gone-source"):
        assert (await client.post("/v1/sessions", json={"id": sid})).status == 201
    for sid in ("gone", "gone-source"):
        assert (await client.delete(f"/v1/sessions/{sid}")).status == 200
    position = await store.last_position()
    listed = await (await client.get("/v1/sessions")).json()

    cases: list[tuple[str, Any, int, str]] = [
        ("src", {"at_seq": 0}, 422, "invalid_at_seq"),
        ("src", {"at_seq": head + 1}, 422, "invalid_at_seq"),
        ("src", {"at_seq": turn[0] + 1}, 409, "fork_inside_run"),
        ("asks", {"at_seq": asked[-1]}, 409, "fork_approval_pending"),
        ("nobody", {"at_seq": 1}, 404, "unknown_session"),
        ("gone-source", {"at_seq": 1}, 410, "session_deleted"),
        ("src", {"at_seq": head, "id": "taken"}, 409, "session_exists"),
        ("src", {"at_seq": head, "id": "gone"}, 409, "session_exists"),
        ("src", {"at_seq": head, "id": "no spaces"}, 400, "invalid_session_id"),
        ("src", {"at_seq": head, "id": ""}, 400, "invalid_session_id"),
        ("src", {}, 400, "invalid_body"),
        ("src", {"at_seq": "3"}, 400, "invalid_body"),
        ("src", {"at_seq": 1.5}, 400, "invalid_body"),
        ("src", {"at_seq": head, "title": "x"}, 400, "invalid_body"),
    ]
    for source, body, status, code in cases:
        response = await client.post(f"/v1/sessions/{source}/fork", json=body)
        got_status, error = await error_of(response)
        assert (got_status, error["code"]) == (status, code), (source, body, error)
        assert error["message"]
    inside = await client.post("/v1/sessions/src/fork", json={"at_seq": turn[0] + 1})
    assert (await inside.json())["error"] | {"message": ""} == {
        "code": "fork_inside_run",
        "message": "",
        "session_id": "src",
        "at_seq": turn[0] + 1,
        "run_id": "r1",
        "run_started_seq": turn[0],
        "run_ended_seq": head,
        "fork_before": turn[0] - 1,
        "fork_from": head,
    }
    waiting = await (await client.post("/v1/sessions/asks/fork", json={"at_seq": asked[-1]})).json()
    assert waiting["error"]["approval_ids"] == ["ap1"]
    not_json = await client.post(
        "/v1/sessions/src/fork", data=b'{"at_seq": 1}', headers={"Content-Type": "text/plain"}
    )
    assert not_json.status == 415
    assert await store.last_position() == position
    assert await (await client.get("/v1/sessions")).json() == listed
    # A fractionless float is an integer, as JSON Schema has it; the same request again is 200.
    made = await client.post("/v1/sessions/src/fork", json={"at_seq": float(head), "id": "f"})
    assert made.status == 201
    again = await client.post("/v1/sessions/src/fork", json={"at_seq": head, "id": "f"})
    assert again.status == 200 and (await again.json())["id"] == "f"
    assert await store.head("f") == head + 1


async def test_only_the_api_token_forks_a_session_token_gets_403(
    aiohttp_client: ClientFactory, store: StoreBase, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, api_token="api-t"), store=store))
    assert (await client.post("/v1/sessions", json={"id": "src"}, headers=API)).status == 201
    key = signing_key("api-t")
    assert key is not None
    body = {"at_seq": 1}
    assert (await client.post("/v1/sessions/src/fork", json=body)).status == 401
    for scope in ("read", "write"):
        token, _ = mint(key, "src", scope, 60)
        refused = await client.post(
            "/v1/sessions/src/fork", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        status, error = await error_of(refused)
        assert (status, error["code"]) == (403, "forbidden")
        assert "creates a session" in error["message"]
    assert await store.session("src") is not None
    assert [s.session_id for s in await store.sessions()] == ["src"]
    made = await client.post("/v1/sessions/src/fork", json=body, headers=API)
    assert made.status == 201, await made.text()


def test_agentlog_fork_forks_like_the_route_and_refuses_in_one_line(
    sqlite_url: str, tmp_path: Path
) -> None:
    async def fill() -> int:
        async with open_store(sqlite_url) as store:
            await store.append("src", [SessionCreated()])
            return (await store.append("src", a_turn("r1", "hello", "hi")))[-1]

    head = asyncio.run(fill())
    done = agentlog(["fork", "src", "--at", str(head), "--id", "copy"], sqlite_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"forked session src at seq {head} as copy: {head} events copied "
        f"(seqs 1-{head}), session_forked at seq {head + 1}\n"
    )
    inside = agentlog(["fork", "src", "--at", "3", "--id", "other"], sqlite_url, tmp_path)
    assert inside.returncode == 1
    assert inside.stderr.startswith("agentlog: seq 3 of session 'src' is inside run 'r1'")
    assert len(inside.stderr.splitlines()) == 1
    for args, says in [
        (["fork", "nobody", "--at", "1"], "does not exist"),
        (["fork", "src", "--at", "1", "--id", "copy"], "already exists"),
        (["fork", "src", "--at", "1", "--id", "bad id"], "a session id is"),
        (["fork", "src", "--at", "99"], "is not a seq of session"),
    ]:
        refused = agentlog(args, sqlite_url, tmp_path)
        assert refused.returncode == 1 and says in refused.stderr, (args, refused.stderr)

    async def sessions() -> list[str]:
        async with open_store(sqlite_url) as store:
            return [s.session_id for s in await store.sessions()]

    assert asyncio.run(sessions()) == ["copy", "src"]
