"""A fork continues on any instance: two `agentlog serve` processes on one PostgreSQL database
(no Redis: the run lease and wake-ups are the database's), each with its own workspace root as
two hosts would have. The session runs two turns on A, is forked at the end of turn 1 on A,
and the fork's next turn runs on B: its agent sees turn 1 and not turn 2, while the source,
continued on B too, sees both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentlog.infra.store.opening import open_store
from agentlog.projections import ui_messages
from tests.e2e.test_cli_inspect import agentlog
from tests.e2e.test_runs_http import create_session, get_json, run_ended, start_run
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

ASKED = "What number did I ask you to remember?"


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def start(
    servers: list[ServerProcess], tmp_path: Path, postgres_url: str, host: str
) -> ServerProcess:
    env = {
        "AGENTLOG_DATABASE_URL": postgres_url,
        "AGENTLOG_AGENT": "scripted",
        "AGENTLOG_WORKSPACE_DIR": str(tmp_path / host / "workspaces"),
        "TMPDIR": str(tmp_path),
    }
    server = ServerProcess(tmp_path, env).start()
    servers.append(server)
    return server


async def turn(http: aiohttp.ClientSession, base: str, session_id: str, prompt: str) -> str:
    """Run one turn on `base` to its end; the agent's answer."""
    run_id = await start_run(http, base, session_id, prompt)
    ended = await run_ended(http, base, session_id, run_id, timeout=90)
    assert ended["type"] == "run_finished", ended
    # The lease outlives the terminal event by the CLI's exit: wait for it to be released.
    async with asyncio.timeout(30):
        while (await get_json(http, f"{base}/v1/sessions/{session_id}"))["active_run"]:
            await asyncio.sleep(0.1)
    return str(ended["result"])


async def test_a_fork_made_on_one_instance_continues_on_another(
    postgres_url: str, servers: list[ServerProcess], tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    a = start(servers, tmp_path, postgres_url, "a")
    b = start(servers, tmp_path, postgres_url, "b")
    source = await create_session(http, a.url)
    assert await turn(http, a.url, source, "Please remember the number 42") == (
        "Got it - I'll remember the number 42."
    )
    end_of_turn_1 = (await get_json(http, f"{a.url}/v1/sessions/{source}"))["head"]
    assert await turn(http, a.url, source, "Please remember the number 7") == (
        "Got it - I'll remember the number 7."
    )

    fork_id = source + "-fork"
    async with http.post(
        f"{a.url}/v1/sessions/{source}/fork", json={"at_seq": end_of_turn_1, "id": fork_id}
    ) as response:
        made: dict[str, Any] = await response.json()
        assert response.status == 201, made
    assert (made["id"], made["head"]) == (fork_id, end_of_turn_1 + 1)

    # B shows the fork's messages as the source's were at the fork point.
    async with open_store(postgres_url) as store:
        at_fork = (await store.read_session(source))[:end_of_turn_1]
    expected = ui_messages.to_ui_messages(ui_messages.fold(at_fork), run_active=False)
    assert (await get_json(http, f"{b.url}/v1/sessions/{fork_id}/messages"))["messages"] == (
        expected
    )

    assert await turn(http, b.url, fork_id, ASKED) == "You asked me to remember the number 42."
    assert await turn(http, b.url, source, ASKED) == "You asked me to remember the number 7."
    # The source kept its own log; the fork's is its own too.
    async with open_store(postgres_url) as store:
        assert (await store.read_session(source))[:end_of_turn_1] == at_fork
        fork_events = await store.read_session(fork_id)
    assert [e.seq for e in fork_events] == list(range(1, len(fork_events) + 1))
    assert fork_events[end_of_turn_1].type == "session_forked"
    messages = (await get_json(http, f"{a.url}/v1/sessions/{fork_id}/messages"))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    verified = await asyncio.to_thread(agentlog, ["verify"], postgres_url, tmp_path)
    assert verified.returncode == 0, verified.stdout
