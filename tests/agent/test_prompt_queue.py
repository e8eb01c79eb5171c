"""Sending while a run is active, with the real SDK and CLI against the scripted model: the
prompt is queued in the log and starts its own turn when the session is free, in order; an
interrupt cancels the run and goes next; a prompt sent while an approval waits goes after the
answer's turn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agentlog.domain.events import (
    PromptQueued,
    RecordedEvent,
    RunCancelled,
    RunFinished,
    RunStarted,
    SteeringDelivered,
    ToolApprovalRequested,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.ports.agent_runs import QueuedRun, StartedRun
from agentlog.domain.ports.event_store import RunFence
from agentlog.domain.rules.prompt_queue import PromptQueue
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.run.driver import RunInFlight
from agentlog.infra.sessions.approval_answers import record_answer
from agentlog.infra.store.base import StoreBase
from agentlog.projections.ui_messages import fold, to_ui_messages
from agentlog.projections.ui_stream import RunStreamEncoder

from .test_approvals import PUBLISH, deployment_sweep
from .test_runner import LONG_TOOL, new_session, only, run_turn, runner_on, until_logged

pytestmark = pytest.mark.slow


async def until_runs_finished(
    store: StoreBase, session_id: str, count: int, timeout: float = 90
) -> list[RecordedEvent]:
    """The session's log once `count` runs have ended."""
    async with asyncio.timeout(timeout), store.subscribe(session_id) as wakeup:
        while True:
            events = await store.read_session(session_id)
            ended = [e for e in events if isinstance(e.event, (RunFinished, RunCancelled))]
            if len(ended) >= count:
                return events
            await wakeup.wait(0.2)


async def test_prompts_sent_while_a_run_is_active_each_get_a_turn_in_order(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        first = await runner.send(session, "Run the slow operation for 2 seconds.")
        assert isinstance(first, StartedRun)
        await until_logged(sqlite_store, first, ToolCallStarted)
        second = await runner.send(session, "Hello there", user_message_id="m-2")
        third = await runner.send(session, "And hello again")
        assert isinstance(second, QueuedRun) and isinstance(third, QueuedRun)
        assert (second.position, third.position) == (1, 2)
        assert second.behind_run_id == third.behind_run_id == first.run_id
        events = await until_runs_finished(sqlite_store, session, 3)

    runs = only(events, RunStarted)
    assert [r.prompt for r in runs] == [
        "Run the slow operation for 2 seconds.",
        "Hello there",
        "And hello again",
    ]
    assert [r.queued_seq for r in runs] == [None, second.seq, third.seq]
    assert runs[1].user_message_id == "m-2"
    # One turn after the other: each starts after the one before it ended.
    kinds = [e.type for e in events if e.type in ("run_started", "run_finished")]
    assert kinds == ["run_started", "run_finished"] * 3
    assert all(not r.is_error for r in only(events, RunFinished))
    assert len(only(events, ToolCallSucceeded)) == 1
    assert (await runner_queue_after(sqlite_store, scripted_model, tmp_path, session)) == []


async def runner_queue_after(
    store: StoreBase, model: ScriptedModel, tmp_path: Path, session: str
) -> list[str]:
    async with runner_on(store, model, tmp_path) as runner:
        return [q.prompt for q in (await runner.prompt_queue(session)).waiting]


async def test_a_cancel_keeps_the_queue_and_the_next_prompt_starts_after_it(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        first = await runner.send(session, LONG_TOOL)
        assert isinstance(first, StartedRun)
        await until_logged(sqlite_store, first, ToolCallStarted)
        queued = await runner.send(session, "Hello after the stop")
        assert isinstance(queued, QueuedRun)
        await runner.cancel(session, first.run_id)
        events = await until_runs_finished(sqlite_store, session, 2)

    [cancelled] = only(events, RunCancelled)
    assert cancelled.run_id == first.run_id
    [_, after] = only(events, RunStarted)
    assert after.prompt == "Hello after the stop" and after.queued_seq == queued.seq


async def test_an_interrupt_cancels_the_run_and_goes_before_the_queue(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        first = await runner.send(session, LONG_TOOL)
        assert isinstance(first, StartedRun)
        await until_logged(sqlite_store, first, ToolCallStarted)
        waiting = await runner.send(session, "Queued before")
        urgent = await runner.send(session, "Stop that, answer this", interrupt=True)
        assert isinstance(waiting, QueuedRun) and isinstance(urgent, QueuedRun)
        assert urgent.position == 1
        events = await until_runs_finished(sqlite_store, session, 3)

    [cancelled] = only(events, RunCancelled)
    assert cancelled.run_id == first.run_id and cancelled.reason == "interrupted"
    assert [r.prompt for r in only(events, RunStarted)][1:] == [
        "Stop that, answer this",
        "Queued before",
    ]
    [marked] = [e for e in only(events, PromptQueued) if e.interrupt]
    assert marked.prompt == "Stop that, answer this"


async def test_a_prompt_sent_while_an_approval_waits_runs_after_the_answers_turn(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, approval_grace_seconds=0.2
    ) as runner:
        session = await new_session(sqlite_store)
        first = await run_turn(runner, sqlite_store, session, PUBLISH)
        [request] = only(first, ToolApprovalRequested)
        queued = await runner.send(session, "Hello once it is published")
        assert isinstance(queued, QueuedRun)
        assert queued.behind_run_id is None and queued.position == 1
        # Nothing starts while the person has not answered.
        assert await runner.start_next_queued(session) is None
        assert await runner.active_run(session) is None

        await record_answer(sqlite_store, session, request.approval_id, approved=True, reason=None)
        assert await runner.continue_after_approval(session) is not None
        events = await until_runs_finished(sqlite_store, session, 3)

    runs = only(events, RunStarted)
    assert runs[1].continues_run_id == request.run_id
    assert runs[2].prompt == "Hello once it is published" and runs[2].queued_seq == queued.seq
    [ran] = only(events, ToolCallSucceeded)
    assert ran.tool_call_id == request.tool_call_id
    # The queued turn starts only after the continuation ended.
    kinds = [e.type for e in events if e.type in ("run_started", "run_finished")]
    assert kinds == ["run_started", "run_finished"] * 3


async def test_a_steering_prompt_reaches_the_running_turn_at_its_next_step(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        first = await runner.send(session, "Run the slow operation for 2 seconds.")
        assert isinstance(first, StartedRun)
        await until_logged(sqlite_store, first, ToolCallStarted)
        steered = await runner.send(
            session, "Also mention bananas", user_message_id="m-steer", steer=True
        )
        assert isinstance(steered, QueuedRun) and steered.steered
        assert steered.behind_run_id == first.run_id
        await until_runs_finished(sqlite_store, session, 1)
        # Delivered within the turn: nothing waits, so no turn of its own starts for it.
        assert (await runner.prompt_queue(session)).waiting == []
        async with asyncio.timeout(30):
            while await runner.active_run(session) is not None:
                await asyncio.sleep(0.05)
        events = await sqlite_store.read_session(session)

    assert len(only(events, RunStarted)) == 1
    [delivered] = only(events, SteeringDelivered)
    assert (delivered.run_id, delivered.queued_seq) == (first.run_id, steered.seq)
    assert delivered.prompt == "Also mention bananas"
    # Where it was delivered: right before the step whose model request carried it.
    kinds = [e.type for e in events if e.type in ("steering_delivered", "step_started")]
    assert kinds == ["step_started", "steering_delivered", "step_started"]
    last_request = json.dumps(scripted_model.requests[-1]["messages"][-1])
    assert "Also mention bananas" in last_request

    messages = to_ui_messages(fold(events), run_active=False)
    parts = [p["type"] for p in messages[-1]["parts"]]
    at = parts.index("steering-message")
    assert parts[at + 1] == "step-start" and parts.count("step-start") == 2
    assert messages[-1]["parts"][at] == {
        "type": "steering-message",
        "id": "m-steer",
        "parts": [{"type": "text", "text": "Also mention bananas"}],
    }
    encoder = RunStreamEncoder(first.run_id)
    chunks = [c for e in events for c in encoder.chunks_for(e)]
    kinds = [c["type"] for c in chunks if c["type"] in ("steering-message", "start-step")]
    assert kinds == ["start-step", "steering-message", "start-step"]


async def test_a_steer_with_nothing_running_is_a_normal_send(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        started = await runner.send(session, "Hello", steer=True)
        assert isinstance(started, StartedRun)
        events = await until_runs_finished(sqlite_store, session, 1)
    assert [r.prompt for r in only(events, RunStarted)] == ["Hello"]


async def test_after_a_run_nobody_else_wrote_beside_the_queue_is_not_read(
    sqlite_store: StoreBase,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The look for a next turn after a run is one read of the head when every event since
    the run's start is its own; a prompt another writer queued behind the run is still found
    (and started) the long way."""
    session = await new_session(sqlite_store)
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        looks: list[str] = []
        queue_of = runner.prompt_queue

        async def counted(session_id: str) -> PromptQueue:
            looks.append(session_id)
            return await queue_of(session_id)

        monkeypatch.setattr(runner, "prompt_queue", counted)

        async def after_the_run(run: RunInFlight) -> int:
            """How many times the queue was read once the run ended (its lease released)."""
            await run.done.wait()
            before = len(looks)
            while runner._helpers:  # the look after the run is spawned as the run ends
                await asyncio.sleep(0.01)
            return len(looks) - before

        await runner.start(session, "Hello")
        assert await after_the_run(runner._runs[session]) == 0

        busy = await runner.start(session, "Run the slow operation for 2 seconds.")
        busy_run = runner._runs[session]
        await until_logged(sqlite_store, busy, ToolCallStarted)
        # Queued as another instance queues it: fenced on the run, not through this runner.
        indexed = await sqlite_store.run(session, busy.run_id)
        assert indexed is not None
        fence = RunFence(run_id=busy.run_id, token=indexed.started_seq)
        await sqlite_store.append(session, [PromptQueued(prompt="Hello again")], fence=fence)
        assert await after_the_run(busy_run) >= 1
        events = await until_runs_finished(sqlite_store, session, 3)

    assert [r.prompt for r in only(events, RunStarted)][-1] == "Hello again"


async def test_a_queued_prompt_whose_look_was_lost_with_its_server_starts_from_the_sweep(
    store: StoreBase,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 19: the run before a queued prompt ended and its server died (or shut down)
    before its look for the next turn. The prompt's own append marked the session due, and
    the deployment's sweep starts its turn; before, it waited for the session's next send."""
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path, lock_ttl_seconds=1.0) as runner:

        async def lost(run: RunInFlight) -> None:
            """The look after the run, never made: its server is gone."""

        monkeypatch.setattr(runner, "_after_run", lost)
        busy = await runner.start(session, "Run the slow operation for 1 seconds.")
        await until_logged(store, busy, ToolCallStarted)
        queued = await runner.send(session, "Hello again")
        assert isinstance(queued, QueuedRun)
        await until_runs_finished(store, session, 1)
        while await runner.active_run(session) is not None:
            await asyncio.sleep(0.05)
        assert len(only(await store.read_session(session), RunStarted)) == 1

        async with deployment_sweep(store, runner):
            events = await until_runs_finished(store, session, 2)

    runs = only(events, RunStarted)
    assert [(r.prompt, r.queued_seq) for r in runs[1:]] == [("Hello again", queued.seq)]
