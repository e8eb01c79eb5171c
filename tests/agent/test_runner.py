"""The agent runner end to end: the real SDK and its bundled CLI against the scripted model,
recording into a real store. Each scenario asserts the exact event sequence in the log.

Sequences drop heartbeats (timer-driven) and collapse a run of one delta type into one entry
("text_delta*"): how many deltas a text makes is the scripted model's chunking, not the runner's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from agentlog.domain.errors import RunAlreadyActive, RunNotActive, UnknownRun, UnknownSession
from agentlog.domain.events import (
    RUN_TERMINAL_TYPES,
    ConversationRewound,
    Event,
    RecordedEvent,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    SessionCreated,
    ToolCallDenied,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.ports.agent_runs import Rewind, StartedRun
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.recovery.recovery_events import INTERRUPTED_BY_OWNER_LOSS
from agentlog.infra.agent.run.policy import ToolPolicy
from agentlog.infra.agent.run.runner import AgentRunner, agent_process_ids, open_agent_runner
from agentlog.infra.local.run_lock import LocalRunLock
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_store

from ..conftest import ROOT

pytestmark = pytest.mark.slow

DELTAS = {"text_delta", "reasoning_delta", "tool_input_delta"}
START = ["run_started", "agent_initialized", "agent_status"]  # system/init, status requesting
TEXT_STEP = ["step_started", "text_delta*", "text_completed", "step_finished"]
TEXT_THEN_TOOL = ["step_started", "text_delta*", "text_completed", "tool_input_delta*"]
LONG_TOOL = "Run the slow operation for 30 seconds."


def sequence(events: Sequence[RecordedEvent]) -> list[str]:
    kinds: list[str] = []
    for recorded in events:
        kind = recorded.type
        # Timers and the gateway's meter: when they land depends on timing, not on the turn.
        if kind in ("heartbeat", "model_call_metered"):
            continue
        if kind in DELTAS:
            kind += "*"
            if kinds and kinds[-1] == kind:
                continue
        kinds.append(kind)
    return kinds


def only(events: Sequence[RecordedEvent], kind: type[Event]) -> list[Any]:
    return [r.event for r in events if isinstance(r.event, kind)]


def runner_on(
    store: StoreBase, model: ScriptedModel, tmp_path: Path, **overrides: Any
) -> AbstractAsyncContextManager[AgentRunner]:
    overrides.setdefault("workspace_root", tmp_path / "workspaces")
    overrides.setdefault("run_home_root", tmp_path / "homes")
    return open_agent_runner(store, base_url=model.base_url, **overrides)


async def new_session(store: StoreBase, session_id: str = "s-1") -> str:
    await store.append(session_id, [SessionCreated(title="test")])
    return session_id


async def until_ended(
    runner: AgentRunner, store: StoreBase, started: StartedRun, timeout: float = 60
) -> list[RecordedEvent]:
    """The run's events once it ended and released the session."""
    async with asyncio.timeout(timeout):
        # The lock may live in Redis: there is no event to wait on, so poll.
        while await runner.active_run(started.session_id) == started.run_id:
            await asyncio.sleep(0.05)
    return await store.read(started.session_id, after=started.offset)


async def until_logged(
    store: StoreBase, started: StartedRun, kind: type[Event], timeout: float = 60
) -> list[RecordedEvent]:
    async with asyncio.timeout(timeout), store.subscribe(started.session_id) as wakeup:
        while True:
            events = await store.read(started.session_id, after=started.offset)
            if only(events, kind):
                return events
            await wakeup.wait(0.2)


async def run_turn(
    runner: AgentRunner, store: StoreBase, session_id: str, prompt: str
) -> list[RecordedEvent]:
    return await until_ended(runner, store, await runner.start(session_id, prompt))


def cli_children() -> list[int]:
    """Child processes of this test process running the bundled Claude CLI."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid"))
        if ppid == os.getpid() and b"claude" in cmdline:
            children.append(int(entry))
    return children


def assert_every_call_ends_once_after_it_starts(events: Sequence[RecordedEvent]) -> None:
    started: list[str] = []
    ended: list[str] = []
    for recorded in events:
        event = recorded.event
        if isinstance(event, ToolCallStarted):
            started.append(event.tool_call_id)
        elif isinstance(event, (ToolCallSucceeded, ToolCallFailed, ToolCallDenied)):
            assert event.tool_call_id in started, f"{event.tool_call_id} ended before it started"
            ended.append(event.tool_call_id)
    assert sorted(started) == sorted(ended)
    assert len(set(ended)) == len(ended)
    assert len([e for e in events if isinstance(e.event, RUN_TERMINAL_TYPES)]) == 1


# -- the scenarios -----------------------------------------------------------------------------


async def test_a_question_streams_thinking_and_text_to_run_finished(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        events = await run_turn(runner, sqlite_store, session, "Why is the sky blue?")

    assert sequence(events) == [
        *START,
        "step_started",
        "reasoning_delta*",
        "reasoning_completed",
        "text_delta*",
        "text_completed",
        "step_finished",
        "run_finished",
    ]
    (started,) = only(events, RunStarted)
    (finished,) = only(events, RunFinished)
    assert (started.prompt, started.agent) == ("Why is the sky blue?", "scripted")
    assert "Rayleigh" in (finished.result or "")
    assert (finished.is_error, finished.subtype, finished.num_turns) == (False, "success", 1)
    assert finished.run_id == started.run_id == events[0].run_id
    assert all(e.run_id == started.run_id for e in events)


async def test_parallel_tools_end_in_completion_order_each_after_its_start(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        events = await run_turn(
            runner, sqlite_store, session, "Add 2 and 3 and read /definitely/missing.txt"
        )

    kinds = sequence(events)
    ends = kinds[11:13]
    assert sorted(ends) == ["tool_call_failed", "tool_call_succeeded"]
    assert kinds == [
        *START,
        *TEXT_THEN_TOOL,
        "tool_call_started",
        "tool_input_delta*",
        "tool_call_started",
        "step_finished",
        *ends,  # in completion order: whichever tool finished first
        "agent_status",
        *TEXT_STEP,
        "run_finished",
    ]
    add, read = only(events, ToolCallStarted)
    assert (add.tool_name, add.input) == ("mcp__demo__add", {"a": 2, "b": 3})
    assert (read.tool_name, read.input) == ("Read", {"file_path": "/definitely/missing.txt"})
    (succeeded,) = only(events, ToolCallSucceeded)
    (failed,) = only(events, ToolCallFailed)
    assert (succeeded.tool_call_id, succeeded.output) == (add.tool_call_id, "5")
    assert failed.tool_call_id == read.tool_call_id
    assert "does not exist" in failed.error_text and not failed.interrupted
    assert only(events, RunFinished)[0].result == (
        "2 + 3 = 5, and /definitely/missing.txt does not exist."
    )
    assert_every_call_ends_once_after_it_starts(events)


async def test_a_policy_denial_is_recorded_and_the_model_is_told(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    policy = ToolPolicy.from_config("Bash;Agent.run_in_background")
    bash_on = frozenset({"Bash"})  # enabled, so the deny rule is what stops it
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, policy=policy, enabled_tools=bash_on
    ) as runner:
        events = await run_turn(runner, sqlite_store, session, "Run `echo hello`; deny it.")

    assert sequence(events) == [
        *START,
        *TEXT_THEN_TOOL,
        "tool_call_started",
        "tool_call_denied",  # decided by our PreToolUse hook as the CLI asked
        "step_finished",
        "agent_status",
        *TEXT_STEP,
        "run_finished",
    ]
    (call,) = only(events, ToolCallStarted)
    (denied,) = only(events, ToolCallDenied)
    assert call.tool_name == "Bash"
    assert (denied.tool_call_id, denied.reason) == (
        call.tool_call_id,
        "Bash is disabled by policy in this session.",
    )
    (finished,) = only(events, RunFinished)
    assert (finished.result or "").startswith("I wasn't allowed to run `echo hello`")
    assert [d["tool_name"] for d in finished.permission_denials] == ["Bash"]
    (sent,) = [
        block
        for message in scripted_model.requests[-1]["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert sent["is_error"] is True
    assert "Bash is disabled by policy in this session." in str(sent["content"])


async def test_a_model_error_ends_the_run_finished_with_is_error(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """A turn that ended with an error *result* is `run_finished` with `is_error` (it has a
    result, usage and duration); `run_failed` is for turns that ended without one."""
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        events = await run_turn(runner, sqlite_store, session, "Summarize Hamlet; overloaded.")

    assert sequence(events) == [
        *START,
        "step_started",
        "text_delta*",
        "step_finished",  # the cut-off response: deltas, never completed
        "agent_error",
        "run_finished",
    ]
    (finished,) = only(events, RunFinished)
    assert (finished.is_error, finished.terminal_reason, finished.api_error_status) == (
        True,
        "api_error",
        529,
    )
    assert "529" in (finished.result or "")


async def test_heartbeats_keep_flowing_while_a_long_tool_runs(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, heartbeat_seconds=0.25, lock_ttl_seconds=2
    ) as runner:
        events = await run_turn(
            runner, sqlite_store, session, "Run the slow operation for 1.5 seconds."
        )

    types = [e.type for e in events]
    started_at = types.index("tool_call_started")
    ended_at = types.index("tool_call_succeeded")
    assert types[started_at:ended_at].count("heartbeat") >= 3
    assert "heartbeat" not in types[types.index("run_finished") :]
    assert sequence(events) == [
        *START,
        *TEXT_THEN_TOOL,
        "tool_call_started",
        "step_finished",
        "tool_call_succeeded",
        "agent_status",
        *TEXT_STEP,
        "run_finished",
    ]
    (succeeded,) = only(events, ToolCallSucceeded)
    assert succeeded.output == "waited 1.5 s"  # the job was submitted, polled and reported
    assert only(events, RunFinished)[0].result == (
        "The slow operation is done: it ran for 1.5 seconds. It reported: waited 1.5 s"
    )


# -- crashes, cancels and the one-run-per-session lock -----------------------------------------


async def test_a_cli_killed_mid_tool_fails_the_run_and_interrupts_the_tool(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        started = await runner.start(session, LONG_TOOL)
        await until_logged(sqlite_store, started, ToolCallStarted)
        processes = agent_process_ids(started.run_id)
        assert processes
        for pid in processes:  # the sandbox and the CLI in it: killing one may end the rest
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        events = await until_ended(runner, sqlite_store, started)

        assert sequence(events) == [
            *START,
            *TEXT_THEN_TOOL,
            "tool_call_started",
            "step_finished",
            "tool_call_failed",
            "run_failed",
        ]
        (failed,) = only(events, ToolCallFailed)
        assert (failed.interrupted, failed.source) == (True, "runner")
        assert failed.error_text.startswith("interrupted: ProcessError")
        (run_failed,) = only(events, RunFailed)
        assert run_failed.terminal_reason == "agent_crashed"
        assert "-9" in run_failed.error
        assert agent_process_ids(started.run_id) == []
        assert await runner.active_run(session) is None
        # The session is not stuck: the next run goes ahead.
        assert only(await run_turn(runner, sqlite_store, session, "Hello"), RunFinished)


async def test_a_second_start_is_refused_and_cancel_leaves_nothing_behind(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        started = await runner.start(session, LONG_TOOL)
        await until_logged(sqlite_store, started, ToolCallStarted)
        assert cli_children()

        with pytest.raises(RunAlreadyActive) as refused:
            await runner.start(session, "Hello")
        assert refused.value.run_id == started.run_id
        assert await runner.active_run(session) == started.run_id

        async with asyncio.timeout(20):
            await runner.cancel(session, started.run_id)

        events = await sqlite_store.read(session, after=started.offset)
        assert sequence(events) == [
            *START,
            *TEXT_THEN_TOOL,
            "tool_call_started",
            "step_finished",
            "tool_call_failed",  # the CLI's own report of the interrupted call
            "run_cancelled",
        ]
        (failed,) = only(events, ToolCallFailed)
        assert failed.interrupted
        assert await runner.active_run(session) is None
        assert await runner.lock.holder(session) is None
        assert agent_process_ids(started.run_id) == []
        assert cli_children() == []
        assert [t for t in asyncio.all_tasks() if "agentlog-run" in t.get_name()] == []
        with pytest.raises(RunNotActive):
            await runner.cancel(session, started.run_id)
        with pytest.raises(UnknownRun):
            await runner.cancel(session, "run_nope")
        with pytest.raises(UnknownSession):
            await runner.start("no-such-session", "Hello")


async def test_a_start_as_soon_as_the_last_run_ended_waits_for_the_hand_over(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        first = await runner.start(session, "Hello")
        await until_logged(sqlite_store, first, RunFinished)
        # Its CLI is most likely still exiting, the lock still held: the start is not refused.
        second = await runner.start(session, "Hello again")
        events = await until_ended(runner, sqlite_store, second)

    assert second.offset > first.offset
    assert sequence(events)[-1] == "run_finished"


async def test_shutdown_with_crash_continuation_off_cancels_the_runs_in_flight(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, continue_after_crash=False
    ) as runner:
        started = await runner.start(session, LONG_TOOL)
        await until_logged(sqlite_store, started, ToolCallStarted)

    events = await sqlite_store.read(session, after=started.offset)
    assert sequence(events)[-2:] == ["tool_call_failed", "run_cancelled"]
    assert only(events, RunCancelled)[0].reason == "server shutdown"
    assert cli_children() == []


async def test_an_expired_lock_is_recovered_as_abandoned_before_the_next_run(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """A process died mid-tool: its run is in the log as running, its lock is expiring."""
    session = await new_session(sqlite_store)
    lock = LocalRunLock()
    config = AgentConfig(workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes")
    runner = AgentRunner(sqlite_store, lock, config, base_url=scripted_model.base_url)
    dead = await lock.acquire(session, "run_dead", 300)
    assert dead is not None
    await sqlite_store.append(
        session,
        [
            RunStarted(run_id="run_dead", prompt="Run the slow operation"),
            ToolCallStarted(
                run_id="run_dead", tool_call_id="toolu_dead", tool_name="mcp__demo__slow_op"
            ),
        ],
    )
    try:
        with pytest.raises(RunAlreadyActive) as refused:
            await runner.start(session, "Hello")
        assert refused.value.run_id == "run_dead"
        assert await runner.recover_abandoned(session) is False  # still held: not abandoned

        await asyncio.sleep(0.4)
        events = await run_turn(runner, sqlite_store, session, "Hello")
    finally:
        await runner.close()

    recovered = await sqlite_store.read(session, after=3)
    assert [r.type for r in recovered[:3]] == ["tool_call_failed", "run_abandoned", "run_started"]
    failed = recovered[0].event
    assert isinstance(failed, ToolCallFailed)
    assert (failed.run_id, failed.tool_call_id, failed.interrupted, failed.error_text) == (
        "run_dead",
        "toolu_dead",
        True,
        INTERRUPTED_BY_OWNER_LOSS,
    )
    assert sequence(events) == [*START, "step_started", "reasoning_delta*",
                                "reasoning_completed", "text_delta*", "text_completed",
                                "step_finished", "run_finished"]  # fmt: skip
    # The model was told about the interrupted call of the abandoned run.
    results = [
        block
        for message in scripted_model.requests[-1]["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert [(r["tool_use_id"], r["is_error"]) for r in results] == [("toolu_dead", True)]


async def test_sweep_recovers_sessions_left_running_by_a_previous_process(
    sqlite_store: StoreBase, tmp_path: Path
) -> None:
    running, idle = (
        await new_session(sqlite_store, "s-running"),
        await new_session(sqlite_store, "s-idle"),
    )
    await sqlite_store.append(running, [RunStarted(run_id="run_old", prompt="p")])
    # Continuation off: the run is recorded abandoned (a continued turn: test_crash_continuation).
    config = AgentConfig(mode="claude", workspace_root=tmp_path, continue_after_crash=False)
    runner = AgentRunner(sqlite_store, LocalRunLock(), config)

    assert await runner.sweep([running, idle, "s-missing"]) == [running]
    assert await runner.sweep([running]) == []
    assert [r.type for r in await sqlite_store.read(running)][-1] == "run_abandoned"
    await runner.close()


async def test_multi_turn_continues_the_conversation_on_another_instance(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """Run 1 on one runner, run 2 on another (its own model, HOME and workspace root) sharing
    only the database: the second request carries the first turn, tool results included, as
    the first CLI wrote it (resumed from the store, under the runner's one project key)."""
    session = await new_session(sqlite_store)
    first_prompt = "Remember the number 42. Add 2 and 3 and read /definitely/missing.txt"
    async with (
        ScriptedModel() as other_model,
        runner_on(sqlite_store, other_model, tmp_path / "a") as instance_a,
    ):
        first = await run_turn(instance_a, sqlite_store, session, first_prompt)
    async with runner_on(sqlite_store, scripted_model, tmp_path / "b") as instance_b:
        second = await run_turn(
            instance_b, sqlite_store, session, "What number did I ask you to remember?"
        )

    assert only(first, RunFinished)[0].result == (
        "2 + 3 = 5, and /definitely/missing.txt does not exist."
    )
    assert only(second, RunFinished)[0].result == "You asked me to remember the number 42."
    (request,) = scripted_model.requests
    shown = []
    for message in request["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            if block["type"] == "text" and block["text"].startswith("<system-reminder>"):
                continue
            result = block.get("content")
            if isinstance(result, list):  # the CLI keeps an MCP tool's content blocks
                result = "".join(b.get("text", "") for b in result)
            detail = block.get("text") or block.get("name") or str(result)[:20]
            shown.append((message["role"], block["type"], detail, block.get("is_error")))
    assert shown == [
        ("user", "text", first_prompt, None),
        ("assistant", "text", "I'll add the numbers and read the file in parallel.", None),
        ("assistant", "tool_use", "mcp__demo__add", None),
        ("assistant", "tool_use", "Read", None),
        ("user", "tool_result", "5", None),
        ("user", "tool_result", "File does not exist.", True),
        ("assistant", "text", "2 + 3 = 5, and /definitely/missing.txt does not exist.", None),
        ("user", "text", "What number did I ask you to remember?", None),
    ]


# -- several server processes sharing PostgreSQL and Redis ------------------------------------


def worker(action: str, url: str, redis_url: str, session: str, prompt: str, work: Path) -> Any:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.agent.run_worker", action, url, redis_url, session, prompt,
         str(work)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


async def answer(process: Any) -> dict[str, str]:
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
    assert line, process.stderr.read()
    return dict(json.loads(line))


@pytest.mark.postgres
@pytest.mark.redis
async def test_processes_sharing_redis_refuse_a_second_run_and_recover_a_dead_owner(
    postgres_url: str, redis_url: str, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async with open_store(postgres_url, redis_url=redis_url) as store:
        # Unique: other test runs may share this Redis server.
        session = await new_session(store, f"s-shared-{uuid.uuid4().hex}")
        async with runner_on(
            store,
            scripted_model,
            tmp_path,
            heartbeat_seconds=0.3,
            lock_ttl_seconds=1.5,
        ) as runner:
            # 1. This process runs a long tool; another process is refused.
            ours = await runner.start(session, LONG_TOOL)
            other = worker("try-start", postgres_url, redis_url, session, "Hello", tmp_path / "w1")
            assert await answer(other) == {"refused": ours.run_id}
            assert await asyncio.to_thread(other.wait, 30) == 0
            await runner.cancel(session, ours.run_id)

            # 2. Another process on this host (same HOME and workspace roots) runs a long tool
            # and is killed with SIGKILL; its lock expires, and the next start here records the
            # run as abandoned, ends the CLI it left running, removes its HOME and goes ahead.
            head = await store.head(session)
            holder = worker("start-and-hold", postgres_url, redis_url, session, LONG_TOOL, tmp_path)
            theirs = (await answer(holder))["started"]
            their_run = StartedRun(session_id=session, run_id=theirs, offset=head)
            await until_logged(store, their_run, ToolCallStarted)
            with pytest.raises(RunAlreadyActive):
                await runner.start(session, "Hello")
            holder.kill()
            await asyncio.to_thread(holder.wait, 30)
            their_homes = lambda: list((tmp_path / "homes").glob(f"agentlog-{theirs}-*"))  # noqa: E731
            # The sandbox ends with the server that started it (bwrap --die-with-parent): no
            # CLI of the killed server lives on; its HOME is left on disk.
            await wait_for_no_processes(theirs)
            assert their_homes(), "the killed server's run HOME should be left on disk"
            await asyncio.sleep(1.6)

            events = await run_turn(runner, store, session, "Hello")
            assert agent_process_ids(theirs) == []
            assert their_homes() == []

        log = await store.read(session)
        theirs_ended = [r.type for r in log if r.run_id == theirs and r.type not in ("heartbeat",)][
            -2:
        ]
        assert theirs_ended == ["tool_call_failed", "run_abandoned"]
        assert sequence(events)[-1] == "run_finished"
        assert_every_call_ends_once_after_it_starts([r for r in log if r.run_id == ours.run_id])


async def wait_for_no_processes(run_id: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while agent_process_ids(run_id):
            await asyncio.sleep(0.05)


async def test_a_cancel_sent_to_another_instance_reaches_the_run_owner(
    postgres_url: str, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    # Two instances share a database (the lease is in it): one asks, the owner cancels.
    async with open_store(postgres_url) as store:
        session = await new_session(store, f"s-remote-cancel-{uuid.uuid4().hex}")
        async with (
            runner_on(store, scripted_model, tmp_path / "a", cancel_poll_seconds=0.1) as owner,
            runner_on(store, scripted_model, tmp_path / "b") as other,
        ):
            started = await owner.start(session, LONG_TOOL)
            await until_logged(store, started, ToolCallStarted)
            assert await other.active_run(session) == started.run_id

            async with asyncio.timeout(30):
                await other.cancel(session, started.run_id, "stopped from another instance")

            events = await store.read(session, after=started.offset)
            assert sequence(events)[-2:] == ["tool_call_failed", "run_cancelled"]
            assert only(events, RunCancelled)[0].reason == "stopped from another instance"
            await until_ended(owner, store, started)


async def test_a_rewind_gives_the_agent_the_current_branch_only(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """Turn 1 asks to remember 42, turn 2 asks to remember 7; rewinding to the end of turn 1
    and asking again sees 42, not 7; the next plain turn stays on that branch."""
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        first = await run_turn(runner, sqlite_store, session, "Remember the number 42.")
        await run_turn(runner, sqlite_store, session, "Remember the number 7.")
        end_of_first = first[-1].seq
        rewound = await until_ended(
            runner,
            sqlite_store,
            await runner.start(
                session,
                "What number did I ask you to remember?",
                rewind=Rewind(to_seq=end_of_first, trigger="edit", message_id="m"),
            ),
        )
        later = await run_turn(
            runner, sqlite_store, session, "What number did I ask you to remember?"
        )

    marker, started = rewound[0].event, rewound[1].event
    assert isinstance(marker, ConversationRewound) and isinstance(started, RunStarted)
    assert marker.to_seq == end_of_first and marker.trigger == "edit"
    assert started.agent_session == marker.agent_session
    assert only(rewound, RunFinished)[0].result == "You asked me to remember the number 42."
    # The branch's agent session carries on: the next turn resumes it, still without turn 2.
    assert only(later, RunStarted)[0].agent_session == marker.agent_session
    assert only(later, RunFinished)[0].result == "You asked me to remember the number 42."
    prompts = [
        block.get("text")
        for m in scripted_model.requests[-1]["messages"]
        if m["role"] == "user"
        for block in (
            [{"type": "text", "text": m["content"]}]
            if isinstance(m["content"], str)
            else m["content"]
        )
    ]
    assert "Remember the number 7." not in prompts
    assert "Remember the number 42." in prompts
