"""Deleting a session, the Backend's `delete_session` through SessionDeleter, on every backend:
nothing of its content is left in any table, a tombstone is, the id cannot be created again,
and the log's positions never go back."""

from __future__ import annotations

import uuid

import pytest

from agentlog.domain.errors import (
    RunAlreadyActive,
    SessionAlreadyExists,
    SessionDeleted,
    UnknownSession,
)
from agentlog.domain.events import (
    CustomEventRecorded,
    RunFinished,
    RunStarted,
    SessionCreated,
    TextCompleted,
)
from agentlog.domain.events import SessionDeleted as Tombstone
from agentlog.infra.agent.sdk.session_store import LogSessionStore
from agentlog.infra.sessions.deletion import SessionDeleter, deleted_at
from agentlog.infra.sessions.tombstone import live_head
from agentlog.infra.sessions.verification import verify_log
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.opening import open_projection_store
from agentlog.infra.store.projector import Projector


async def fill(store: StoreBase, session_id: str, marker: str) -> None:
    """A session holding `marker` everywhere a session keeps content."""
    await store.append(
        session_id, [SessionCreated(title=f"title {marker}", metadata={"m": marker})]
    )
    await store.append(
        session_id,
        [
            RunStarted(run_id="r1", prompt=f"prompt {marker}"),
            TextCompleted(run_id="r1", message_id="m1", text=f"answer {marker} " + "x" * 5000),
            RunFinished(run_id="r1", result=f"result {marker}"),
        ],
    )
    await store.append(
        session_id,
        [CustomEventRecorded(name="note", data={"text": marker})],
        idempotency_key=f"client:{marker}",
    )
    transcripts = LogSessionStore(store, session_id=session_id)
    await transcripts.append(
        {"project_key": "p", "session_id": str(uuid.uuid4())},
        [{"type": "user", "uuid": str(uuid.uuid4()), "message": {"content": marker}}],
    )
    await transcripts.append(
        {"project_key": "p", "session_id": str(uuid.uuid4()), "subpath": "subagents/agent-1"},
        [{"type": "assistant", "message": {"content": marker}}],
    )


async def test_nothing_of_a_deleted_session_is_left_but_its_tombstone(store: StoreBase) -> None:
    marker = "MARKER-" + uuid.uuid4().hex
    await fill(store, "doomed", marker)
    await fill(store, "kept", "other-" + uuid.uuid4().hex)
    async with open_projection_store(store) as projections:
        projector = Projector(store, projections)
        await projector.catch_up()
        # The content was there: in the projections and in the CLI's transcript too.
        assert {"agentlog_ui_messages", "agentlog_transcript_entries"} <= set(
            await store.backend.tables_holding(marker)
        )

        deletion = await SessionDeleter(store).delete("doomed")
        await projector.catch_up()

        assert deletion.events_removed == 5 and deletion.tombstone_seq == 6
        assert await store.backend.tables_holding(marker) == []
        [tombstone] = await store.read("doomed")
        assert (tombstone.seq, tombstone.event) == (6, Tombstone(events_removed=5))
        assert await deleted_at(store, "doomed") == tombstone.time
        assert await deleted_at(store, "kept") is None
        # The head read tells deleted from live (and from unknown) by itself: no second read.
        found = await store.session("doomed")
        assert found is not None and (found.head, found.deleted_at) == (6, tombstone.time)
        assert (await store.session("kept")).deleted_at is None  # type: ignore[union-attr]
        with pytest.raises(SessionDeleted):
            await live_head(store, "doomed")
        assert await live_head(store, "kept") == 5
        with pytest.raises(UnknownSession):
            await live_head(store, "never-was")
        summary = await projector.read_summary("doomed")
        assert summary is not None and summary.status == "deleted" and summary.title is None
        assert (await projector.read_summary("kept")).title.startswith("title other-")  # type: ignore[union-attr]
        # The other session is whole; the log checks out, its gaps accounted for.
        assert len(await store.read("kept")) == 5
        assert (await verify_log(store)).problems == []

    # The id is never given out again; a second delete says it is gone.
    with pytest.raises(SessionAlreadyExists):
        await store.append("doomed", [SessionCreated()])
    with pytest.raises(SessionDeleted):
        await SessionDeleter(store).delete("doomed")
    with pytest.raises(UnknownSession):
        await SessionDeleter(store).delete("never-was")
    # Positions never go back, though the deleted session held the newest ones.
    before = await store.last_position()
    await store.append("kept", [CustomEventRecorded(name="after")])
    assert (await store.read("kept", after=5))[0].position == before + 1


class StillStopping:
    """A runner whose session's run does not stop within the cancel's wait."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def active_run(self, session_id: str) -> str | None:
        return "r-slow"

    async def cancel(self, session_id: str, run_id: str, reason: str = "") -> bool:
        self.cancelled.append(run_id)
        return False


async def test_a_delete_waits_for_the_run_it_cancels_and_refuses_while_it_is_still_stopping(
    store: StoreBase,
) -> None:
    await fill(store, "busy", "still-" + uuid.uuid4().hex)
    runs = StillStopping()
    with pytest.raises(RunAlreadyActive):
        await SessionDeleter(store, runs).delete("busy")
    assert runs.cancelled == ["r-slow"]
    assert await deleted_at(store, "busy") is None
    assert len(await store.read("busy")) == 5
