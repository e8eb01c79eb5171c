"""The projections over HTTP, through the real app: UI messages with hydration, and rebuilds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agentlog.domain.events import (
    CustomEventRecorded,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionCreated,
    TextDelta,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.run.runner import AgentRunner
from agentlog.infra.local.run_lock import LocalRunLock
from agentlog.infra.store.base import StoreBase
from agentlog.projections.ui_messages import INTERRUPTED
from agentlog.transport.app import create_app
from agentlog.transport.http.projections import RunIsActive, lock_says_running, summary_says_running
from agentlog.transport.keys import AGENT_RUNS, PROJECTOR
from agentlog.transport.settings import Settings
from tests.integration.projection_helpers import a_run

# `store` comes before `aiohttp_client` in every test: fixtures close in reverse, so the app
# (and its projector) stops before the store it reads closes.
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


async def start(
    aiohttp_client: Client,
    store: StoreBase,
    run_is_active: RunIsActive | Callable[[web.Application], RunIsActive] | None = None,
) -> TestClient[Any, Any]:
    # A runner of our own, which never starts a run: the app then runs no sweeper, which would
    # (rightly) record the runs these tests write by hand, with no lock held, as abandoned.
    runner = AgentRunner(store, LocalRunLock(), AgentConfig(), base_url="http://127.0.0.1:9")
    chosen: list[RunIsActive] = []

    async def decide(session_id: str) -> bool:
        return await chosen[0](session_id)

    app = create_app(Settings(), store=store, runner=runner, run_is_active=decide)
    if run_is_active is lock_says_running:
        chosen.append(lock_says_running(app))
    elif run_is_active is None:
        chosen.append(lambda sid: summary_says_running(app[PROJECTOR])(sid))
    else:
        chosen.append(run_is_active)  # type: ignore[arg-type]
    return await aiohttp_client(app)


async def a_session_with_a_waiting_tool(store: StoreBase) -> None:
    await store.append(
        "s",
        [
            SessionCreated(title="t"),
            RunStarted(run_id="r", prompt="list files"),
            ToolCallStarted(run_id="r", tool_call_id="a", tool_name="Bash", input={"c": "ls"}),
            ToolCallStarted(run_id="r", tool_call_id="b", tool_name="Read", input={"p": "x"}),
            ToolCallSucceeded(run_id="r", tool_call_id="b", output="text"),
        ],
    )


def tool_parts(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        part["toolCallId"]: part
        for message in body["messages"]
        for part in message["parts"]
        if "toolCallId" in part
    }


async def test_without_an_active_run_a_waiting_tool_is_shown_interrupted(
    store: StoreBase, aiohttp_client: Client
) -> None:
    await a_session_with_a_waiting_tool(store)
    client = await start(aiohttp_client, store, run_is_active=_never)
    response = await client.get("/v1/sessions/s/messages")
    assert response.status == 200
    body = await response.json()
    assert (body["session_id"], body["head"], body["run_active"]) == ("s", 5, False)
    parts = tool_parts(body)
    assert parts["a"] == {
        "type": "tool-Bash",
        "toolCallId": "a",
        "state": "output-error",
        "input": {"c": "ls"},
        "errorText": INTERRUPTED,
    }
    assert parts["b"]["state"] == "output-available"
    # Computed in the read: the log is not rewritten.
    assert [e.seq for e in await store.read("s")] == [1, 2, 3, 4, 5]


async def test_while_a_run_is_active_waiting_tools_stay_waiting(
    store: StoreBase, aiohttp_client: Client
) -> None:
    await a_session_with_a_waiting_tool(store)
    asked: list[str] = []

    async def always(session_id: str) -> bool:
        asked.append(session_id)
        return True

    client = await start(aiohttp_client, store, run_is_active=always)
    body = await (await client.get("/v1/sessions/s/messages")).json()
    assert body["run_active"] is True and asked == ["s"]
    assert tool_parts(body)["a"]["state"] == "input-available"


async def test_by_default_a_run_is_active_until_its_terminal_event(
    store: StoreBase, aiohttp_client: Client
) -> None:
    await a_session_with_a_waiting_tool(store)
    client = await start(aiohttp_client, store)
    body = await (await client.get("/v1/sessions/s/messages")).json()
    assert body["run_active"] is True
    assert tool_parts(body)["a"]["state"] == "input-available"

    await store.append("s", [RunFailed(run_id="r", error="the agent process died")])
    body = await (await client.get("/v1/sessions/s/messages")).json()
    assert (body["run_active"], body["head"]) == (False, 6)
    assert tool_parts(body)["a"]["state"] == "output-error"
    assert body["messages"][-1]["metadata"]["status"] == "failed"


async def test_with_the_runner_a_run_is_active_while_its_lock_is_held(
    store: StoreBase, aiohttp_client: Client
) -> None:
    await a_session_with_a_waiting_tool(store)
    client = await start(aiohttp_client, store, run_is_active=lock_says_running)
    lock = client.app[AGENT_RUNS].lock
    lease = await lock.acquire("s", "r", 60_000)
    assert lease is not None
    body = await (await client.get("/v1/sessions/s/messages")).json()
    assert (body["run_active"], tool_parts(body)["a"]["state"]) == (True, "input-available")

    # The process driving it died: its lock is gone, and no terminal event was written yet.
    await lock.release(lease)
    body = await (await client.get("/v1/sessions/s/messages")).json()
    assert (body["run_active"], tool_parts(body)["a"]["state"]) == (False, "output-error")
    assert body["head"] == 5


async def test_messages_include_every_event_appended_before_the_request(
    store: StoreBase, aiohttp_client: Client
) -> None:
    client = await start(aiohttp_client, store)
    await store.append("s", [SessionCreated(), RunStarted(run_id="r", prompt="p")])
    for i in range(5):
        await store.append(
            "s", [TextDelta(run_id="r", message_id="m", block_index=0, delta=f"{i}")]
        )
        body = await (await client.get("/v1/sessions/s/messages")).json()
        assert body["head"] == 3 + i
        assert body["messages"][-1]["parts"][-1]["text"] == "".join(map(str, range(i + 1)))


async def test_messages_page_newest_first_in_chronological_order(
    store: StoreBase, aiohttp_client: Client
) -> None:
    client = await start(aiohttp_client, store)
    await store.append("s", [SessionCreated()])
    for n in range(3):  # a run's user and assistant messages, then a standalone custom one
        await store.append(
            "s",
            [
                RunStarted(run_id=f"r{n}", prompt=f"p{n}"),
                RunFinished(run_id=f"r{n}", result="ok"),
                CustomEventRecorded(name="note", data={"n": n}),
            ],
        )
    whole = await (await client.get("/v1/sessions/s/messages")).json()
    assert "before" not in whole  # unpaged: the shape as before
    everything = [m["id"] for m in whole["messages"]]
    assert len(everything) == 9

    loaded: list[dict[str, Any]] = []
    query = "limit=4"
    while True:
        page = await (await client.get(f"/v1/sessions/s/messages?{query}")).json()
        assert len(page["messages"]) <= 4 and page["head"] == whole["head"]
        loaded = page["messages"] + loaded  # a page goes before what is loaded
        if page["before"] is None:
            break
        assert page["before"] == page["messages"][0]["id"]
        query = f"limit=4&before={page['before']}"
    assert loaded == whole["messages"]

    newest = await (await client.get("/v1/sessions/s/messages?before=" + everything[-1])).json()
    assert [m["id"] for m in newest["messages"]] == everything[:-1]  # limit defaults to 100
    assert newest["before"] is None


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=1001", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("limit=-1", "invalid_limit"),
        ("before=", "invalid_before"),
        ("before=no-such-message", "invalid_before"),
        ("limit=2&before=no-such-message", "invalid_before"),
    ],
)
async def test_a_bad_page_is_a_400_in_json(
    store: StoreBase, aiohttp_client: Client, query: str, code: str
) -> None:
    client = await start(aiohttp_client, store)
    await store.append("s", [SessionCreated(), CustomEventRecorded(name="note")])
    response = await client.get(f"/v1/sessions/s/messages?{query}")
    assert (response.status, (await response.json())["error"]["code"]) == (400, code)


async def test_an_unknown_session_is_a_404_in_json(
    store: StoreBase, aiohttp_client: Client
) -> None:
    client = await start(aiohttp_client, store)
    response = await client.get("/v1/sessions/nobody/messages")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "unknown_session"


async def test_the_projector_runs_in_the_background(
    store: StoreBase, aiohttp_client: Client
) -> None:
    client = await start(aiohttp_client, store)
    await store.append("s", [SessionCreated(), *a_run("r")])
    projections = client.app[PROJECTOR].projections
    async with asyncio.timeout(5):
        while (await projections.checkpoint()).position < await store.last_position():
            await asyncio.sleep(0.01)
    assert (await projections.read_summary("s")) is not None


async def test_rebuild_replays_everything_or_one_session(
    store: StoreBase, aiohttp_client: Client
) -> None:
    await store.append("a", [SessionCreated(), *a_run("r1")])
    await store.append("b", [SessionCreated()])
    client = await start(aiohttp_client, store)
    before = await (await client.get("/v1/sessions/a/messages")).json()

    response = await client.post("/v1/admin/projections/rebuild", json={})
    assert response.status == 200
    body = await response.json()
    assert (body["events"], body["sessions"]) == (len(a_run("r1")) + 2, 2)
    assert body["seconds"] >= 0

    response = await client.post("/v1/admin/projections/rebuild", json={"session_id": "a"})
    assert response.status == 200
    body = await response.json()
    assert (body["session_id"], body["events"], body["sessions"]) == ("a", 1 + len(a_run("r1")), 1)
    assert await (await client.get("/v1/sessions/a/messages")).json() == before


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ('{"session_id": "nobody"}', 404, "unknown_session"),
        ("not json", 400, "invalid_body"),
        ("[]", 400, "invalid_body"),
        ('{"session_id": 7}', 400, "invalid_body"),
        ('{"session": "a"}', 400, "invalid_body"),
        ('{"session_id": ""}', 400, "invalid_body"),
    ],
)
async def test_rebuild_refuses_a_bad_body(
    store: StoreBase, aiohttp_client: Client, data: str, status: int, code: str
) -> None:
    await store.append("a", [SessionCreated()])
    client = await start(aiohttp_client, store)
    response = await client.post(
        "/v1/admin/projections/rebuild", data=data, headers={"Content-Type": "application/json"}
    )
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def _never(session_id: str) -> bool:
    return False
