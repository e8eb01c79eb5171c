"""A rewind is planned from the conversation before the runner takes the session's lease
(infra/sessions/rewinds.py, then AgentRunner.start): the runner appends it only onto the
head it was planned on (`Rewind.expected_head`), on SQLite and PostgreSQL. The race is made
deterministic by calling the planner and the runner here, with a write in between."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from agentlog.domain.errors import ExpectedSeqMismatch
from agentlog.domain.events import (
    ConversationRewound,
    CustomEventRecorded,
    RunAbandoned,
    RunStarted,
    ToolCallFailed,
    ToolCallStarted,
)
from agentlog.infra.agent.config import AgentConfig
from agentlog.infra.agent.offline.scripted_model import ScriptedModel
from agentlog.infra.agent.recovery.recovery_events import recovery_events
from agentlog.infra.sessions.rewinds import PlannedRun, branch_of, plan_regenerate
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.run_reads import open_run_events
from agentlog.projections.ui_messages import fold
from agentlog.transport.app import create_app
from agentlog.transport.settings import Settings
from tests.agent.test_runner import (
    new_session,
    only,
    run_turn,
    runner_on,
    sequence,
    until_ended,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"])

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


async def planned_regenerate(store: StoreBase, session_id: str) -> PlannedRun:
    """What POST /runs plans for useChat's `regenerate()` of the last answer, with the head."""
    log = await store.read(session_id)
    planned = await plan_regenerate(store, session_id, branch_of(fold(log)), None, [])
    assert planned.rewind is not None
    rewind = msgspec.structs.replace(planned.rewind, expected_head=log[-1].seq)
    return dataclasses.replace(planned, rewind=rewind)


async def test_a_rewind_planned_before_another_landed_is_refused_and_writes_nothing(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path) as runner:
        await run_turn(runner, store, session, "Remember the number 41.")
        await run_turn(runner, store, session, "Remember the number 42.")
        mine = await planned_regenerate(store, session)
        assert mine.rewind is not None
        # Another tab regenerates the same answer first.
        theirs = await planned_regenerate(store, session)
        assert theirs.rewind is not None
        await until_ended(
            runner, store, await runner.start(session, theirs.prompt, rewind=theirs.rewind)
        )
        before = await store.read(session)

        with pytest.raises(ExpectedSeqMismatch) as refused:
            await runner.start(session, mine.prompt, rewind=mine.rewind)

        assert refused.value.expected == mine.rewind.expected_head
        assert refused.value.head == before[-1].seq
        assert await store.read(session) == before  # nothing written
        assert await runner.active_run(session) is None  # and the lease is free again
        # Planned again on the log as it is, the same regenerate goes through.
        again = await planned_regenerate(store, session)
        done = await until_ended(
            runner, store, await runner.start(session, again.prompt, rewind=again.rewind)
        )
        assert again.rewind is not None
        assert only(done, ConversationRewound)[0].to_seq == again.rewind.to_seq


async def test_an_append_after_the_plan_is_a_change_too(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path) as runner:
        await run_turn(runner, store, session, "Remember the number 41.")
        mine = await planned_regenerate(store, session)
        assert mine.rewind is not None
        await store.append(session, [RunStarted(run_id="elsewhere", prompt="hi")])
        before = await store.read(session)
        with pytest.raises(ExpectedSeqMismatch):
            await runner.start(session, mine.prompt, rewind=mine.rewind)
        assert await store.read(session) == before


async def test_recovering_an_abandoned_run_after_the_plan_does_not_refuse_it(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path
) -> None:
    """The sweeper may close a run whose owner died between the plan and the start: that
    moves the head, but only after the turn the rewind keeps; the rewind goes through."""
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path) as runner:
        await run_turn(runner, store, session, "Remember the number 41.")
        # A run whose process died mid-call (no terminal event, no lock held).
        await store.append(
            session,
            [
                RunStarted(run_id="dead", prompt="Remember the number 42."),
                ToolCallStarted(run_id="dead", tool_call_id="t1", tool_name="Bash"),
            ],
        )
        mine = await planned_regenerate(store, session)
        assert mine.rewind is not None and mine.prompt == "Remember the number 42."
        recovery = recovery_events(await open_run_events(store, session))
        assert [type(e) for e in recovery] == [ToolCallFailed, RunAbandoned]
        await store.append(session, recovery)  # what the sweeper writes

        done = await until_ended(
            runner, store, await runner.start(session, mine.prompt, rewind=mine.rewind)
        )

        [rewound] = only(done, ConversationRewound)
        assert rewound.to_seq == mine.rewind.to_seq
        assert sequence(done)[:2] == ["conversation_rewound", "run_started"]
        assert only(done, RunStarted)[0].prompt == "Remember the number 42."


async def test_over_http_the_changed_conversation_is_a_409_with_the_head(
    store: StoreBase, scripted_model: ScriptedModel, tmp_path: Path, aiohttp_client: Client
) -> None:
    """POST /runs plans the regenerate; an append lands before the runner appends it (a hook
    on the runner's start): 409 `conversation_changed`, and the log holds only that append."""
    session = await new_session(store)
    async with runner_on(store, scripted_model, tmp_path) as runner:
        await run_turn(runner, store, session, "Remember the number 41.")
        agent = AgentConfig(
            workspace_root=tmp_path / "workspaces", run_home_root=tmp_path / "homes"
        )
        client = await aiohttp_client(create_app(Settings(agent=agent), store=store, runner=runner))
        planned_on = (await store.read(session))[-1].seq
        start = runner.start

        async def start_after_another_write(*args: Any, **kwargs: Any) -> Any:
            await store.append(session, [CustomEventRecorded(name="note", data="meanwhile")])
            return await start(*args, **kwargs)

        runner.start = start_after_another_write  # type: ignore[method-assign]
        body = {"trigger": "regenerate-message", "messages": []}
        response = await client.post(f"/v1/sessions/{session}/runs", json=body)
        error = (await response.json())["error"]

        assert (response.status, error["code"]) == (409, "conversation_changed")
        assert (error["expected"], error["head"]) == (planned_on, planned_on + 1)
        log = await store.read(session)
        assert [e.seq for e in log][-1] == planned_on + 1
        assert isinstance(log[-1].event, CustomEventRecorded)
        assert await runner.active_run(session) is None
