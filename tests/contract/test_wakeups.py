"""The wake-ups' contract (agentlog.domain.ports.wakeups.Wakeups), through the store on every
backend: a commit wakes the readers of its session, and those of any session, and no others."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from agentlog.domain.events import CustomEventRecorded, SessionCreated
from agentlog.infra.store.backend import Backend
from agentlog.infra.store.base import StoreBase
from tests.conftest import StoreOpener


def custom(i: object, name: str = "n") -> CustomEventRecorded:
    return CustomEventRecorded(name=name, data=i)


async def test_subscribe_wakes_a_reader_after_commit(store: StoreBase) -> None:
    await store.append("s", [SessionCreated()])
    async with store.subscribe("s") as session_wakeup, store.subscribe_all() as any_wakeup:
        assert await session_wakeup.wait(0.05) is False
        await store.append("s", [custom(1)])
        assert await session_wakeup.wait(5) is True
        assert await any_wakeup.wait(5) is True
        assert await session_wakeup.wait(0.05) is False


async def test_subscribe_is_not_woken_by_other_sessions(store: StoreBase) -> None:
    # Random ids: wake-up channels are shared by every test run on the machine's Redis.
    followed, other = f"s-{uuid.uuid4().hex}", f"other-{uuid.uuid4().hex}"
    await store.append(followed, [SessionCreated()])
    async with store.subscribe(followed) as wakeup:
        await store.append(other, [SessionCreated()])
        assert await wakeup.wait(0.1) is False


async def test_another_instance_is_woken_within_milliseconds(
    open_test_store: StoreOpener, backend: Backend, backend_redis_url: str | None
) -> None:
    """Two server processes share the database: an append on one wakes readers on the other
    (through Redis, or the database's own channel)."""
    if backend.serves_one_process and not backend_redis_url:
        pytest.skip("one process serves this database: its wake-ups are that process's own")
    async with open_test_store() as writer, open_test_store() as reader:
        await writer.append("s", [SessionCreated()])
        async with reader.subscribe("s") as wakeup:
            await wakeup.wait(0.2)  # absorb the wake-up the bridge gives on connect
            loop = asyncio.get_running_loop()
            started = loop.time()
            await writer.append("s", [custom(1)])
            assert await wakeup.wait(5) is True
            assert loop.time() - started < 1.0
        assert [e.seq for e in await reader.read("s")] == [1, 2]
