"""Subagents through the real SDK and CLI against the scripted model (`subagent` scenario): the
subagent's events name the Agent call that started it, its parts nest under that call in the UI
messages, and a subagent cut off by a cancel is resolved like any tool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentlog.domain.events import (
    RecordedEvent,
    RunCancelled,
    RunFinished,
    SessionCreated,
    StepStarted,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.infra.agent.config import DEFAULT_ALLOWED_TOOLS
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.run.runner import AgentRunner, open_agent_runner
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store
from agentlog.projections.ui_messages import fold, to_ui_messages

pytestmark = pytest.mark.slow

UNDER = "parentToolCallId"


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[StoreBase]:
    async with open_store(sqlite_url) as opened:
        yield opened


@pytest.fixture
async def runner(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> AsyncIterator[AgentRunner]:
    async with open_agent_runner(
        store,
        base_url=scripted_model.base_url,
        workspace_root=tmp_path / "workspaces",
        run_home_root=tmp_path / "homes",
        allowed_tools=(*DEFAULT_ALLOWED_TOOLS, "Agent"),
    ) as opened:
        yield opened


async def until_ended(runner: AgentRunner, store: StoreBase, run_id: str) -> list[RecordedEvent]:
    async with asyncio.timeout(60):
        while await runner.active_run("s") == run_id:
            await asyncio.sleep(0.05)
    return await store.read_session("s")


async def test_a_subagents_work_nests_under_the_call_that_started_it(
    store: StoreBase, runner: AgentRunner
) -> None:
    await store.append("s", [SessionCreated()])
    started = await runner.start("s", "Ask a subagent to add 2 and 3 and read a file")
    log = await until_ended(runner, store, started.run_id)
    events = [r.event for r in log]

    (finished,) = [e for e in events if isinstance(e, RunFinished)]
    assert finished.result == (
        "The subagent reported: 2 + 3 = 5, and /definitely/missing.txt does not exist."
    )
    calls = {e.tool_call_id: e for e in events if isinstance(e, ToolCallStarted)}
    (agent,) = [c for c in calls.values() if c.tool_name == "Agent"]
    assert agent.parent_tool_call_id is None
    inner = {c.tool_name: c for c in calls.values() if c.parent_tool_call_id == agent.tool_call_id}
    assert set(inner) == {"mcp__demo__add", "Read"}
    assert len(calls) == 3
    sub_steps = [e for e in events if isinstance(e, StepStarted) and e.parent_tool_call_id]
    assert {s.parent_tool_call_id for s in sub_steps} == {agent.tool_call_id}
    # Every call ended once; the Agent call's output is the subagent's report.
    ends = [e for e in events if isinstance(e, ToolCallSucceeded | ToolCallFailed)]
    assert sorted(e.tool_call_id for e in ends) == sorted(calls)

    (reply,) = [m for m in to_ui_messages(fold(log), run_active=False) if m["role"] != "user"]
    nested = [p for p in reply["parts"] if UNDER in str(p.get("callProviderMetadata"))]
    assert {p["toolCallId"] for p in nested} == {c.tool_call_id for c in inner.values()}
    for part in nested:
        assert part["callProviderMetadata"] == {"agentlog": {UNDER: agent.tool_call_id}}
    agent_part = next(p for p in reply["parts"] if p.get("toolCallId") == agent.tool_call_id)
    assert agent_part["state"] == "output-available" and "callProviderMetadata" not in agent_part
    assert "2 + 3 = 5" in agent_part["output"]
    assert [p["type"] for p in reply["parts"]].count("step-start") == 2  # the main agent's


async def test_a_subagent_cut_off_by_a_cancel_is_resolved_like_any_tool(
    store: StoreBase, runner: AgentRunner
) -> None:
    await store.append("s", [SessionCreated()])
    started = await runner.start("s", "Ask a subagent to run the slow operation for 30 seconds")
    async with asyncio.timeout(60), store.subscribe("s") as wakeup:
        while not any(
            isinstance(r.event, ToolCallStarted) and r.event.parent_tool_call_id
            for r in await store.read_session("s")
        ):
            await wakeup.wait(1.0)
    await runner.cancel("s", started.run_id)
    log = await until_ended(runner, store, started.run_id)
    events = [r.event for r in log]

    assert [type(e) for e in events].count(RunCancelled) == 1
    calls = {e.tool_call_id: e for e in events if isinstance(e, ToolCallStarted)}
    assert {c.tool_name for c in calls.values()} == {"Agent", "mcp__demo__slow_op"}
    ends = [e for e in events if isinstance(e, ToolCallSucceeded | ToolCallFailed)]
    assert sorted(e.tool_call_id for e in ends) == sorted(calls)  # each once
    assert all(isinstance(e, ToolCallFailed) and e.interrupted for e in ends)
    (reply,) = [m for m in to_ui_messages(fold(log), run_active=False) if m["role"] != "user"]
    states = {p["toolCallId"]: p["state"] for p in reply["parts"] if "toolCallId" in p}
    assert set(states.values()) == {"output-error"} and states.keys() == calls.keys()
