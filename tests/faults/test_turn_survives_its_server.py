"""kill -9 of the server running a turn, with one tool finished and one in flight, on SQLite,
PostgreSQL and PostgreSQL+Redis (issue 19: "a turn survives its server").

On PostgreSQL two `agentlog serve` processes share the database: the first runs the turn and is
killed; the second's sweeper finds the run's lease lapsed and continues the turn. On SQLite (one
server per file) the killed server is started again on the same file and continues it itself.
With no user action the turn then finishes: the finished tool is not run again (its side effect,
a line appended to a file in the workspace, is there once), the one in flight is reported to
the model as interrupted by a server restart and not run again, the log records the
continuation (`run_abandoned` of the dead run, then `run_started` with `continues_run_id` and
`resumed_after_crash`), the UI shows one assistant message, and `verify` finds nothing wrong."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentlog.domain.events import RunStarted
from agentlog.domain.rules.crash_continuation import CONTINUE_AFTER_CRASH_PROMPT
from agentlog.infra.agent.recovery.leftovers import agent_process_ids
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.opening import open_store
from agentlog.projections.ui_stream import continued_runs, run_chunks
from tests.e2e.test_runs_http import create_session, get_json, start_run, ui_stream_chunks
from tests.faults.conftest import database_env, start_server, start_two_servers
from tests.support.crash_drill import (
    DRILL_PROMPT,
    SLOW_TOOL,
    drill_env,
    side_effects,
    slow_tool_in_flight,
    turn_finished,
)
from tests.support.prometheus_text import parse
from tests.support.server import ServerProcess

LEASE_SECONDS = 2

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database", ["sqlite", "postgres", "postgres+redis"])
async def test_a_turn_goes_on_after_kill_9_of_its_server_with_a_tool_done_and_one_in_flight(
    database: str,
    request: pytest.FixtureRequest,
    servers: list[ServerProcess],
    tmp_path: Path,
) -> None:
    env = drill_env(LEASE_SECONDS, tmp_path / "workspaces")
    env |= database_env(database, request, tmp_path)
    first, survivor = await asyncio.to_thread(start_two_servers, database, servers, tmp_path, env)
    orphans: list[int] = []
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, asyncio.timeout(180):
            sid = await create_session(http, first.url)
            dead_run = await start_run(http, first.url, sid, DRILL_PROMPT)
            await slow_tool_in_flight(http, first.url, sid)
            following = None
            if survivor is not first:
                # A client following the turn's UI stream on the instance that survives.
                following = asyncio.create_task(_ui_stream(http, survivor.url, sid))
                await asyncio.sleep(0.5)
            first.kill()
            killed_at = time.monotonic()
            orphans += agent_process_ids(dead_run)
            if survivor is first:
                survivor = await asyncio.to_thread(start_server, servers, tmp_path, env)
            finished_at, events = await turn_finished(http, survivor.url, sid)
            print(f"\n{database}: the turn finished {finished_at - killed_at:.2f} s after kill -9")

            _assert_continued_once(events, dead_run)
            assert side_effects(tmp_path / "workspaces") == ["appended"]
            session = await get_json(http, f"{survivor.url}/v1/sessions/{sid}")
            assert session["status"] == "idle" and session["active_run"] is None, session
            messages = await get_json(http, f"{survivor.url}/v1/sessions/{sid}/messages")
            assistants = [m for m in messages["messages"] if m["role"] == "assistant"]
            assert [m["id"] for m in assistants] == [dead_run]
            assert [m["role"] for m in messages["messages"]] == ["user", "assistant"]
            assert assistants[0]["metadata"]["status"] == "finished"
            async with http.get(f"{survivor.url}/metrics") as response:
                family = parse(await response.text())["agentlog_runs_continued_after_crash_total"]
            assert [v for _, _, v in family.samples] == [1]
            if following is not None:
                # The live stream went on through the continuation: one message, one start.
                chunks = await following
                assert [c["messageId"] for c in chunks if c["type"] == "start"] == [dead_run]
                assert chunks[-1]["type"] == "finish" and chunks[-1]["finishReason"] == "stop"
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    async with open_store(env["AGENTLOG_DATABASE_URL"]) as store:
        report = await verify_log(store)
        recorded = await store.read_session(sid)
    assert report.problems == []
    _assert_one_ui_message(recorded, dead_run)


async def _ui_stream(http: aiohttp.ClientSession, base: str, sid: str) -> list[dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=120)
    async with http.get(f"{base}/v1/sessions/{sid}/stream", timeout=timeout) as response:
        assert response.status == 200, await response.text()
        chunks, _ = ui_stream_chunks(await response.read())
    return chunks


def _assert_continued_once(events: list[dict[str, Any]], dead_run: str) -> None:
    starts = [e for e in events if e["type"] == "run_started"]
    assert len(starts) == 2 and starts[0]["run_id"] == dead_run, starts
    continuation = starts[1]
    assert continuation["continues_run_id"] == dead_run
    assert continuation["resumed_after_crash"] == 1
    assert continuation["prompt"] == CONTINUE_AFTER_CRASH_PROMPT
    abandoned = [e for e in events if e["type"] == "run_abandoned"]
    assert [e["run_id"] for e in abandoned] == [dead_run]
    assert abandoned[0]["seq"] == continuation["seq"] - 1  # one append: nothing between
    # Each tool started once: the finished one was not run again, nor the interrupted one.
    calls = [e for e in events if e["type"] == "tool_call_started"]
    assert sorted(c["tool_name"] for c in calls) == ["Bash", SLOW_TOOL], calls
    slow = next(c for c in calls if c["tool_name"] == SLOW_TOOL)
    [slow_end] = [
        e
        for e in events
        if e.get("tool_call_id") == slow["tool_call_id"]
        and e["type"] in ("tool_call_succeeded", "tool_call_failed")
    ]
    assert slow_end["type"] == "tool_call_failed" and slow_end["interrupted"] is True
    assert slow_end["error_text"].startswith("interrupted by a server restart")
    # The model was told, and said so in the turn's answer.
    [finished] = [e for e in events if e["type"] == "run_finished"]
    assert finished["run_id"] == continuation["run_id"]
    assert "interrupted by a server restart" in finished["result"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def _assert_one_ui_message(recorded: list[Any], dead_run: str) -> None:
    """The AI SDK stream of the continuation, replayed from the session's start (offset 0),
    builds one assistant message: one `start`, with the dead run's id as the message id."""
    [continuation] = [
        r.event.run_id
        for r in recorded
        if isinstance(r.event, RunStarted) and r.event.continues_run_id == dead_run
    ]
    earlier = continued_runs(recorded, continuation)
    assert earlier == [dead_run]
    chunks = run_chunks(recorded, continuation, earlier=earlier)
    starts = [c for c in chunks if c["type"] == "start"]
    assert starts == [{**starts[0], "messageId": dead_run}] and len(starts) == 1
    assert chunks[-1]["type"] == "finish" and chunks[-1]["finishReason"] == "stop"
