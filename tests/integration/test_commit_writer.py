"""Scenario 6: the commit writer never dies silently, on every store."""

from __future__ import annotations

import asyncio

import pytest

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.store.base import StoreBase
from agentlog.infra.store.group_commit import OutcomeUnknown


def event(n: int) -> CustomEventRecorded:
    return CustomEventRecorded(name="n", data=n)


async def test_a_cancelled_writer_tells_its_callers_and_is_replaced(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    committer = store._committer
    in_flight = asyncio.create_task(store.append("s", [event(1)]))
    async with asyncio.timeout(5):
        while not committer._writing:
            await asyncio.sleep(0)
    assert committer._writer is not None
    committer._writer.cancel()

    # Never a CancelledError handed to the caller: it was not the caller who was cancelled.
    with pytest.raises(OutcomeUnknown, match="cancelled"):
        await in_flight
    assert await store.append("s", [event(2)]) is not None
    seqs = [e.seq for e in await store.read("s")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) in (2, 3)
    assert store.commit_stats.writer_restarts == 1


async def test_a_crashed_writer_is_restarted_and_writes_what_was_queued(
    store: StoreBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append("s", [SessionCreated()])
    committer = store._committer
    take = committer._take
    crashes = []

    def crash_once() -> list:  # type: ignore[type-arg]
        if not crashes:
            crashes.append(1)
            raise RuntimeError("a bug in the writer")
        return take()

    monkeypatch.setattr(committer, "_take", crash_once)
    results = await asyncio.gather(*(store.append("s", [event(n)]) for n in range(5)))

    assert crashes == [1]
    assert sorted(seq for seqs in results for seq in seqs) == [2, 3, 4, 5, 6]
    assert [e.seq for e in await store.read("s")] == [1, 2, 3, 4, 5, 6]
    assert store.commit_stats.writer_restarts == 1
