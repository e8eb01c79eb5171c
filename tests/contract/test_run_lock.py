"""The run lock's contract (agentlog.domain.ports.run_lock.RunLock), on every backend: the lock
each one opens for the runner (this process's own, a lease table in the database; never Redis,
which carries wake-ups only)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace

import pytest

from agentlog.domain.ports.run_lock import RunLock
from agentlog.infra.store.backend import Backend
from agentlog.infra.store.opening import open_run_lock
from tests.conftest import StoreOpener

LockFactory = Callable[[], Awaitable[RunLock]]


@pytest.fixture
async def new_lock(backend: Backend, open_test_store: StoreOpener) -> AsyncIterator[LockFactory]:
    """Opens lock instances that share one backend: each call is another "process", with a
    store of its own (when one process serves the database, the same lock: it only exists
    within that process)."""
    async with AsyncExitStack() as stack:
        only: list[RunLock] = []

        async def factory() -> RunLock:
            if backend.serves_one_process and only:
                return only[0]
            store = await stack.enter_async_context(open_test_store())
            lock = await open_run_lock(store)
            stack.push_async_callback(lock.close)
            only.append(lock)
            return lock

        yield factory


@pytest.fixture
def session_id() -> str:
    return "lock-test-" + uuid.uuid4().hex


async def test_the_second_acquire_is_refused_and_names_the_holder(
    new_lock: LockFactory, session_id: str
) -> None:
    first, second = await new_lock(), await new_lock()

    lease = await first.acquire(session_id, "run-1", 5000)

    assert lease is not None and lease.run_id == "run-1"
    assert await second.acquire(session_id, "run-2", 5000) is None
    assert await second.holder(session_id) == "run-1"
    assert await first.release(lease)


async def test_release_frees_the_session_for_the_next_run(
    new_lock: LockFactory, session_id: str
) -> None:
    lock = await new_lock()
    lease = await lock.acquire(session_id, "run-1", 5000)
    assert lease is not None

    assert await lock.release(lease) is True
    assert await lock.holder(session_id) is None
    assert await lock.release(lease) is False  # already free: nothing to release
    again = await lock.acquire(session_id, "run-2", 5000)
    assert again is not None
    await lock.release(again)


async def test_a_stranger_can_neither_release_nor_refresh_the_lock(
    new_lock: LockFactory, session_id: str
) -> None:
    owner, stranger = await new_lock(), await new_lock()
    lease = await owner.acquire(session_id, "run-1", 5000)
    assert lease is not None
    forged = replace(lease, token="not-the-owner")

    assert await stranger.release(forged) is False
    assert await stranger.refresh(forged) is False
    assert await stranger.holder(session_id) == "run-1"
    assert await owner.release(lease)


async def test_the_lock_expires_when_its_owner_stops_refreshing(
    new_lock: LockFactory, session_id: str
) -> None:
    dead, alive = await new_lock(), await new_lock()
    lease = await dead.acquire(session_id, "run-1", 150)
    assert lease is not None

    await asyncio.sleep(0.3)

    assert await alive.holder(session_id) is None
    taken = await alive.acquire(session_id, "run-2", 5000)
    assert taken is not None
    # The expired owner cannot extend or free the new holder's lock.
    assert await dead.refresh(lease) is False
    assert await dead.release(lease) is False
    assert await alive.holder(session_id) == "run-2"
    await alive.release(taken)


async def test_a_late_refresh_holds_while_nobody_took_the_lease(
    new_lock: LockFactory, session_id: str
) -> None:
    """An owner whose refresh comes after the TTL (its loop or database was slow) keeps the
    lease if nobody acquired it meanwhile: a run is not stopped for being late. Once
    refreshed, it is held again and nobody else can take it."""
    owner, other = await new_lock(), await new_lock()
    lease = await owner.acquire(session_id, "run-1", 150)
    assert lease is not None

    await asyncio.sleep(0.3)
    assert await other.holder(session_id) is None  # expired: free for anyone to take

    assert await owner.refresh(replace(lease, ttl_ms=5000)) is True
    assert await other.holder(session_id) == "run-1"
    assert await other.acquire(session_id, "run-2", 5000) is None
    assert await owner.release(lease) is True


async def test_refresh_keeps_the_lock_past_its_first_ttl(
    new_lock: LockFactory, session_id: str
) -> None:
    owner, other = await new_lock(), await new_lock()
    # A TTL with room for a slow round trip on a busy machine (a database lease's).
    lease = await owner.acquire(session_id, "run-1", 1000)
    assert lease is not None

    for _ in range(4):  # 1.6 s in all, past the TTL
        await asyncio.sleep(0.4)
        assert await owner.refresh(lease) is True

    assert await other.acquire(session_id, "run-2", 1000) is None
    assert await other.holder(session_id) == "run-1"
    assert await owner.release(lease)


async def test_a_cancel_request_reaches_the_holder_and_ends_with_the_lock(
    new_lock: LockFactory, session_id: str
) -> None:
    owner, other = await new_lock(), await new_lock()
    lease = await owner.acquire(session_id, "run-1", 5000)
    assert lease is not None
    assert await owner.cancel_requested(lease) is None

    await other.request_cancel(session_id, "run-1", "stop it")
    await other.request_cancel(session_id, "another-run", "not this one")

    assert await owner.cancel_requested(lease) == "stop it"
    # While its run stops, the owner keeps the lock: a pending cancel never refuses a refresh.
    assert await owner.refresh(lease)
    assert await other.holder(session_id) == "run-1"
    assert await owner.release(lease)
    again = await owner.acquire(session_id, "run-1", 5000)
    assert again is not None
    assert await owner.cancel_requested(again) is None
    await owner.release(again)


async def test_a_ttl_must_be_positive(new_lock: LockFactory, session_id: str) -> None:
    lock = await new_lock()
    with pytest.raises(ValueError, match="ttl_ms"):
        await lock.acquire(session_id, "run-1", 0)
