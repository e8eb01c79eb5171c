"""SIGTERM of the server running a turn, with one tool finished and one in flight, on SQLite
and PostgreSQL (issue 19: a deploy or restart is like a crash, but cleaner).

With crash continuation on (the default), a graceful shutdown does not cancel the turn: the
server stops the CLI, records nothing more for the run and releases its lease, so the run is
left open as a crash leaves it, without a lease to wait out. On PostgreSQL the other of two
servers continues it at its next sweep; on SQLite the server started again on the same file
continues it at start-up. With no user action the turn then finishes exactly as after kill -9
(tests/faults/test_turn_survives_its_server.py): one continuation, the finished tool not run
again, the one in flight reported as interrupted, one assistant message on a follower's
stream, and `verify` finds nothing wrong."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.opening import open_run_lock, open_store
from tests.e2e.test_runs_http import all_events, create_session, get_json, start_run
from tests.faults.conftest import database_env, start_server
from tests.faults.test_turn_survives_its_server import (
    _assert_continued_once,
    _assert_one_ui_message,
    _ui_stream,
)
from tests.support.crash_drill import (
    DRILL_PROMPT,
    drill_env,
    side_effects,
    slow_tool_in_flight,
    turn_finished,
)
from tests.support.server import ServerProcess

# Far longer than a shutdown and a look at the lock take: a lease that was not released would
# still be held when the test looks, and no sweep could take the run over.
LEASE_SECONDS = 30

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_turn_goes_on_after_sigterm_of_its_server_with_a_tool_done_and_one_in_flight(
    database: str,
    request: pytest.FixtureRequest,
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    env = drill_env(LEASE_SECONDS, tmp_path / "workspaces")
    env |= database_env(database, request, tmp_path)
    url = env["AGENTLOG_DATABASE_URL"]
    survivor = None
    if database != "sqlite":
        # Started first, it most likely runs the deployment's sweeper (either way works: the
        # sweeper's own lease is released at shutdown too, and taken over within a quarter TTL).
        survivor = await asyncio.to_thread(start_server, servers, tmp_path, env)
    first = await asyncio.to_thread(start_server, servers, tmp_path, env)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http, asyncio.timeout(180):
        sid = await create_session(http, first.url)
        dead_run = await start_run(http, first.url, sid, DRILL_PROMPT)
        await slow_tool_in_flight(http, first.url, sid)
        following = None
        if survivor is not None:
            following = asyncio.create_task(_ui_stream(http, survivor.url, sid))
            await asyncio.sleep(0.5)
        signalled = time.monotonic()
        assert await asyncio.to_thread(first.terminate, 60) == 0
        print(f"\n{database}: the server exited {time.monotonic() - signalled:.2f} s after SIGTERM")
        assert agent_process_ids(dead_run) == []  # the CLI was stopped, not left behind

        async with open_store(url) as store:
            if survivor is None:
                # Nothing more was recorded for the run: no cancel, no end, its call in flight.
                left = await store.read_session(sid)
                assert {r.type for r in left} & {"run_cancelled", "run_finished"} == set()
                assert (await store.run(sid, dead_run)).ended_seq is None  # type: ignore[union-attr]
            else:
                # Released, not left to expire: nobody holds it, or already the continuation.
                lock = await open_run_lock(store)
                try:
                    assert await lock.holder(sid) != dead_run
                finally:
                    await lock.close()

        if survivor is None:
            survivor = await asyncio.to_thread(start_server, servers, tmp_path, env)
        finished_at, events = await turn_finished(http, survivor.url, sid)
        print(f"{database}: the turn finished {finished_at - signalled:.2f} s after SIGTERM")

        assert [e for e in events if e["type"] == "run_cancelled"] == []
        _assert_continued_once(events, dead_run)
        assert side_effects(tmp_path / "workspaces") == ["appended"]
        messages = await get_json(http, f"{survivor.url}/v1/sessions/{sid}/messages")
        assert [m["role"] for m in messages["messages"]] == ["user", "assistant"]
        assert messages["messages"][1]["id"] == dead_run
        if following is not None:
            # The live stream went on through the continuation: one message, one start.
            chunks = await following
            assert [c["messageId"] for c in chunks if c["type"] == "start"] == [dead_run]
            assert chunks[-1]["type"] == "finish" and chunks[-1]["finishReason"] == "stop"
        assert events == await all_events(http, survivor.url, sid)
    async with open_store(url) as store:
        report = await verify_log(store)
        recorded = await store.read_session(sid)
    assert report.problems == []
    _assert_one_ui_message(recorded, dead_run)
