"""Background loops run once per deployment (agentlog.infra.store.leadership): of two
processes competing for a loop's lease, one runs the loop; when it stops, the other takes the
loop over. On a database one process serves (SQLite), both compete in that process."""

from __future__ import annotations

import asyncio
import contextlib

from agentlog.domain.ports.run_lock import RunLock
from agentlog.infra.store.leadership import run_while_leading
from tests.conftest import StoreOpener

TTL = 1.0


async def test_one_process_runs_a_loop_and_another_takes_it_over_when_it_stops(
    open_test_store: StoreOpener,
) -> None:
    async with open_test_store() as first, open_test_store() as second:
        shared = first.backend.run_lock()
        locks: list[RunLock] = [
            shared,
            shared if first.backend.serves_one_process else second.backend.run_lock(),
        ]
        running: list[int] = []

        def loop_of(process: int):  # type: ignore[no-untyped-def]
            async def loop() -> None:
                running.append(process)
                try:
                    await asyncio.Event().wait()
                finally:
                    running.remove(process)

            return loop

        competing = [
            asyncio.create_task(run_while_leading(lock, "sweep", loop_of(n), ttl_seconds=TTL))
            for n, lock in enumerate(locks)
        ]
        try:
            async with asyncio.timeout(10):
                while not running:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(TTL * 2)  # several refreshes: still one
            assert len(running) == 1
            leader = running[0]
            competing[leader].cancel()  # the leader stops (it releases its lease)
            async with asyncio.timeout(10):
                while running != [1 - leader]:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(TTL)
            assert running == [1 - leader]
        finally:
            for task in competing:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for lock in {id(lock): lock for lock in locks}.values():
            await lock.close()


async def test_a_loop_given_until_ends_once_it_returns(open_test_store: StoreOpener) -> None:
    async with open_test_store() as store:
        lock = store.backend.run_lock()
        until = asyncio.Event()
        rounds: list[int] = []

        async def loop() -> None:
            rounds.append(1)
            await until.wait()

        task = asyncio.create_task(
            run_while_leading(lock, "projector", loop, ttl_seconds=TTL, until=until)
        )
        async with asyncio.timeout(10):
            while not rounds:
                await asyncio.sleep(0.05)
        until.set()
        async with asyncio.timeout(5):
            await task
        assert rounds == [1]
        # Its lease was released: another process takes the loop at once.
        assert await lock.acquire("~loop:projector", "other", 1000) is not None
        await lock.close()
