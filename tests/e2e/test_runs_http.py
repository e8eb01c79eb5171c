"""Agent runs over HTTP, against real `agentlog serve` processes, as a client sees them.

Every run is the real SDK and CLI against the scripted model on loopback. The tests speak
HTTP only (plus redis-py, once, to look at the run lock's key): they start runs, follow the
log as SSE, read the AI SDK UI message stream, and kill, restart or SIGTERM the server in the
middle of a run. Each test is bounded by `asyncio.timeout`, so nothing can hang the suite.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentlog.infra.agent.run.runner import agent_process_ids
from tests.e2e.test_ai_sdk_client import ai_sdk, assert_same_message  # noqa: F401 - a fixture
from tests.support.ai_sdk_client import as_projected, resume
from tests.support.server import ServerProcess
from tests.support.sse_client import SseEvent, SseParser

pytestmark = pytest.mark.slow

SSE = {"Accept": "text/event-stream"}
PARALLEL_PROMPT = "Add 2 and 3 and read /definitely/missing.txt"
SLOW_TOOL = "mcp__demo__slow_op"
TOOL_TERMINALS = ("tool_call_succeeded", "tool_call_failed", "tool_call_denied")
RUN_TERMINALS = ("run_finished", "run_failed", "run_cancelled", "run_abandoned")


def long_prompt(seconds: float) -> str:
    return f"[scenario:long-tool] Run the slow operation for {seconds:g} seconds"


# -- servers -----------------------------------------------------------------------------------


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def orphans() -> Iterator[list[int]]:
    """Agent CLI processes a kill -9 left without their server: nothing reaps them (they
    outlive the test run), so the test that made them kills them."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start(
    servers: list[ServerProcess], tmp_path: Path, env: dict[str, str], port: int | None = None
) -> ServerProcess:
    env = {
        "AGENTLOG_AGENT": "scripted",
        "AGENTLOG_WORKSPACE_DIR": str(tmp_path / "workspaces"),
        "TMPDIR": str(tmp_path),  # the runs' temporary HOMEs, left behind by kill -9
        **env,
    }
    server = ServerProcess(tmp_path, env, port).start()
    servers.append(server)
    return server


# -- HTTP helpers --------------------------------------------------------------------------------


async def create_session(http: aiohttp.ClientSession, base: str) -> str:
    session_id = "s-" + uuid.uuid4().hex  # unique: Redis is shared with every other test
    async with http.post(f"{base}/v1/sessions", json={"id": session_id}) as response:
        assert response.status == 201, await response.text()
    return session_id


async def start_run(http: aiohttp.ClientSession, base: str, session_id: str, prompt: str) -> str:
    async with http.post(
        f"{base}/v1/sessions/{session_id}/runs", json={"prompt": prompt}
    ) as response:
        body = await response.json()
        assert response.status == 202, body
    assert body["offset"] >= 1
    return str(body["run_id"])


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def all_events(
    http: aiohttp.ClientSession, base: str, session_id: str
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = await get_json(
            http,
            f"{base}/v1/sessions/{session_id}/events?offset={len(events)}&limit=5000",
        )
        events += page["events"]
        if not page["events"]:
            return events


async def wait_until(
    check: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll the async `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def run_ended(
    http: aiohttp.ClientSession, base: str, session_id: str, run_id: str, timeout: float = 30
) -> dict[str, Any]:
    """The run's terminal event, once the log has it."""

    async def terminal() -> dict[str, Any] | None:
        events = await all_events(http, base, session_id)
        return next(
            (e for e in events if e["run_id"] == run_id and e["type"] in RUN_TERMINALS), None
        )

    return dict(await wait_until(terminal, timeout, what=f"the end of {run_id}"))


async def follow(
    http: aiohttp.ClientSession,
    url: str,
    received: list[SseEvent],
    until: Callable[[SseEvent], bool],
) -> None:
    """Follow SSE, resuming after the last event in `received` (Last-Event-ID, as EventSource
    does), until an event satisfies `until`. Each connection parses afresh: a frame the last
    one cut is not delivered, and is sent again after the Last-Event-ID."""
    parser = SseParser()
    headers = dict(SSE)
    if received:
        headers["Last-Event-ID"] = str(received[-1].id)
    decoder = codecs.getincrementaldecoder("utf-8")()
    async with http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        async for chunk in response.content.iter_any():
            for event in parser.feed(decoder.decode(chunk)):
                received.append(event)
                if until(event):
                    return
    raise AssertionError("the stream ended before the awaited event")


def seqs_of(events: list[SseEvent]) -> list[int]:
    return [int(e.id) for e in events if e.id is not None]


def ends_run(run_id: str, *types: str) -> Callable[[SseEvent], bool]:
    types = types or RUN_TERMINALS

    def check(event: SseEvent) -> bool:
        data = event.json()
        return bool(data["run_id"] == run_id and data["type"] in types)

    return check


def assistant_message(messages: dict[str, Any], run_id: str) -> dict[str, Any]:
    return next(m for m in messages["messages"] if m["id"] == run_id)


def tool_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in message["parts"] if "toolCallId" in p]


def ui_stream_chunks(body: bytes) -> tuple[list[dict[str, Any]], int]:
    """The chunks of an AI SDK UI message stream and its keep-alive count. Every frame must
    be one `data:` line or a comment, and the stream must end with `data: [DONE]`."""
    text = body.decode()
    assert text.endswith("data: [DONE]\n\n"), text[-300:]
    chunks: list[dict[str, Any]] = []
    comments = 0
    for frame in text.split("\n\n")[:-1]:
        lines = frame.split("\n")
        if all(line.startswith(":") for line in lines):
            comments += 1
            continue
        assert len(lines) == 1 and lines[0].startswith("data: "), frame
        if lines[0] == "data: [DONE]":
            continue
        chunks.append(json.loads(lines[0][len("data: ") :]))
    assert text.count("data: [DONE]") == 1
    return chunks, comments


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- 1. a scripted run end to end ---------------------------------------------------------------


async def test_a_scripted_run_end_to_end(
    servers: list[ServerProcess], tmp_path: Path, sqlite_url: str, http: aiohttp.ClientSession
) -> None:
    server = start(servers, tmp_path, {"AGENTLOG_DATABASE_URL": sqlite_url})
    async with asyncio.timeout(60):
        sid = await create_session(http, server.url)
        received: list[SseEvent] = []
        url = f"{server.url}/v1/sessions/{sid}/events"
        # Following from seq 1 first: the run's events arrive live.
        follower = asyncio.create_task(
            follow(http, url, received, lambda e: e.json()["type"] == "run_finished")
        )
        await asyncio.sleep(0.2)
        run_id = await start_run(http, server.url, sid, PARALLEL_PROMPT)
        await follower

        events = [e.json() for e in received]
        assert seqs_of(received) == list(range(1, len(received) + 1))
        assert [e["seq"] for e in events] == seqs_of(received)
        types = [e["type"] for e in events]
        assert types[0] == "session_created" and types[1] == "run_started"
        assert types[-1] == "run_finished"
        assert all(e["run_id"] == run_id for e in events[1:])
        counts = {t: types.count(t) for t in set(types)}
        assert counts["tool_call_started"] == 2
        assert counts["tool_call_succeeded"] == 1
        assert counts["tool_call_failed"] == 1
        assert set(types) <= {
            "session_created",
            "run_started",
            "heartbeat",
            "agent_initialized",
            "agent_status",
            "step_started",
            "step_finished",
            "text_delta",
            "text_completed",
            "tool_input_delta",
            "tool_call_started",
            "tool_call_succeeded",
            "tool_call_failed",
            "model_call_metered",
            "run_finished",
        }, types
        started = {e["tool_call_id"]: e for e in events if e["type"] == "tool_call_started"}
        assert sorted(e["tool_name"] for e in started.values()) == ["Read", "mcp__demo__add"]
        for event in events:
            if event["type"] in TOOL_TERMINALS:  # each call ends once, after it started
                assert started[event["tool_call_id"]]["seq"] < event["seq"]
        ended = [e["tool_call_id"] for e in events if e["type"] in TOOL_TERMINALS]
        assert sorted(ended) == sorted(started)
        finished = events[-1]

        session = await get_json(http, f"{server.url}/v1/sessions/{sid}")
        assert session["head"] == len(events)
        # The scripted model costs nothing and says so; its tokens are counted, once.
        assert finished["total_cost_usd"] == 0.0
        (model,) = finished["model_usage"]
        assert model == "agentlog-scripted"
        assert finished["model_usage"][model]["costUSD"] == 0.0
        usage = session["usage"]
        assert (usage["runs"], usage["scripted_runs"], usage["scripted"]) == (1, 1, True)
        assert usage["cost_usd"] == 0.0
        assert usage["input_tokens"] == finished["model_usage"][model]["inputTokens"] > 0
        assert usage["output_tokens"] == finished["model_usage"][model]["outputTokens"] > 0
        listed = await get_json(http, f"{server.url}/v1/sessions")
        assert next(s for s in listed["sessions"] if s["id"] == sid)["usage"] == usage
        messages = await get_json(http, f"{server.url}/v1/sessions/{sid}/messages")
        assert messages["head"] == len(events) and messages["run_active"] is False
        user, reply = messages["messages"]
        assert user["role"] == "user" and user["parts"] == [
            {"type": "text", "text": PARALLEL_PROMPT}
        ]
        assert reply["id"] == run_id and reply["role"] == "assistant"
        assert reply["metadata"]["status"] == "finished"
        assert reply["metadata"]["model"] == "agentlog-scripted"
        assert reply["metadata"]["cost"]["scripted"] is True
        assert reply["metadata"]["cost"]["inputTokens"] == usage["input_tokens"]
        tools = {p["toolCallId"]: p for p in tool_parts(reply)}
        assert tools.keys() == started.keys()
        add = next(p for p in tools.values() if p.get("toolName") == "mcp__demo__add")
        read = next(p for p in tools.values() if p["type"] == "tool-Read")
        assert (add["state"], add["input"], add["output"]) == (
            "output-available",
            {"a": 2, "b": 3},
            "5",
        )
        assert read["state"] == "output-error"
        assert read["input"] == {"file_path": "/definitely/missing.txt"}
        assert "does not exist" in read["errorText"]
        last = reply["parts"][-1]
        assert last["type"] == "text" and last["state"] == "done"
        assert last["text"] == finished["result"]
        assert "2 + 3 = 5" in last["text"] and "does not exist" in last["text"]


# -- 2. the AI SDK UI message stream ----------------------------------------------------------


def real_ai_sdk(request: pytest.FixtureRequest) -> Any:
    """The npm `ai` client (tests/e2e/test_ai_sdk_client.py's fixture), or None without node."""
    try:
        return request.getfixturevalue("ai_sdk")
    except pytest.skip.Exception:
        return None


def check_assembled(
    body: bytes, messages: dict[str, Any], run_id: str, client: Any
) -> tuple[list[dict[str, Any]], int]:
    """The message the AI SDK client builds from `body` is the projection's message."""
    chunks, keepalives = ui_stream_chunks(body)
    assert chunks[0]["type"] == "start" and chunks[0]["messageId"] == run_id
    assert chunks[-1]["type"] == "finish"
    expected = assistant_message(messages, run_id)
    mirror = resume(chunks)
    assert (mirror.status, mirror.error) == ("ready", None)
    assert as_projected(mirror.message) == expected
    if client is not None:
        at = messages["messages"].index(expected)
        result = client.resume(messages["messages"][:at], body)
        assert result["status"] == "ready", result["error"]
        assert result["messages"][:at] == messages["messages"][:at]
        assert len(result["messages"]) == at + 1
        assert_same_message(result["messages"][at], expected)
    return chunks, keepalives


async def test_the_ui_message_stream_builds_the_projections_message(
    servers: list[ServerProcess],
    tmp_path: Path,
    sqlite_url: str,
    http: aiohttp.ClientSession,
    request: pytest.FixtureRequest,
) -> None:
    ai = real_ai_sdk(request)
    env = {"AGENTLOG_DATABASE_URL": sqlite_url, "AGENTLOG_SSE_KEEPALIVE_SECONDS": "0.2"}
    server = start(servers, tmp_path, env)
    async with asyncio.timeout(60):
        sid = await create_session(http, server.url)
        runs = f"{server.url}/v1/sessions/{sid}/runs"

        # POST with Accept: text/event-stream: the run, streamed.
        async with http.post(runs, json={"prompt": PARALLEL_PROMPT}, headers=SSE) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            body = await response.read()
        chunks, _ = ui_stream_chunks(body)
        run_id = chunks[0]["messageId"]
        # Right after [DONE], as a client would: the projection already shows the whole run.
        messages = await get_json(http, f"{server.url}/v1/sessions/{sid}/messages")
        check_assembled(body, messages, run_id, ai)
        states = sorted(p["state"] for p in tool_parts(assistant_message(messages, run_id)))
        assert states == ["output-available", "output-error"]

        # GET /stream during a long run: replayed from its start, then live to [DONE].
        stream = f"{server.url}/v1/sessions/{sid}/stream"
        long_id = await start_run(http, server.url, sid, long_prompt(3))
        # Wait until the tool runs, so the stream has a past to replay and a future to follow.
        await wait_until(
            lambda: _has_event(http, server.url, sid, "tool_call_started", long_id),
            10,
            what="the slow tool to start",
        )
        async with http.get(stream, headers=SSE) as response:
            assert response.status == 200
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            connected = time.monotonic()
            body = await response.read()
            done_after = time.monotonic() - connected
        assert done_after > 1.0  # the tool was still running: the end came live
        messages = await get_json(http, f"{server.url}/v1/sessions/{sid}/messages")
        chunks, keepalives = check_assembled(body, messages, long_id, ai)
        assert keepalives >= 1  # the quiet tool: keep-alives came, as comments only
        types = [c["type"] for c in chunks]
        assert "tool-input-available" in types and "tool-output-available" in types
        reply = assistant_message(messages, long_id)
        assert [p["state"] for p in tool_parts(reply)] == ["output-available"]
        assert reply["metadata"]["status"] == "finished"

        # No active run: 204, once the run has let go of the session.
        async def no_stream() -> bool:
            async with http.get(stream, headers=SSE) as response:
                return response.status == 204

        await wait_until(no_stream, 10, what="GET /stream to answer 204")


async def _has_event(
    http: aiohttp.ClientSession, base: str, sid: str, type_: str, run_id: str
) -> bool:
    return any(
        e["type"] == type_ and e["run_id"] == run_id for e in await all_events(http, base, sid)
    )


# -- 3. one active run per session, across server processes -------------------------------------


async def test_one_active_run_across_instances_and_cancel_through_the_other(
    servers: list[ServerProcess],
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    http: aiohttp.ClientSession,
) -> None:
    env = {"AGENTLOG_DATABASE_URL": postgres_url, "AGENTLOG_REDIS_URL": redis_url}
    a = start(servers, tmp_path, env)
    b = start(servers, tmp_path, env)
    async with asyncio.timeout(80):
        sid = await create_session(http, a.url)
        run_id = await start_run(http, a.url, sid, long_prompt(30))
        # A prompt sent to either instance waits behind A's run (fenced on it, across processes).
        for position, server in enumerate((a, b), start=1):
            async with http.post(
                f"{server.url}/v1/sessions/{sid}/runs", json={"prompt": "hello"}
            ) as response:
                assert response.status == 202
                queued = await response.json()
            assert (queued["status"], queued["position"]) == ("queued", position)
            assert queued["behind_run_id"] == run_id
        # B sees A's run as the session's active run.
        session = await get_json(http, f"{b.url}/v1/sessions/{sid}")
        assert session["status"] == "running" and session["active_run"] == {"run_id": run_id}
        await wait_until(
            lambda: _has_event(http, b.url, sid, "tool_call_started", run_id),
            15,
            what="the slow tool to start",
        )

        # Cancel through B, which does not drive the run; the queued prompts are dropped too.
        cancel = f"{b.url}/v1/sessions/{sid}/runs/{run_id}/cancel"
        async with http.post(cancel, json={"clear_queue": True}) as response:
            assert response.status == 202, await response.text()
            assert await response.json() == {
                "run_id": run_id,
                "status": "cancelled",
                "queue_cleared": 2,
            }
        # Confirmed: the terminal event was in the log when the answer came.
        [terminal] = [
            e
            for e in await all_events(http, b.url, sid)
            if e["type"].startswith("run_") and e["type"] != "run_started"
        ]
        assert terminal["type"] == "run_cancelled"
        events = await all_events(http, a.url, sid)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        calls = [e for e in events if e["type"] == "tool_call_started" and e["run_id"] == run_id]
        assert [c["tool_name"] for c in calls] == [SLOW_TOOL]
        ends = [e for e in events if e["type"] in TOOL_TERMINALS]
        assert [e["tool_call_id"] for e in ends] == [calls[0]["tool_call_id"]]
        assert ends[0]["type"] == "tool_call_failed"
        # Nothing of the run after its terminal event.
        after = [e for e in events if e["seq"] > terminal["seq"] and e["run_id"] == run_id]
        assert after == [], after
        messages = await get_json(http, f"{b.url}/v1/sessions/{sid}/messages")
        reply = assistant_message(messages, run_id)
        assert reply["metadata"]["status"] == "cancelled"
        assert [p["state"] for p in tool_parts(reply)] == ["output-error"]

        # The session is free again: a new run starts (on B) and finishes.
        second = await start_run(http, b.url, sid, "Say hello")
        assert (await run_ended(http, a.url, sid, second))["type"] == "run_finished"


# -- 4. kill -9 mid-run, restart on the same port ---------------------------------------------


async def test_kill_9_mid_run_then_restart_resolves_the_run_and_resumes_the_stream(
    servers: list[ServerProcess],
    tmp_path: Path,
    sqlite_url: str,
    http: aiohttp.ClientSession,
    orphans: list[int],
) -> None:
    env = {
        "AGENTLOG_DATABASE_URL": sqlite_url,
        "AGENTLOG_HEARTBEAT_SECONDS": "0.5",
        "AGENTLOG_RUN_LOCK_TTL_SECONDS": "2",
        # The run is recorded abandoned, as with continuation off: a turn that goes on after a
        # crash is tests/faults/test_turn_survives_its_server.py.
        "AGENTLOG_CONTINUE_AFTER_CRASH": "off",
    }
    server = start(servers, tmp_path, env)
    port = server.port
    async with asyncio.timeout(80):
        sid = await create_session(http, server.url)
        url = f"{server.url}/v1/sessions/{sid}/events"
        received: list[SseEvent] = []
        run_id = await start_run(http, server.url, sid, long_prompt(30))
        heartbeats_in_tool = 0

        def two_heartbeats_into_the_tool(event: SseEvent) -> bool:
            nonlocal heartbeats_in_tool
            data = event.json()
            if data["type"] == "tool_call_started":
                heartbeats_in_tool = 0
            elif data["type"] == "heartbeat" and any(
                e.json()["type"] == "tool_call_started" for e in received
            ):
                heartbeats_in_tool += 1
            return heartbeats_in_tool >= 2

        await follow(http, url, received, two_heartbeats_into_the_tool)
        # Keep following while the process dies: the stream is cut, not ended.
        cut_off = asyncio.create_task(follow(http, url, received, lambda e: False))
        await asyncio.sleep(0.3)
        server.kill()
        # The dead server's CLI does not outlive it for long, even before any recovery: the
        # sandbox ends with its server (bwrap --die-with-parent) and the CLI watches for it.
        orphans += agent_process_ids(run_id)
        for _ in range(200):
            if not agent_process_ids(run_id):
                break
            await asyncio.sleep(0.05)
        assert agent_process_ids(run_id) == []
        with pytest.raises((aiohttp.ClientError, ConnectionError, AssertionError)):
            await cut_off
        before = seqs_of(received)
        assert before == list(range(1, len(before) + 1))

        restarted = start(servers, tmp_path, env, port=port)
        # The same client resumes with Last-Event-ID; the sweeper resolves the dead run.
        await follow(http, url, received, ends_run(run_id, "run_abandoned"))
        events = [e.json() for e in received]
        assert seqs_of(received) == list(range(1, len(received) + 1))
        assert len({e["seq"] for e in events}) == len(events)
        call = next(e for e in events if e["type"] == "tool_call_started")
        assert call["tool_name"] == SLOW_TOOL
        ends = [e for e in events if e["type"] in TOOL_TERMINALS]
        assert len(ends) == 1 and ends[0]["tool_call_id"] == call["tool_call_id"]
        assert ends[0]["type"] == "tool_call_failed" and ends[0]["interrupted"] is True
        assert events[-1]["type"] == "run_abandoned"
        assert ends[0]["seq"] < events[-1]["seq"]
        # Recovery records the run abandoned; nothing of it runs.
        for _ in range(100):
            if not agent_process_ids(run_id):
                break
            await asyncio.sleep(0.05)
        assert agent_process_ids(run_id) == []
        assert not any(e["type"] in RUN_TERMINALS for e in events[:-1])

        session = await get_json(http, f"{restarted.url}/v1/sessions/{sid}")
        assert session["status"] != "running" and session["active_run"] is None
        messages = await get_json(http, f"{restarted.url}/v1/sessions/{sid}/messages")
        assert messages["run_active"] is False
        for message in messages["messages"]:
            for part in tool_parts(message):
                assert part["state"] not in ("input-available", "input-streaming"), part
        async with http.get(f"{restarted.url}/v1/sessions/{sid}/stream") as response:
            assert response.status == 204

        # The session takes a new run, and the client follows it on the same connection.
        second = await start_run(http, restarted.url, sid, "Say hello")
        await follow(http, url, received, ends_run(second))
        assert seqs_of(received) == list(range(1, len(received) + 1))
        assert received[-1].json()["type"] == "run_finished"


# -- 5. SIGTERM mid-run, with Redis -----------------------------------------------------------


async def test_sigterm_mid_run_without_continuation_cancels_it_ends_streams_cleanly(
    servers: list[ServerProcess],
    tmp_path: Path,
    sqlite_url: str,
    redis_url: str,
    http: aiohttp.ClientSession,
) -> None:
    # With crash continuation on (the default) the run is left to the next server instead:
    # tests/faults/test_turn_survives_a_shutdown.py.
    env = {
        "AGENTLOG_DATABASE_URL": sqlite_url,
        "AGENTLOG_REDIS_URL": redis_url,
        "AGENTLOG_CONTINUE_AFTER_CRASH": "off",
    }
    # Redis carries wake-ups only: the run's lease is the server's own (one per SQLite file).
    server = start(servers, tmp_path, env)
    async with asyncio.timeout(80):
        sid = await create_session(http, server.url)
        run_id = await start_run(http, server.url, sid, long_prompt(30))
        events_url = f"{server.url}/v1/sessions/{sid}/events"
        received: list[SseEvent] = []
        await follow(http, events_url, received, ends_run(run_id, "tool_call_started"))
        session = await get_json(http, f"{server.url}/v1/sessions/{sid}")
        assert session["active_run"] == {"run_id": run_id}

        # Two open streams: the raw log (SSE), and the run's UI message stream.
        async with (
            http.get(events_url, headers={**SSE, "Last-Event-ID": str(received[-1].id)}) as log,
            http.get(f"{server.url}/v1/sessions/{sid}/stream", headers=SSE) as ui,
        ):
            assert (log.status, ui.status) == (200, 200)
            await ui.content.readany()  # the replay has begun
            code = await asyncio.to_thread(server.terminate, 40)
            # Clean ends: each chunked body finishes with EOF, not a reset.
            rest = await asyncio.wait_for(log.content.read(), 20)
            assert log.content.at_eof()
            received += SseParser().feed(rest.decode())
            ui_rest = await asyncio.wait_for(ui.content.read(), 20)
            assert ui.content.at_eof()
        assert code == 0
        assert b"[DONE]" not in ui_rest  # the run had not ended when the stream stopped

        # The log, read back through a new server: the run was cancelled, its tool ended.
        restarted = start(servers, tmp_path, env, port=server.port)
        events = await all_events(http, restarted.url, sid)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert seqs_of(received) == [e["seq"] for e in events[: len(received)]]
        mine = [e for e in events if e["run_id"] == run_id]
        terminals = [e for e in mine if e["type"] in RUN_TERMINALS]
        assert [(e["type"], e["reason"]) for e in terminals] == [
            ("run_cancelled", "server shutdown")
        ]
        call = next(e for e in mine if e["type"] == "tool_call_started")
        ends = [e for e in mine if e["type"] in TOOL_TERMINALS]
        assert [e["tool_call_id"] for e in ends] == [call["tool_call_id"]]
        assert ends[0]["type"] == "tool_call_failed"
        session = await get_json(http, f"{restarted.url}/v1/sessions/{sid}")
        assert session["status"] != "running" and session["active_run"] is None


# -- 6. random disconnects during a live run ----------------------------------------------------


async def test_random_disconnects_during_a_live_run_deliver_every_event_once(
    servers: list[ServerProcess], tmp_path: Path, sqlite_url: str, http: aiohttp.ClientSession
) -> None:
    seed = int(os.environ.get("AGENTLOG_TEST_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    env = {
        "AGENTLOG_DATABASE_URL": sqlite_url,
        "AGENTLOG_HEARTBEAT_SECONDS": "0.02",
        "AGENTLOG_RUN_LOCK_TTL_SECONDS": "1",
    }
    server = start(servers, tmp_path, env)
    async with asyncio.timeout(70):
        sid = await create_session(http, server.url)
        url = f"{server.url}/v1/sessions/{sid}/events"
        run_id = await start_run(http, server.url, sid, long_prompt(5))
        seqs: list[int] = []
        last_id: str | None = None
        finished_at: int | None = None  # the seq of run_finished, once seen
        head: int | None = None
        connections = cut_mid_frame = 0
        live_connections = 0  # connections that ended before the client saw the run end
        while head is None or (seqs and seqs[-1] < head):
            parser = SseParser(last_event_id=last_id)  # a reconnect starts a fresh parse
            decoder = codecs.getincrementaldecoder("utf-8")()
            # Log-uniform, 1 byte to 2 KiB: most cuts land inside the first frame or two
            # (heartbeats are ~150 bytes), some let a whole stretch through.
            cutoff = int(2 ** rng.uniform(0, 11))
            headers = dict(SSE, **({"Last-Event-ID": last_id} if last_id else {}))
            taken = 0
            async with asyncio.timeout(10), http.get(url, headers=headers) as response:
                assert response.status == 200
                connections += 1
                async for chunk in response.content.iter_any():
                    piece = chunk[: cutoff - taken]  # the connection dies at byte `cutoff`
                    taken += len(piece)
                    for event in parser.feed(decoder.decode(piece)):
                        seqs.append(int(event.id))  # type: ignore[arg-type]
                        data = event.json()
                        if data["type"] == "run_finished" and data["run_id"] == run_id:
                            finished_at = data["seq"]
                    if taken >= cutoff or finished_at is not None:
                        break
                cut_mid_frame += bool(parser._buffer or parser._data)
                response.close()  # drop the connection, as a network failure would
            last_id = parser.last_event_id
            if finished_at is None:
                live_connections += 1
            elif head is None:
                await run_ended(http, server.url, sid, run_id)
                head = (await get_json(http, f"{server.url}/v1/sessions/{sid}"))["head"]

        assert seqs == list(range(1, head + 1)), f"seed {seed}"
        assert live_connections >= 100, (live_connections, seed)
        assert cut_mid_frame >= 20, (cut_mid_frame, seed)
        events = await all_events(http, server.url, sid)
        assert len(events) == head and events[-1]["type"] == "run_finished"
        assert sum(e["type"] == "heartbeat" for e in events) >= 50
        print(f"seed {seed}: {connections} connections, {live_connections} during the run")
