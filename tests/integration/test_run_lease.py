"""Keeping a run's lease on its own cycle: refreshes keep it past its TTL; a lease taken over
by another holder is noticed at the next refresh, and a cancel request is handed on while the
lease is kept until the run has stopped."""

from __future__ import annotations

import asyncio
import contextlib

from agentlog.infra.agent.run.lease import keep_lease
from agentlog.infra.local.run_lock import LocalRunLock


async def test_refreshes_keep_the_lease_and_a_lost_lease_is_reported() -> None:
    lock = LocalRunLock()
    lease = await lock.acquire("s", "r1", 300)
    assert lease is not None
    lost = asyncio.Event()
    keeper = asyncio.create_task(
        keep_lease(
            lock,
            lease,
            refresh_seconds=0.05,
            ttl_seconds=0.3,
            cancel_poll_seconds=0.05,
            on_lost=lost.set,
            on_cancel=lambda reason: None,
        )
    )
    await asyncio.sleep(0.6)  # two TTLs: only the refreshes keep it
    assert await lock.holder("s") == "r1"
    assert not lost.is_set()
    await lock.release(lease)
    assert await lock.acquire("s", "r2", 300) is not None  # someone else holds it now
    async with asyncio.timeout(2):
        await lost.wait()
    await keeper
    assert await lock.holder("s") == "r2"


async def test_a_cancel_request_reaches_the_keeper_which_keeps_the_lease_until_the_run_ends() -> (
    None
):
    # A cancelled run's CLI may take longer than the TTL to stop: the lease must not lapse
    # meanwhile, or another run could start beside it and the run would be recorded
    # abandoned instead of cancelled (issue 19).
    lock = LocalRunLock()
    lease = await lock.acquire("s", "r1", 300)
    assert lease is not None
    reasons: list[str] = []
    lost = asyncio.Event()
    keeper = asyncio.create_task(
        keep_lease(
            lock,
            lease,
            refresh_seconds=0.05,
            ttl_seconds=0.3,
            cancel_poll_seconds=0.05,
            on_lost=lost.set,
            on_cancel=reasons.append,
        )
    )
    await lock.request_cancel("s", "r1", "stop please")
    await asyncio.sleep(0.9)  # three TTLs while the run is stopping
    assert reasons == ["stop please"]  # handed on once
    assert await lock.holder("s") == "r1" and not lost.is_set()
    assert await lock.acquire("s", "r2", 300) is None
    keeper.cancel()  # the run ended: its task stops the keeper, then releases
    with contextlib.suppress(asyncio.CancelledError):
        await keeper
