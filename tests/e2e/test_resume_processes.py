"""The conversation across real server processes on PostgreSQL: the second turn runs on
another `agentlog serve`, with a workspace root of its own, and its CLI resumes the first from
the store; a server killed mid-turn leaves what was mirrored, and the next run, on the
restarted server, resumes from it with what the log says was missing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agentlog.infra.agent.recovery.leftovers import RESUME_PREFIX, agent_process_ids
from agentlog.infra.agent.recovery.recovery_events import INTERRUPTED_BY_OWNER_LOSS
from agentlog.infra.agent.sdk.session_store import RUNNER_PROJECT_KEY, LogSessionStore
from agentlog.infra.agent.transcripts.conversion import agent_session_id
from agentlog.infra.store.opening import open_store
from tests.e2e.test_runs_http import (  # noqa: F401 - fixtures
    all_events,
    create_session,
    http,
    long_prompt,
    orphans,
    run_ended,
    servers,
    start,
    start_run,
    wait_until,
)
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REMEMBER = "Remember the number 42."
RECALL = "What number did I ask you to remember?"
RECALLED = "You asked me to remember the number 42."


async def transcript(url: str, session_id: str) -> list[dict[str, Any]]:
    async with open_store(url) as store:
        entries = await LogSessionStore(store).load(
            {"project_key": RUNNER_PROJECT_KEY, "session_id": agent_session_id(session_id)}
        )
    return [dict(e) for e in entries or []]


def resume_directories(root: Path) -> list[Path]:
    return list(root.glob(f"{RESUME_PREFIX}*"))


def environment(postgres_url: str, root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    return {
        "AGENTLOG_DATABASE_URL": postgres_url,
        "AGENTLOG_REDIS_URL": "",
        "AGENTLOG_WORKSPACE_DIR": str(root / "workspaces"),
        "AGENTLOG_HEARTBEAT_SECONDS": "0.5",
        "AGENTLOG_RUN_LOCK_TTL_SECONDS": "2",
    }


async def turn(http: aiohttp.ClientSession, base: str, sid: str, prompt: str) -> dict[str, Any]:  # noqa: F811
    run_id = await start_run(http, base, sid, prompt)
    return await run_ended(http, base, sid, run_id, timeout=60)


async def test_a_second_server_with_another_workspace_root_resumes_the_conversation(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    postgres_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    first = start(servers, tmp_path / "a", environment(postgres_url, tmp_path / "a"))
    async with asyncio.timeout(120):
        sid = await create_session(http, first.url)
        remembered = await turn(http, first.url, sid, REMEMBER)
        first.stop()
        second = start(servers, tmp_path / "b", environment(postgres_url, tmp_path / "b"))
        recalled = await turn(http, second.url, sid, RECALL)

    assert remembered["type"] == recalled["type"] == "run_finished"
    assert recalled["result"] == RECALLED
    lines = await transcript(postgres_url, sid)
    cwds = sorted({line["cwd"] for line in lines if "cwd" in line})
    assert [Path(c).parent for c in cwds] == [
        (tmp_path / "a" / "workspaces").resolve(),
        (tmp_path / "b" / "workspaces").resolve(),
    ]


async def test_a_server_killed_mid_turn_leaves_what_was_mirrored_and_the_next_run_repairs_it(
    servers: list[ServerProcess],  # noqa: F811
    tmp_path: Path,
    postgres_url: str,
    http: aiohttp.ClientSession,  # noqa: F811
    orphans: list[int],  # noqa: F811
) -> None:
    # The run is recorded abandoned, as with continuation off: the next turn repairs the
    # transcript (a turn that goes on after a crash: tests/faults/test_turn_survives_its_server.py).
    env = {**environment(postgres_url, tmp_path), "AGENTLOG_CONTINUE_AFTER_CRASH": "off"}
    server = start(servers, tmp_path, env)
    port = server.port
    async with asyncio.timeout(150):
        sid = await create_session(http, server.url)
        await turn(http, server.url, sid, REMEMBER)
        run_id = await start_run(http, server.url, sid, long_prompt(60))

        async def call_mirrored() -> str | None:
            calls = [
                e["tool_call_id"]
                for e in await all_events(http, server.url, sid)
                if e["type"] == "tool_call_started"
            ]
            lines = await transcript(postgres_url, sid)
            uses = {
                b.get("id")
                for line in lines
                if line["type"] == "assistant"
                for b in line["message"]["content"]
            }
            return next((c for c in calls if c in uses), None)

        call = await wait_until(call_mirrored, 60, what="the tool call in the store")
        orphans += agent_process_ids(run_id)
        # The SDK loaded the transcript into a directory of its own (TMPDIR is tmp_path).
        assert resume_directories(tmp_path)
        server.kill()
        behind = await transcript(postgres_url, sid)

        async def resume_directory_gone() -> bool:
            # The run's orphan watch removes it with the CLI: it holds the conversation.
            return not resume_directories(tmp_path)

        await wait_until(resume_directory_gone, 15, what="the resume directory's removal")
        restarted = start(servers, tmp_path, env, port=port)

        async def abandoned() -> bool:
            events = await all_events(http, restarted.url, sid)
            return any(e["type"] == "run_abandoned" for e in events)

        await wait_until(abandoned, 60, what="the dead run's recovery")
        recalled = await turn(http, restarted.url, sid, RECALL)

    assert recalled["type"] == "run_finished" and recalled["result"] == RECALLED
    # What was mirrored stayed; the run that resumed first added the result the log holds.
    after = await transcript(postgres_url, sid)
    assert after[: len(behind)] == behind
    assert not any(
        b.get("tool_use_id") == call
        for line in behind
        if line["type"] == "user" and isinstance(line["message"]["content"], list)
        for b in line["message"]["content"]
    )
    repair = after[len(behind)]
    assert repair["message"]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": call,
            "content": INTERRUPTED_BY_OWNER_LOSS,
            "is_error": True,
        }
    ]
    prompt = next(
        line for line in after if line["type"] == "user" and line["message"]["content"] == RECALL
    )
    assert prompt["parentUuid"] is not None
    chain, at = [], prompt
    by_id = {line["uuid"]: line for line in after if "uuid" in line}
    while at is not None:
        chain.append(at["uuid"])
        at = by_id.get(at.get("parentUuid") or "")
    assert repair["uuid"] in chain
