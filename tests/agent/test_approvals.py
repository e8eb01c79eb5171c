"""Tool approval through the real SDK and CLI against the scripted model: a call that needs
approval waits a short grace in-process, else the turn stops (`defer`) and the session waits in
the log; the answer starts a continuation run whose CLI asks the PreToolUse hook again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.errors import (
    ApprovalAlreadyAnswered,
    ApprovalPending,
    RunAlreadyActive,
    UnknownApproval,
)
from agentlog.domain.events import (
    Event,
    RecordedEvent,
    RunFinished,
    RunStarted,
    TextCompleted,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallDenied,
    ToolCallSucceeded,
    utc_now,
)
from agentlog.domain.ports.run_lock import LockLease, RunLock
from agentlog.domain.rules.approvals import approvals
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.recovery.sweep import sweep_once
from agentlog.infra.agent.run.runner import AgentRunner
from agentlog.infra.sessions.approval_answers import ApprovalAnswer, record_answer
from agentlog.infra.store.base import StoreBase
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings

from .test_runner import (
    new_session,
    only,
    run_turn,
    runner_on,
    sequence,
    until_ended,
    until_logged,
)

pytestmark = pytest.mark.slow

Client = Callable[..., Awaitable[TestClient[Any, Any]]]

PUBLISH = '[scenario:approval] publish "hello world"'


async def test_a_call_that_needs_approval_stops_the_turn_and_the_session_waits_in_the_log(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, approval_grace_seconds=0.2
    ) as runner:
        session = await new_session(sqlite_store)
        first = await run_turn(runner, sqlite_store, session, PUBLISH)
        [request] = only(first, ToolApprovalRequested)
        assert request.tool_name == "mcp__demo__publish"
        assert request.input == {"text": "hello world"}
        [finished] = only(first, RunFinished)
        assert finished.stop_reason == "tool_deferred"
        assert finished.deferred_tool_call_id == request.tool_call_id
        # The call is neither run nor ended: it waits for a person, holding nothing.
        assert not only(first, ToolCallSucceeded)
        assert "tool_call_failed" not in sequence(first)
        assert await runner.active_run(session) is None
        assert runner.active_count == 0
        assert runner.agent_process_ids(request.run_id) == []  # no CLI waits for the answer
        with pytest.raises(ApprovalPending):
            await runner.start(session, "something else")
        with pytest.raises(UnknownApproval):
            await record_answer(sqlite_store, session, "approval_nope", approved=True, reason=None)

        answered = await record_answer(
            sqlite_store, session, request.approval_id, approved=True, reason="fine"
        )
        assert answered.written_now
        again = await record_answer(
            sqlite_store, session, request.approval_id, approved=True, reason="other words"
        )
        assert not again.written_now and again.seq == answered.seq
        assert again.response.reason == "fine"
        with pytest.raises(ApprovalAlreadyAnswered):
            await record_answer(
                sqlite_store, session, request.approval_id, approved=False, reason=None
            )

        started = await runner.continue_after_approval(session)
        assert started is not None
        second = await until_ended(runner, sqlite_store, started)
        [resumed] = only(second, RunStarted)
        assert resumed.continues_run_id == request.run_id and resumed.prompt == ""
        [output] = only(second, ToolCallSucceeded)
        assert output.tool_call_id == request.tool_call_id
        assert output.output == [{"type": "text", "text": "published: hello world"}] or (
            "published: hello world" in str(output.output)
        )
        texts = [t.text for t in only(second, TextCompleted)]
        assert any("published: hello world" in t for t in texts), texts
        [end] = only(second, RunFinished)
        assert not end.is_error
        # Nothing more to continue; the tool ran exactly once in the whole log.
        assert await runner.continue_after_approval(session) is None
        log = await sqlite_store.read_session(session)
        assert len(only(log, ToolCallSucceeded)) == 1
        assert len(only(log, ToolApprovalResponded)) == 1
        assert not approvals(log).pending() and not approvals(log).decided()


async def test_a_denied_call_is_refused_and_the_model_says_it_was_not_allowed(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, approval_grace_seconds=0.2
    ) as runner:
        session = await new_session(sqlite_store)
        first = await run_turn(runner, sqlite_store, session, PUBLISH)
        [request] = only(first, ToolApprovalRequested)
        await record_answer(
            sqlite_store, session, request.approval_id, approved=False, reason="not today"
        )
        started = await runner.continue_after_approval(session)
        assert started is not None
        second = await until_ended(runner, sqlite_store, started)
        [denied] = only(second, ToolCallDenied)
        assert denied.tool_call_id == request.tool_call_id
        assert "not today" in denied.reason
        assert not only(second, ToolCallSucceeded)
        texts = " ".join(t.text for t in only(second, TextCompleted))
        assert "not allowed to publish" in texts
        [end] = only(second, RunFinished)
        assert not end.is_error


async def test_an_answer_within_the_grace_lets_the_call_run_in_the_same_turn(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, approval_grace_seconds=30
    ) as runner:
        session = await new_session(sqlite_store)
        started = await runner.start(session, PUBLISH)
        async with asyncio.timeout(60), sqlite_store.subscribe(session) as wakeup:
            while not (
                requests := only(await sqlite_store.read_session(session), ToolApprovalRequested)
            ):
                await wakeup.wait(0.2)
        await record_answer(
            sqlite_store, session, requests[0].approval_id, approved=True, reason=None
        )
        events = await until_ended(runner, sqlite_store, started)
        assert len(only(events, ToolCallSucceeded)) == 1
        [end] = only(events, RunFinished)
        assert end.stop_reason != "tool_deferred" and end.deferred_tool_call_id is None
        assert len(only(await sqlite_store.read_session(session), RunStarted)) == 1


async def test_an_answer_that_comes_while_the_asking_run_is_finishing_is_acted_on_when_it_ends(
    sqlite_store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    # The grace passes while the asking run's CLI is held (SIGSTOP): the hook has deferred, but
    # the run cannot end and holds the lease, so the answer's continuation cannot start
    # (issue 19: `run: null`, and nothing looked again once the run had ended).
    async with runner_on(
        sqlite_store, scripted_model, tmp_path, approval_grace_seconds=0.2
    ) as runner:
        session = await new_session(sqlite_store)
        first = await runner.start(session, PUBLISH)
        [request] = only(
            await until_logged(sqlite_store, first, ToolApprovalRequested), ToolApprovalRequested
        )
        held = runner.agent_process_ids(first.run_id)
        for pid in held:
            os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(1.0)  # past the grace: the hook answers the CLI "defer"
            assert await runner.active_run(session) == first.run_id
            with pytest.raises(RunAlreadyActive):
                await runner.continue_after_approval(
                    session, ApprovalAnswer(request.approval_id, approved=True)
                )
            await record_answer(
                sqlite_store, session, request.approval_id, approved=True, reason=None
            )
        finally:
            for pid in held:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

        async with asyncio.timeout(60):
            while not only(await sqlite_store.read_session(session), ToolCallSucceeded):
                await asyncio.sleep(0.1)
            while await runner.active_run(session) is not None:
                await asyncio.sleep(0.1)
        log = await sqlite_store.read_session(session)
        [output] = only(log, ToolCallSucceeded)
        assert output.tool_call_id == request.tool_call_id
        continuation = [r for r in only(log, RunStarted) if r.continues_run_id == first.run_id]
        assert len(continuation) == 1


class HeldRelease:
    """The runner's run lock, except that the release of `holding`'s lease waits for the
    test (`may_release`), and the runner's look after it too (`may_look`): the interleavings
    of a finishing run and an answer, forced instead of hoped for."""

    def __init__(self, lock: RunLock) -> None:
        self.lock = lock
        self.holding: str | None = None
        self.may_release = asyncio.Event()
        self.released = asyncio.Event()
        self.may_look = asyncio.Event()
        self.may_look.set()

    async def acquire(self, session_id: str, run_id: str, ttl_ms: int) -> LockLease | None:
        return await self.lock.acquire(session_id, run_id, ttl_ms)

    async def holder(self, session_id: str) -> str | None:
        return await self.lock.holder(session_id)

    async def refresh(self, lease: LockLease) -> bool:
        return await self.lock.refresh(lease)

    async def release(self, lease: LockLease) -> bool:
        if lease.run_id != self.holding:
            return await self.lock.release(lease)
        await self.may_release.wait()
        released = await self.lock.release(lease)
        self.released.set()
        await self.may_look.wait()  # the runner looks for answers once this returns
        return released

    async def request_cancel(
        self, session_id: str, run_id: str, reason: str, ttl_ms: int = 60_000
    ) -> None:
        await self.lock.request_cancel(session_id, run_id, reason, ttl_ms)

    async def cancel_requested(self, lease: LockLease) -> str | None:
        return await self.lock.cancel_requested(lease)

    async def close(self) -> None:
        await self.lock.close()


async def deferred_and_refused(
    runner: AgentRunner, store: StoreBase, session: str, lock: HeldRelease
) -> tuple[ToolApprovalRequested, asyncio.Event]:
    """A turn that deferred its call and has ended in the log, its lease held (`lock`), and
    an answer's start refused by that lease (what the HTTP route then writes alone). Returns
    the request and the asking run's `done`."""
    first = await runner.start(session, PUBLISH)
    lock.holding = first.run_id
    [request] = only(await until_logged(store, first, RunFinished), ToolApprovalRequested)
    asking = runner._runs[session]
    with pytest.raises(RunAlreadyActive):
        await runner.continue_after_approval(
            session, ApprovalAnswer(request.approval_id, approved=True)
        )
    return request, asking.done


@contextlib.asynccontextmanager
async def runner_holding_its_release(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> AsyncIterator[tuple[AgentRunner, HeldRelease]]:
    """A runner whose lock lets the test hold a run's release (and the look after it), with
    a short grace and hand-over so the asking run defers and finishes quickly."""
    async with runner_on(
        store, scripted_model, tmp_path, approval_grace_seconds=0.2, handover_seconds=0.2
    ) as runner:
        lock = HeldRelease(runner.lock)
        runner.lock = lock
        yield runner, lock


@contextlib.asynccontextmanager
async def deployment_sweep(store: StoreBase, runner: AgentRunner) -> AsyncIterator[None]:
    """The deployment's sweep, as transport/app.py runs it (every 0.2 s here), while the
    block runs."""

    async def sweeping() -> None:
        while True:
            await sweep_once(store, runner)
            await asyncio.sleep(0.2)

    sweeper = asyncio.ensure_future(sweeping())
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


def continuations_of(log: list[RecordedEvent], run_id: str) -> list[Any]:
    """The runs started to continue `run_id` (an answered approval's turn)."""
    return [r for r in only(log, RunStarted) if r.continues_run_id == run_id]


async def until_settled(runner: AgentRunner, store: StoreBase, session: str) -> list[RecordedEvent]:
    """The log once the tool ran and nothing runs or is about to start."""
    async with asyncio.timeout(60):
        while not only(await store.read_session(session), ToolCallSucceeded):
            await asyncio.sleep(0.05)
        while runner._helpers or await runner.active_run(session) is not None:
            await asyncio.sleep(0.05)
    return await store.read_session(session)


async def test_an_answer_written_after_the_finishing_run_looked_is_continued_by_its_writer(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    # Issue 19: the answer's start was refused by the asking run's lease, that run released
    # it and looked for answers (none yet), and only then was the answer written: nobody
    # looked again, and the session was left answered with nothing running.
    async with runner_holding_its_release(store, scripted_model, tmp_path) as (runner, lock):
        session = await new_session(store, "s-after-look")
        request, asking_done = await deferred_and_refused(runner, store, session, lock)
        lock.may_release.set()
        await asking_done.wait()
        while runner._helpers:  # the look after the run, spawned as it ends
            await asyncio.sleep(0.01)
        await record_answer(store, session, request.approval_id, approved=True, reason=None)
        assert await runner.active_run(session) is None  # what the route left, before

        started = await runner.continue_after_answer(session)
        assert started is not None
        log = await until_settled(runner, store, session)
        [output] = only(log, ToolCallSucceeded)
        assert output.tool_call_id == request.tool_call_id
        continuation = continuations_of(log, request.run_id)
        assert [c.run_id for c in continuation] == [started.run_id]
        assert await runner.continue_after_answer(session) is None  # nothing more


async def test_an_answer_both_the_finishing_run_and_its_writer_continue_starts_one_run(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    # The answer is written after the asking run released its lease and before it looks:
    # both the run's look and the answer's writer try the continuation at once.
    async with runner_holding_its_release(store, scripted_model, tmp_path) as (runner, lock):
        lock.may_look.clear()
        session = await new_session(store, "s-both-try")
        request, _ = await deferred_and_refused(runner, store, session, lock)
        lock.may_release.set()
        await lock.released.wait()
        await record_answer(store, session, request.approval_id, approved=True, reason=None)
        lock.may_look.set()
        await runner.continue_after_answer(session)

        log = await until_settled(runner, store, session)
        assert len(only(log, ToolCallSucceeded)) == 1
        continuation = continuations_of(log, request.run_id)
        assert len(continuation) == 1


async def test_an_answer_written_while_the_asking_run_still_holds_is_left_to_that_run(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    # Written while the run holds its lease, the answer is the run's to continue (its look
    # comes after its release): the writer does not wait for a run that is not finishing.
    async with runner_holding_its_release(store, scripted_model, tmp_path) as (runner, lock):
        session = await new_session(store, "s-still-held")
        request, _ = await deferred_and_refused(runner, store, session, lock)
        await record_answer(store, session, request.approval_id, approved=True, reason=None)
        # Nor does the deployment's sweep: the answer marked the session due, but a run
        # holds it, so the sweep neither starts anything nor settles the mark.
        due = await store.turns_due(utc_now() + timedelta(seconds=1))
        assert [d.session_id for d in due] == [session]
        assert await runner.sweep_turns_due(due) == []
        assert await store.turns_due(utc_now() + timedelta(seconds=1)) == due
        waiting = asyncio.ensure_future(runner.continue_after_answer(session))
        await asyncio.sleep(0.5)  # the writer waits on the finishing run's lease
        assert not waiting.done()
        lock.may_release.set()
        await waiting
        log = await until_settled(runner, store, session)
        assert len(only(log, ToolCallSucceeded)) == 1
        continuation = continuations_of(log, request.run_id)
        assert len(continuation) == 1


async def test_over_http_an_answer_written_after_the_run_looked_is_202_with_its_continuation(
    store: StoreBase,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    aiohttp_client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The route's own steps, interleaved with the asking run's end: its start is refused by
    # the lease, the run releases and looks, then the route's write of the answer commits.
    # Before: 200 with `run: null`, and the session stayed answered with nothing running.
    async with runner_holding_its_release(store, scripted_model, tmp_path) as (runner, lock):
        agent = AgentConfig(
            workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes"
        )
        client = await aiohttp_client(create_app(Settings(agent=agent), store=store, runner=runner))
        session = await new_session(store, "s-over-http")
        first = await runner.start(session, PUBLISH)
        lock.holding = first.run_id
        [request] = only(await until_logged(store, first, RunFinished), ToolApprovalRequested)
        asking_done = runner._runs[session].done

        writing, may_write = asyncio.Event(), asyncio.Event()
        append = store.append

        async def answer_after_the_look(
            session_id: str, events: Sequence[Event], *args: Any, **kwargs: Any
        ) -> list[int]:
            if [type(e) for e in events] == [ToolApprovalResponded]:  # the answer, alone
                writing.set()
                await may_write.wait()
            return await append(session_id, events, *args, **kwargs)

        monkeypatch.setattr(store, "append", answer_after_the_look)
        url = f"/v1/sessions/{session}/approvals/{request.approval_id}"
        posting = asyncio.ensure_future(client.post(url, json={"approved": True}))
        await writing.wait()  # refused by the lease: the route writes the answer alone
        lock.may_release.set()
        await asking_done.wait()
        while runner._helpers:  # the run's look, which finds no answer yet
            await asyncio.sleep(0.01)
        may_write.set()
        response = await posting
        body = await response.json()

        assert response.status == 202, body
        log = await until_settled(runner, store, session)
        continuation = continuations_of(log, request.run_id)
        assert [c.run_id for c in continuation] == [body["run"]["run_id"]]
        assert len(only(log, ToolCallSucceeded)) == 1


async def test_an_answer_whose_writer_died_before_looking_again_is_continued_by_the_sweep(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    # Issue 19's last window: the answer was written alone after the finishing run had
    # looked, and its writer's server died before it looked again (`continue_after_answer`
    # never ran). The answer's own append marked the session due; the app's sweep, on any
    # instance, looks once no run holds the session, and the turn goes on exactly once.
    async with runner_on(
        store,
        scripted_model,
        tmp_path,
        approval_grace_seconds=0.2,
        handover_seconds=0.2,
        lock_ttl_seconds=1.0,
    ) as runner:
        lock = HeldRelease(runner.lock)
        runner.lock = lock
        session = await new_session(store, "s-writer-died")
        request, asking_done = await deferred_and_refused(runner, store, session, lock)
        lock.may_release.set()
        await asking_done.wait()
        while runner._helpers:  # the run's look, which finds no answer yet
            await asyncio.sleep(0.01)
        await record_answer(store, session, request.approval_id, approved=True, reason=None)
        # The writer dies here. Before: nothing ever started the continuation.
        assert await runner.active_run(session) is None
        [due] = await store.turns_due(utc_now() + timedelta(seconds=1))
        assert due.session_id == session

        async with deployment_sweep(store, runner):
            log = await until_settled(runner, store, session)
            [output] = only(log, ToolCallSucceeded)
            assert output.tool_call_id == request.tool_call_id
            # Looked at again once the continuation ended (its mark is settled by a look
            # that finds nothing to start), and nothing more starts.
            async with asyncio.timeout(30):
                while await store.turns_due(utc_now() + timedelta(seconds=1)):
                    await asyncio.sleep(0.1)
        log = await store.read_session(session)
        assert len(continuations_of(log, request.run_id)) == 1
        assert len(only(log, RunStarted)) == 2


async def test_a_session_whose_look_fails_keeps_its_mark_and_waits_before_the_next_look(
    sqlite_store: StoreBase,
    scripted_model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A look that fails (an agent this server does not host, a database error) leaves the
    # mark for a later sweep, which waits a minute rather than failing every 2 s.
    async with runner_on(sqlite_store, scripted_model, tmp_path) as runner:
        session = await new_session(sqlite_store, "s-failing-look")
        await sqlite_store.append(
            session,
            [ToolApprovalResponded(approval_id="a", tool_call_id="t", approved=True)],
        )
        looks = 0

        async def failing(session_id: str, answer: Any = None) -> None:
            nonlocal looks
            looks += 1
            raise RuntimeError("no agent here")

        monkeypatch.setattr(runner, "continue_after_approval", failing)
        due = await sqlite_store.turns_due(utc_now() + timedelta(seconds=1))
        assert await runner.sweep_turns_due(due) == [session]
        assert await runner.sweep_turns_due(due) == []
        assert looks == 1
        assert await sqlite_store.turns_due(utc_now() + timedelta(seconds=1)) == due
