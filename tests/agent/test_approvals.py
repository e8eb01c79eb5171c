"""Tool approval through the real SDK and CLI against the scripted model: a call that needs
approval waits a short grace in-process, else the turn stops (`defer`) and the session waits in
the log; the answer starts a continuation run whose CLI asks the PreToolUse hook again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from agentlog.domain.errors import (
    ApprovalAlreadyAnswered,
    ApprovalPending,
    RunAlreadyActive,
    UnknownApproval,
)
from agentlog.domain.events import (
    RunFinished,
    RunStarted,
    TextCompleted,
    ToolApprovalRequested,
    ToolApprovalResponded,
    ToolCallDenied,
    ToolCallSucceeded,
)
from agentlog.domain.rules.approvals import approvals
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.sessions.approval_answers import ApprovalAnswer, record_answer
from agentlog.infra.store.base import StoreBase

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
