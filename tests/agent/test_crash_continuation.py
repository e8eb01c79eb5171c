"""A turn whose server died goes on in a new run, with the real SDK and CLI (issue 19):
exactly once whoever tries, at most `max_continuations` times in a row, and a tool marked not
to be retried is refused in the continuation. A server shut down gracefully leaves its turns
to the same continuation, with their leases released."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    RunAbandoned,
    RunFinished,
    RunStarted,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.rules.crash_continuation import CONTINUE_AFTER_CRASH_PROMPT
from agentlog.infra.agent.agents.catalog import (
    DEMO,
    AgentCatalog,
    AgentLoadError,
    HostedAgent,
    load_catalog,
    parse_references,
)
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.run.runner import AgentRunner
from agentlog.infra.local.run_lock import LocalRunLock
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.base import StoreBase
from tests.agent.test_runner import cli_children, new_session, only, runner_on, until_logged

pytestmark = pytest.mark.slow

SLOW = "mcp__demo__slow_op"


@contextlib.asynccontextmanager
async def two_survivors(
    store: StoreBase,
    model: ScriptedModel,
    tmp_path: Path,
    backend: str,
    agents: AgentCatalog | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[AgentRunner, AgentRunner]]:
    """Two runners as two server processes: on PostgreSQL each with its own lock in the
    database; on SQLite sharing one in-process lock (its file has one server)."""
    if backend == "postgres":
        async with (
            runner_on(store, model, tmp_path, **overrides) as a,
            runner_on(store, model, tmp_path, **overrides) as b,
        ):
            yield a, b
        return
    lock = LocalRunLock()
    config = AgentConfig(
        workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes", **overrides
    )
    a = AgentRunner(store, lock, config, base_url=model.base_url, agents=agents)
    b = AgentRunner(store, lock, config, base_url=model.base_url, agents=agents)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def dead_run(store: StoreBase, session: str, resumed_after_crash: int = 0) -> None:
    """A run whose server died with the slow tool in flight: in the log, with no lease."""
    await store.append(
        session,
        [
            RunStarted(
                run_id="run_dead",
                prompt="Run the slow operation for 1 second.",
                resumed_after_crash=resumed_after_crash,
            ),
            ToolCallStarted(
                run_id="run_dead", tool_call_id="toolu_dead", tool_name=SLOW, input={"seconds": 1}
            ),
        ],
    )


async def until_turn_ended(store: StoreBase, session: str, runners: list[AgentRunner]) -> None:
    async with asyncio.timeout(90):
        while True:
            events = await store.read_session(session)
            if isinstance(events[-1].event, RunFinished) and not any(
                r.active_count for r in runners
            ):
                return
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_survivors_sweeping_at_once_continue_a_dead_run_once(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, backend: str
) -> None:
    session = await new_session(store)
    await dead_run(store, session)
    async with two_survivors(store, scripted_model, tmp_path, backend) as (a, b):
        swept = await asyncio.gather(a.sweep([session]), b.sweep([session]))
        assert sorted(swept) == [[], [session]]
        await until_turn_ended(store, session, [a, b])

    events = await store.read_session(session)
    continuations = [r for r in only(events, RunStarted) if r.continues_run_id == "run_dead"]
    assert len(continuations) == 1
    [continuation] = continuations
    assert continuation.resumed_after_crash == 1
    assert continuation.prompt == CONTINUE_AFTER_CRASH_PROMPT
    assert [r.run_id for r in only(events, RunAbandoned)] == ["run_dead"]
    [interrupted] = [e for e in only(events, ToolCallFailed) if e.tool_call_id == "toolu_dead"]
    assert interrupted.error_text.startswith("interrupted by a server restart")
    # The model read that result and ran the (retryable) tool once more, in the continuation.
    again = [e for e in only(events, ToolCallStarted) if e.run_id == continuation.run_id]
    assert [e.tool_name for e in again] == [SLOW]
    assert [e.tool_call_id for e in only(events, ToolCallSucceeded)] == [again[0].tool_call_id]
    [finished] = only(events, RunFinished)
    assert finished.run_id == continuation.run_id
    assert (await verify_log(store, session)).problems == []


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_turn_continued_max_continuations_times_in_a_row_is_abandoned(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, backend: str
) -> None:
    session = await new_session(store)
    await dead_run(store, session, resumed_after_crash=2)
    async with two_survivors(store, scripted_model, tmp_path, backend) as (a, _):
        assert await a.sweep([session]) == [session]
        assert a.active_count == 0
    events = await store.read_session(session)
    assert [r.type for r in events[-2:]] == ["tool_call_failed", "run_abandoned"]
    assert len(only(events, RunStarted)) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("marked_by", ["server", "agent"])
async def test_a_tool_marked_not_to_be_retried_is_refused_in_the_continuation(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, backend: str, marked_by: str
) -> None:
    session = await new_session(store)
    await dead_run(store, session)
    no_retry = frozenset({SLOW})
    # AGENTLOG_NO_RETRY_TOOLS, or the agent module's own `no_retry_tools`.
    marks: dict[str, Any] = (
        {"no_retry_tools": no_retry}
        if marked_by == "server"
        else {"agents": AgentCatalog({DEMO: HostedAgent(DEMO, no_retry_tools=no_retry)})}
    )
    async with two_survivors(store, scripted_model, tmp_path, backend, **marks) as (a, b):
        assert await a.sweep([session]) == [session]
        await until_turn_ended(store, session, [a, b])

    events = await store.read_session(session)
    [interrupted] = [e for e in only(events, ToolCallFailed) if e.tool_call_id == "toolu_dead"]
    assert "may or may not have run" in interrupted.error_text
    # The model asked for it again; the server refused, and it never ran.
    [denied] = only(events, ToolCallDenied)
    assert "not to be retried" in denied.reason
    assert only(events, ToolCallSucceeded) == []
    assert (await verify_log(store, session)).problems == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_shutdown_leaves_its_turn_open_and_unleased_for_the_next_sweep_to_continue(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, backend: str
) -> None:
    session = await new_session(store)
    # A lease far longer than the test: only its release lets the next sweep in.
    lease = {"lock_ttl_seconds": 600.0}
    async with runner_on(store, scripted_model, tmp_path, **lease) as first:
        started = await first.start(session, "Run the slow operation for 4 seconds.")
        await until_logged(store, started, ToolCallStarted)
    assert first.handed_off == 1
    assert cli_children() == []
    # Nothing recorded the run's end: it is open, its call in flight, as a crash leaves it.
    left = await store.read_session(session)
    assert [r.type for r in left if isinstance(r.event, RUN_TERMINAL_TYPES)] == []
    [in_flight] = only(left, ToolCallStarted)
    ended = [e for e in only(left, ToolCallFailed) if e.tool_call_id == in_flight.tool_call_id]
    assert ended == [] and only(left, ToolCallSucceeded) == []

    async with runner_on(store, scripted_model, tmp_path, **lease) as second:
        assert await second.lock.holder(session) is None
        assert await second.sweep([session]) == [session]
        await until_turn_ended(store, session, [second])

    events = await store.read_session(session)
    [continuation] = [r for r in only(events, RunStarted) if r.continues_run_id]
    assert continuation.continues_run_id == started.run_id
    assert continuation.resumed_after_crash == 1
    assert [(r.run_id, r.continued_by) for r in only(events, RunAbandoned)] == [
        (started.run_id, continuation.run_id)
    ]
    [call] = [e for e in only(events, ToolCallStarted) if e.run_id == started.run_id]
    [interrupted] = [e for e in only(events, ToolCallFailed) if e.tool_call_id == call.tool_call_id]
    assert interrupted.error_text.startswith("interrupted by a server restart")
    [finished] = only(events, RunFinished)
    assert finished.run_id == continuation.run_id
    assert (await verify_log(store, session)).problems == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_continuation_at_the_run_limit_waits_open_and_goes_on_when_a_run_ends(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, backend: str
) -> None:
    busy = await new_session(store, "s-busy")
    dead = await new_session(store, "s-dead")
    await dead_run(store, dead)
    async with runner_on(store, scripted_model, tmp_path) as runner:
        runner.limit_runs(1, lambda: 0)  # AGENTLOG_MAX_ACTIVE_RUNS=1
        started = await runner.start(busy, "Run the slow operation for 2 seconds.")
        assert await runner.sweep([dead]) == []
        assert runner.waiting_for_slot == [dead]
        # Not abandoned for want of a slot: still open, as the dead server left it.
        assert only(await store.read_session(dead), RunAbandoned) == []
        assert runner.active_count == 1
        # No other sweep: the busy run's end starts it.
        await until_turn_ended(store, dead, [runner])
        assert runner.waiting_for_slot == []

    busy_events = await store.read_session(busy)
    [busy_end] = only(busy_events, RunFinished)
    assert busy_end.run_id == started.run_id
    events = await store.read_session(dead)
    [continuation] = [r for r in events if isinstance(r.event, RunStarted) and r.seq > 2]
    assert isinstance(continuation.event, RunStarted)
    assert continuation.event.continues_run_id == "run_dead"
    # One run at a time: the continuation started after the busy run had ended.
    [busy_end_recorded] = [r for r in busy_events if isinstance(r.event, RunFinished)]
    assert continuation.position > busy_end_recorded.position
    assert [r.run_id for r in only(events, RunAbandoned)] == ["run_dead"]
    assert (await verify_log(store, dead)).problems == []


async def test_an_agent_module_names_its_own_tools_not_to_be_retried(tmp_path: Path) -> None:
    catalog = await load_catalog(
        parse_references(None, "support=examples.support_agent.agent:agent")
    )
    assert catalog.get("support").no_retry_tools == {"mcp__acme__refund_order"}
    (tmp_path / "careless_agent.py").write_text(
        "from claude_agent_sdk import ClaudeAgentOptions\n"
        "agent = ClaudeAgentOptions()\n"
        "no_retry_tools = 'mcp__acme__refund_order'\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(AgentLoadError, match="no_retry_tools must be a list of tool names"):
            await load_catalog(parse_references("careless_agent:agent", None))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("careless_agent", None)
