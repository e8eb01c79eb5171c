"""Group commit's batching rules, with a write_batch that records what it was given."""

from __future__ import annotations

import asyncio

from agentlog.domain.events import CustomEventRecorded
from agentlog.infra.store.group_commit import GroupCommitter, Outcome, PendingAppend


def recording_committer(**limits: int) -> tuple[GroupCommitter, list[list[PendingAppend]]]:
    batches: list[list[PendingAppend]] = []

    async def write_batch(batch: list[PendingAppend]) -> list[Outcome]:
        batches.append(batch)
        await asyncio.sleep(0)
        return [[1] * len(p.encoded) for p in batch]

    async def on_committed(session_ids: list[str]) -> None:
        return None

    return GroupCommitter(write_batch, on_committed, **limits), batches


async def submit(committer: GroupCommitter, size: int, events: int = 1) -> list[int]:
    event = CustomEventRecorded(name="n", data=None)
    return await committer.submit("s", [event] * events, [b"x" * size] * events, None)


async def test_a_transaction_holds_at_most_max_batch_bytes() -> None:
    committer, batches = recording_committer(max_batch_bytes=1000)
    await asyncio.gather(*(submit(committer, 300) for _ in range(10)))
    sizes = [sum(len(d) for p in b for d in p.encoded) for b in batches]
    assert sum(sizes) == 3000
    assert max(sizes) <= 1000
    assert len(batches) >= 4  # 3 appends of 300 bytes fit in 1000, never 4


async def test_an_append_larger_than_the_byte_bound_gets_a_transaction_to_itself() -> None:
    committer, batches = recording_committer(max_batch_bytes=1000)
    results = await asyncio.gather(
        submit(committer, 10), submit(committer, 5000), submit(committer, 10)
    )
    assert results == [[1], [1], [1]]
    assert [[sum(map(len, p.encoded)) for p in b] for b in batches] == [[10], [5000], [10]]


async def test_a_transaction_holds_at_most_max_batch_events() -> None:
    committer, batches = recording_committer(max_batch_events=5)
    await asyncio.gather(*(submit(committer, 1, events=2) for _ in range(6)))
    counts = [sum(len(p.encoded) for p in b) for b in batches]
    assert counts == [4, 4, 4]  # a third two-event append would make 6


async def test_a_batch_that_could_not_reach_the_database_is_retried_until_it_commits() -> None:
    from agentlog.infra.store.group_commit import NotWritten

    calls: list[int] = []

    async def write_batch(batch: list[PendingAppend]) -> list[Outcome]:
        calls.append(len(batch))
        if len(calls) < 4:
            raise NotWritten("connection refused")
        return [[7] for _ in batch]

    async def on_committed(session_ids: list[str]) -> None:
        return None

    committer = GroupCommitter(write_batch, on_committed, timeout=5.0)
    assert await submit(committer, 10) == [7]
    assert len(calls) == 4 and committer.stats.retries == 3


async def test_not_written_past_the_timeout_is_store_unavailable_and_unknown_is_never_retried() -> (
    None
):
    import pytest

    from agentlog.domain.errors import StoreUnavailable
    from agentlog.infra.store.group_commit import NotWritten, OutcomeUnknown

    attempts: list[str] = []

    async def down(batch: list[PendingAppend]) -> list[Outcome]:
        attempts.append("down")
        raise NotWritten("connection refused")

    async def on_committed(session_ids: list[str]) -> None:
        return None

    committer = GroupCommitter(down, on_committed, timeout=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreUnavailable, match="nothing was written") as refused:
        await submit(committer, 10)
    assert not isinstance(refused.value, OutcomeUnknown)
    assert loop.time() - started < 1.0 and len(attempts) > 1

    async def unknown(batch: list[PendingAppend]) -> list[Outcome]:
        attempts.append("unknown")
        raise OutcomeUnknown("connection lost at COMMIT")

    committer = GroupCommitter(unknown, on_committed, timeout=5.0)
    with pytest.raises(OutcomeUnknown):
        await submit(committer, 10)
    assert attempts.count("unknown") == 1 and committer.stats.outcome_unknown == 1
