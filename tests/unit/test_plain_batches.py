"""Plain batches: planned before the heads are known, numbered by the store under its lock."""

from __future__ import annotations

import asyncio

from agentlog.domain.events import CustomEventRecorded, Event, RunStarted, SessionCreated
from agentlog.domain.ports.event_store import RunFence
from agentlog.domain.rules.appending import encode_batch
from agentlog.infra.store.append_plan import plan_batch, plan_plain
from agentlog.infra.store.group_commit import PendingAppend


def pending(
    session_id: str,
    *events: Event,
    expected_seq: int | None = None,
    key: str | None = None,
    fence: RunFence | None = None,
) -> PendingAppend:
    future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
    return PendingAppend(
        session_id,
        list(events),
        encode_batch(events, 1 << 20),
        expected_seq,
        future,
        idempotency_key=key,
        fence=fence,
    )


def custom(n: int) -> CustomEventRecorded:
    return CustomEventRecorded(name="n", data=n)


async def test_seqs_come_out_as_the_locked_plan_gives_them_for_any_heads() -> None:
    batch = [
        pending("a", custom(1)),
        pending("b", SessionCreated(), custom(2), expected_seq=0),
        pending("a", custom(3), custom(4)),
        pending("b", custom(5), expected_seq=2),
    ]
    plain = plan_plain(batch)
    assert plain is not None
    assert plain.sessions == ["a", "b"] and plain.creates == [False, True]
    for head_of_a in (1, 7, 1000):
        locked = plan_batch(batch, {"a": head_of_a, "b": None}, 50)
        assert plain.outcomes([head_of_a, None]) == locked.outcomes
    # The rows' seqs are relative to each session's head, and their order is the queue's.
    assert [(row[0], row[1]) for row in plain.plan.rows] == [
        ("a", 1),
        ("b", 1),
        ("b", 2),
        ("a", 2),
        ("a", 3),
        ("b", 3),
    ]


async def test_what_needs_the_locked_reads_is_not_plain() -> None:
    fence = RunFence(run_id="r", token=3)
    other = RunFence(run_id="q", token=7)
    for batch in (
        [pending("a", custom(1), key="k")],
        # Two runs fencing one session: at most one is current, whatever the run index says.
        [pending("a", custom(1), fence=fence), pending("a", custom(2), fence=other)],
        [pending("a", RunStarted(run_id="r", prompt="go"))],
        # An expected seq on a session the batch does not create is compared with its head.
        [pending("a", custom(1), expected_seq=4)],
        [pending("a", custom(1)), pending("a", custom(2), expected_seq=5)],
    ):
        assert plan_plain(batch) is None, batch


async def test_a_batch_refused_whatever_the_heads_is_not_plain() -> None:
    assert plan_plain([pending("a", SessionCreated()), pending("a", SessionCreated())]) is None
    assert plan_plain([pending("a", SessionCreated(), expected_seq=3)]) is None


async def test_a_fenced_append_is_plain_and_carries_its_fence_for_the_store_to_check() -> None:
    fence = RunFence(run_id="r", token=3)
    plain = plan_plain(
        [
            pending("a", custom(1), fence=fence),
            pending("b", custom(2)),
            pending("a", custom(3), fence=fence),
        ]
    )
    assert plain is not None
    assert plain.fences == [("a", "r", 3)]
    assert plain.outcomes([10, 4]) == [[11], [5], [12]]
