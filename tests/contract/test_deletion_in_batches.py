"""A large session's deletion holds the log's write lock for its tombstone, not for the removal
of its rows (issue 19): on every backend the tombstone is one atomic append, and the rows go
in batches after it. The removal leaves nothing of the session but its tombstone, the session
refuses appends from the tombstone on, and a removal cut short (its process died) is
finished by the next delete of the session."""

from __future__ import annotations

import uuid

import pytest

from agentlog.domain.errors import SessionAlreadyExists, SessionDeleted
from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.domain.events import SessionDeleted as Tombstone
from agentlog.infra.agent.sdk.session_store import LogSessionStore
from agentlog.infra.postgres import deletion as postgres_deletion
from agentlog.infra.sessions.deletion import SessionDeleter
from agentlog.infra.sqlite import deletion as sqlite_deletion
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.import_batches import REMOVAL_ROWS

EVENTS = 2 * REMOVAL_ROWS + 500
ENTRIES = REMOVAL_ROWS + 200


async def _large(store: StoreBase, session_id: str, marker: str) -> None:
    await store.append(session_id, [SessionCreated()])
    for start in range(0, EVENTS, 2000):
        count = min(2000, EVENTS - start)
        await store.append(
            session_id, [CustomEventRecorded(name="n", data=marker) for _ in range(count)]
        )
    await LogSessionStore(store, session_id=session_id).append(
        {"project_key": "p", "session_id": str(uuid.uuid4())},
        [{"type": "user", "uuid": str(uuid.uuid4()), "text": marker} for _ in range(ENTRIES)],
    )


def _count_removals(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The events each removal batch deleted, on whichever backend runs."""
    removed: list[int] = []
    for module in (sqlite_deletion, postgres_deletion):
        remove_rows = module.remove_rows

        def counting(*args: object, _remove=remove_rows) -> object:  # type: ignore[no-untyped-def]
            result = _remove(*args)
            if isinstance(result, int):
                removed.append(result)
                return result

            async def awaited() -> int:
                n: int = await result
                removed.append(n)
                return n

            return awaited()

        monkeypatch.setattr(module, "remove_rows", counting)
    return removed


async def test_a_large_session_is_removed_in_batches_after_its_tombstone(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = "MARKER-" + uuid.uuid4().hex
    await _large(store, "doomed", marker)
    await store.append("kept", [SessionCreated()])
    removed = _count_removals(monkeypatch)

    deletion = await SessionDeleter(store).delete("doomed")

    assert (deletion.tombstone_seq, deletion.events_removed) == (EVENTS + 2, EVENTS + 1)
    # Never more than a batch at a time: 1,000 + 1,000 + 501 (then the transcript's entries).
    assert [n for n in removed if n] == [REMOVAL_ROWS, REMOVAL_ROWS, 501]
    [tombstone] = await store.read("doomed")
    assert tombstone.event == Tombstone(events_removed=EVENTS + 1)
    assert await store.backend.tables_holding(marker) == []
    with pytest.raises(SessionDeleted):
        await store.append("doomed", [CustomEventRecorded(name="late")])
    with pytest.raises(SessionAlreadyExists):
        await store.append("doomed", [SessionCreated()])
    assert await store.append("kept", [CustomEventRecorded(name="on")]) == [2]


async def test_a_removal_cut_short_is_finished_by_the_next_delete(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = "MARKER-" + uuid.uuid4().hex
    await _large(store, "doomed", marker)

    async def died(*args: object) -> None:
        return None  # the process ended right after the tombstone committed

    for module in (sqlite_deletion, postgres_deletion):
        monkeypatch.setattr(module, "remove_deleted", died)
    await store.backend.delete_session("doomed", "requested")
    monkeypatch.undo()

    # The tombstone is the rule: nothing is accepted, though the rows are still there.
    assert len(await store.read("doomed", limit=EVENTS + 10)) == EVENTS + 2
    with pytest.raises(SessionDeleted):
        await store.append("doomed", [CustomEventRecorded(name="late")])
    with pytest.raises(SessionDeleted):
        await store.backend.delete_session("doomed", "requested")
    [tombstone] = await store.read("doomed")
    assert tombstone.seq == EVENTS + 2
    assert await store.backend.tables_holding(marker) == []
