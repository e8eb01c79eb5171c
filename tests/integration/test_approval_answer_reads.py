"""Answering an approval reads the run, not the session (issue 19: it read the whole session,
up to 50 times). On every backend: a session with a long history before the run that asks."""

from __future__ import annotations

from typing import Any

import pytest

from agentlog.domain.events import (
    CustomEventRecorded,
    RecordedEvent,
    RunFinished,
    RunStarted,
    SessionCreated,
    ToolApprovalRequested,
    ToolCallStarted,
    ToolCallSucceeded,
)
from agentlog.domain.rules.approvals import approval_id_for
from agentlog.infra.sessions.approval_answers import record_answer
from agentlog.infra.sessions.status import pending_approvals
from agentlog.infra.store.base import StoreBase

HISTORY = 400


def asking(run: str, call: str) -> list[Any]:
    return [
        RunStarted(run_id=run, prompt="p"),
        ToolCallStarted(run_id=run, tool_call_id=call, tool_name="Bash"),
        ToolApprovalRequested(
            run_id=run, approval_id=approval_id_for(call), tool_call_id=call, tool_name="Bash"
        ),
        RunFinished(run_id=run, deferred_tool_call_id=call),
    ]


async def long_session(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    # An old run that asked, was answered and ran its call: history, long before the last run.
    await store.append("s", asking("r0", "toolu_old"))
    await record_answer(store, "s", approval_id_for("toolu_old"), approved=True, reason=None)
    await store.append("s", [RunStarted(run_id="r0b", prompt="go on", continues_run_id="r0")])
    await store.append("s", [ToolCallSucceeded(run_id="r0b", tool_call_id="toolu_old")])
    await store.append("s", [RunFinished(run_id="r0b")])
    await store.append("s", [CustomEventRecorded(name="n", data=i) for i in range(HISTORY)])
    await store.append("s", asking("r1", "toolu_new"))


def count_reads(store: StoreBase, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of events each `read_session` call returned."""
    counted: list[int] = []
    read_session = store.read_session

    async def counting(session_id: str, after: int = 0) -> list[RecordedEvent]:
        found = await read_session(session_id, after)
        counted.append(len(found))
        return found

    monkeypatch.setattr(store, "read_session", counting)
    return counted


async def test_an_answer_reads_from_the_asking_runs_start(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await long_session(store)
    counted = count_reads(store, monkeypatch)
    recorded = await record_answer(
        store, "s", approval_id_for("toolu_new"), approved=True, reason="ok"
    )
    assert recorded.written_now and recorded.response.tool_call_id == "toolu_new"
    assert sum(counted) <= len(asking("r1", "toolu_new"))

    counted.clear()
    again = await record_answer(
        store, "s", approval_id_for("toolu_new"), approved=True, reason="ok"
    )
    assert not again.written_now and again.seq == recorded.seq
    assert sum(counted) <= len(asking("r1", "toolu_new")) + 1


async def test_pending_approvals_read_the_latest_run_only(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await long_session(store)
    counted = count_reads(store, monkeypatch)
    pending = await pending_approvals(store, "s")
    assert [p["tool_call_id"] for p in pending] == ["toolu_new"]
    assert sum(counted) <= len(asking("r1", "toolu_new"))


async def test_an_answer_to_an_old_approval_still_finds_its_first_answer(
    store: StoreBase,
) -> None:
    await long_session(store)
    old = await record_answer(store, "s", approval_id_for("toolu_old"), approved=True, reason=None)
    assert not old.written_now and old.response.tool_call_id == "toolu_old"
