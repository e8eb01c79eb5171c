"""Tool approval through the real SDK and CLI against the scripted model: a call that needs
approval waits a short grace in-process, else the turn stops (`defer`) and the session waits in
the log; the answer starts a continuation run whose CLI asks the PreToolUse hook again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentlog.domain.errors import ApprovalAlreadyAnswered, ApprovalPending, UnknownApproval
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
from agentlog.infra.sessions.approval_answers import record_answer
from agentlog.infra.store.base import StoreBase

from .test_runner import new_session, only, run_turn, runner_on, sequence, until_ended

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
